package replay

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// allElements are what MATCH all compares (FORMAT.md §8, recommended
// runner rules): header, question and every section as multisets.
var allElements = []string{"opcode", "question", "rcode", "flags", "answer", "authority", "additional"}

// mismatch returns "" when message m, received over TCP or not, satisfies
// the MATCH line of e, else what differs. EDE and EDNS are compared only
// where the entry asks for them.
func (e *Entry) mismatch(m *dns.Msg, tcp bool, d Dialect) string {
	want := e.msg(d)
	elems := make([]string, 0, len(e.Match)+len(allElements))
	for k := range e.Match {
		elems = append(elems, k)
	}
	if e.Match["all"] {
		elems = append(elems, allElements...)
		if d == Unbound {
			elems = append(elems, "edns")
		}
	}
	slices.SortFunc(elems, func(a, b string) int { return elementRank(a) - elementRank(b) })
	for _, el := range slices.Compact(elems) {
		if why := matchElement(el, want, m, tcp, d, e); why != "" {
			return why
		}
	}
	if e.HasEDE {
		return edeMismatch(e.EDE, m)
	}
	return ""
}

// elementOrder puts the elements that explain a failure best first.
var elementOrder = []string{"opcode", "qname", "qtype", "qcase", "question", "subdomain", "rcode", "flags", "answer", "authority", "additional", "edns"}

func elementRank(el string) int {
	if i := slices.Index(elementOrder, el); i >= 0 {
		return i
	}
	return len(elementOrder)
}

// matchElement compares one MATCH element.
func matchElement(el string, want, got *dns.Msg, tcp bool, d Dialect, e *Entry) string {
	ttl := e.Match["ttl"]
	switch el {
	case "opcode":
		return differ("opcode", dns.OpcodeToString[want.Opcode], dns.OpcodeToString[got.Opcode])
	case "qtype", "qname", "qcase", "subdomain":
		return questionMismatch(el, want, got)
	case "question":
		if d == Deckard {
			return questionMismatch("qname", want, got) + questionMismatch("qtype", want, got)
		}
		return differ("question", questionText(want.Question), questionText(got.Question))
	case "rcode":
		return differ("rcode", dns.RcodeToString[want.Rcode], dns.RcodeToString[got.Rcode])
	case "flags":
		return differ("flags", flagText(want), flagText(got))
	case "answer":
		return sectionMismatch("answer", want.Answer, got.Answer, ttl)
	case "authority":
		return sectionMismatch("authority", want.Ns, got.Ns, ttl)
	case "additional":
		return sectionMismatch("additional", want.Extra, got.Extra, ttl)
	case "edns":
		if d == Deckard {
			return "" // Deckard's edns compares version and payload only, unused
		}
		return differ("EDNS", ednsText(want), ednsText(got))
	case "DO":
		if opt := got.IsEdns0(); opt == nil || !opt.Do() {
			return "DO bit wanted, query has none"
		}
	case "noedns":
		if got.IsEdns0() != nil {
			return "no EDNS wanted, query has OPT"
		}
	case "ednsdata":
		return differ("EDNS data", fmt.Sprintf("%x", e.EDNSData), fmt.Sprintf("%x", optionBytes(got, true)))
	case "TCP", "UDP":
		if tcp != (el == "TCP") {
			return "wanted over " + el
		}
	case "client_cookie", "server_cookie":
		return cookieMismatch(el, got)
	}
	return ""
}

func differ(what, want, got string) string {
	if want == got {
		return ""
	}
	return fmt.Sprintf("%s: want %s, got %s", what, want, got)
}

// questionMismatch compares one property of the first question.
func questionMismatch(el string, want, got *dns.Msg) string {
	if len(want.Question) == 0 || len(got.Question) == 0 {
		return differ(el, questionText(want.Question), questionText(got.Question))
	}
	w, g := want.Question[0], got.Question[0]
	ok := true
	switch el {
	case "qtype":
		ok = w.Qtype == g.Qtype
	case "qname":
		ok = strings.EqualFold(w.Name, g.Name)
	case "qcase":
		ok = w.Name == g.Name
	case "subdomain":
		ok = dns.IsSubDomain(strings.ToLower(w.Name), strings.ToLower(g.Name))
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("%s: want %s, got %s", el, questionText(want.Question), questionText(got.Question))
}

func questionText(qs []dns.Question) string {
	parts := make([]string, len(qs))
	for i, q := range qs {
		parts[i] = fmt.Sprintf("%s %s %s", strings.ToLower(q.Name), dns.Class(q.Qclass), dns.Type(q.Qtype))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func flagText(m *dns.Msg) string {
	var f []string
	for _, b := range []struct {
		on   bool
		name string
	}{{m.Response, "QR"}, {m.Authoritative, "AA"}, {m.Truncated, "TC"}, {m.RecursionDesired, "RD"},
		{m.RecursionAvailable, "RA"}, {m.AuthenticatedData, "AD"}, {m.CheckingDisabled, "CD"}} {
		if b.on {
			f = append(f, b.name)
		}
	}
	return "[" + strings.Join(f, " ") + "]"
}

// ednsText renders what the runner compares of EDNS: presence and DO.
func ednsText(m *dns.Msg) string {
	opt := m.IsEdns0()
	switch {
	case opt == nil:
		return "no OPT"
	case opt.Do():
		return "OPT with DO"
	}
	return "OPT without DO"
}

// optionBytes returns the OPT RDATA of m, without EDE options when
// dropEDE is set (MATCH ede= removes them before other comparisons).
func optionBytes(m *dns.Msg, dropEDE bool) []byte {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	kept := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	for _, o := range opt.Option {
		if !dropEDE || o.Option() != dns.EDNS0EDE {
			kept.Option = append(kept.Option, o)
		}
	}
	buf := make([]byte, dns.Len(kept)+16)
	off, err := dns.PackRR(kept, buf, 0, nil, false)
	if err != nil || off < optHeaderLen {
		return nil
	}
	return buf[optHeaderLen:off]
}

// optHeaderLen is the wire size of an OPT record before its RDATA: root
// name, type, class, TTL and RDLENGTH.
const optHeaderLen = 1 + 2 + 2 + 4 + 2

func edeMismatch(code int, m *dns.Msg) string {
	var got []string
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if ede, ok := o.(*dns.EDNS0_EDE); ok {
				if code < 0 || int(ede.InfoCode) == code {
					return ""
				}
				got = append(got, fmt.Sprint(ede.InfoCode))
			}
		}
	}
	want := "any"
	if code >= 0 {
		want = fmt.Sprint(code)
	}
	return fmt.Sprintf("EDE: want %s, got [%s]", want, strings.Join(got, " "))
}

func cookieMismatch(el string, m *dns.Msg) string {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				n := len(c.Cookie) / 2
				if (el == "client_cookie" && n == 8) || (el == "server_cookie" && n >= 16) {
					return ""
				}
			}
		}
	}
	return el + " wanted, none present"
}

// sectionMismatch compares two sections as multisets of canonical
// records, with TTLs only when ttl is set; OPT is left to ednsText.
func sectionMismatch(name string, want, got []dns.RR, ttl bool) string {
	w, g := canonicalSet(want, ttl), canonicalSet(got, ttl)
	var missing, extra []string
	for k, n := range w {
		for range n - g[k] {
			missing = append(missing, k)
		}
	}
	for k, n := range g {
		for range n - w[k] {
			extra = append(extra, k)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return fmt.Sprintf("%s: missing {%s} unexpected {%s}", name, strings.Join(missing, " | "), strings.Join(extra, " | "))
}

func canonicalSet(rrs []dns.RR, ttl bool) map[string]int {
	set := map[string]int{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		set[canonicalText(rr, ttl)]++
	}
	return set
}
