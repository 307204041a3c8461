package resolver

import (
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// scrubbed is an upstream reply after scrub: only what the server was
// entitled to say about the question.
type scrubbed struct {
	msg *dns.Msg
	// upward is true when the authority section held an NS set for the
	// zone itself or above it: a lame server's referral back up the tree.
	upward bool
	// empty is true when the reply held no answer and no authority at all.
	empty bool
	// zone is the zone the reply speaks from: the cut asked, or for a
	// forwarded reply the zone inside the forward zone it names.
	zone string
	// contradicted is true when the server's CNAME for the name disagreed
	// with the DNAME above it; scrub put the synthesised one in its place.
	contradicted bool
}

// scrub is the only door from the network to the cache and the iterator:
// every upstream reply passes here before any of it is cached or followed
// (Unbound's scrub_message). zone is the cut whose servers were asked;
// name and qtype the question. What survives:
//   - answer: the RRset of name, or the first CNAME/DNAME link of a chain
//     that starts at it, inside zone;
//   - authority: NS, SOA, DS, NSEC and NSEC3 records inside zone; NS only
//     for one owner that is an ancestor of name (a referral or the zone's
//     own NS set); NSEC, here and in the answer, only when its next name
//     is inside zone too;
//   - additional: addresses of the NS names kept, inside zone (glue);
//   - RRSIGs covering a kept RRset.
//
// An NS RRset keeps its first maxNS records (Unbound's iter-scrub-ns), so
// that a server cannot make the resolver chase, or clients receive, an
// endless list; the addresses kept are those of the NS names kept. A
// signed NS set cut short no longer validates: at the default of 20 only
// a zone with more servers than any real one is hit.
func scrub(in *dns.Msg, zone, name string, qtype uint16, maxNS int) scrubbed {
	out := new(dns.Msg)
	out.MsgHdr = in.MsgHdr
	out.Question = in.Question
	// RRSIGs go with their RRset whatever section the server put them in,
	// as Unbound's parser does.
	qclass := uint16(dns.ClassINET)
	if len(in.Question) == 1 {
		qclass = in.Question[0].Qclass
	}
	answer, ns, extra := ofClass(in.Answer, qclass), ofClass(in.Ns, qclass), ofClass(in.Extra, qclass)
	sigs := rrsigsIn(answer, ns, extra)
	var contradicted bool
	out.Answer, contradicted = scrubAnswer(answer, sigs, zone, name, qtype)
	out.Answer = capNS(out.Answer, maxNS)
	out.Ns = capNS(scrubAuthority(ns, sigs, zone, name), maxNS)
	out.Extra = scrubAdditional(extra, sigs, out.Ns, out.Answer, zone)
	for _, sec := range [][]dns.RR{out.Answer, out.Ns, out.Extra} {
		lowerNames(sec)
	}
	return scrubbed{msg: out, upward: hasUpwardNS(in.Ns, zone), empty: len(in.Answer) == 0 && len(in.Ns) == 0, contradicted: contradicted}
}

// scrubAnswer keeps the RRset asked for and the first link of a chain
// that starts at name: a CNAME at name, or a DNAME above it inside zone
// with the CNAME synthesised from it. Records for the chain's target are
// dropped even inside zone: the target may lie below a cut this server
// does not serve, so it is asked for on its own (as Unbound does). It
// reports whether the server's CNAME contradicted the DNAME.
func scrubAnswer(rrs, sigs []dns.RR, zone, name string, qtype uint16) ([]dns.RR, bool) {
	if !inBailiwick(name, zone) {
		return nil, false
	}
	if d := applicableDNAME(rrs, zone, name); d != nil {
		return scrubDNAMEAnswer(rrs, sigs, d, name)
	}
	keep := make([]bool, len(rrs))
	// A CNAME and other data at one name is an error (RFC 2181 §10.1);
	// whichever comes first is taken, as Unbound does.
	cname := cnameFirst(rrs, name, qtype)
	for i, rr := range rrs {
		h := rr.Header()
		switch {
		case equalNames(h.Name, name) && h.Rrtype == dns.TypeCNAME && (cname || qtype == dns.TypeCNAME || qtype == dns.TypeANY):
			keep[i] = true
		case equalNames(h.Name, name) && matchesType(rr, qtype) && !cname:
			keep[i] = !overreaching(rr, zone)
		}
	}
	return keepWithSigs(rrs, keep, sigs), false
}

// applicableDNAME returns the first DNAME in rrs owned by an ancestor of
// name inside zone, or nil.
func applicableDNAME(rrs []dns.RR, zone, name string) *dns.DNAME {
	for _, rr := range rrs {
		if d, ok := rr.(*dns.DNAME); ok && strictlyBelow(name, d.Hdr.Name) && inBailiwick(d.Hdr.Name, zone) {
			return d
		}
	}
	return nil
}

// scrubDNAMEAnswer keeps the DNAME d and the CNAME it synthesises for
// name. Names below a DNAME hold no data of their own (RFC 6672 §2.3), so
// anything else at name goes, and so does a CNAME the server sent that
// disagrees with the DNAME: it is unsigned, and a forger's only way to
// steer a validated DNAME elsewhere. The CNAME is synthesised when missing
// or wrong, as Unbound's scrubber does (synth_cname_rrset); a wrong one is
// reported, for the reply is not to be trusted as an answer.
func scrubDNAMEAnswer(rrs, sigs []dns.RR, d *dns.DNAME, name string) ([]dns.RR, bool) {
	target, ok := dnameTarget(name, d)
	keep := make([]bool, len(rrs))
	matched, wrong := false, false
	for i, rr := range rrs {
		h := rr.Header()
		switch {
		case h.Rrtype == dns.TypeDNAME && equalNames(h.Name, d.Hdr.Name):
			keep[i] = true
		case h.Rrtype != dns.TypeCNAME || !equalNames(h.Name, name):
		case ok && !matched && equalNames(rr.(*dns.CNAME).Target, target):
			keep[i], matched = true, true
		default:
			wrong = true
		}
	}
	out := keepWithSigs(rrs, keep, sigs)
	if ok && !matched {
		out = append(out, synthCNAME(name, d, target))
	}
	return out, wrong && !matched
}

// synthCNAME is the CNAME a DNAME implies for name, with the DNAME's TTL
// (RFC 6672 §3.1).
func synthCNAME(name string, d *dns.DNAME, target string) *dns.CNAME {
	return &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: d.Hdr.Class, Ttl: d.Hdr.Ttl}, Target: target}
}

// cnameFirst reports whether, at name, a CNAME comes before any record
// of qtype.
func cnameFirst(rrs []dns.RR, name string, qtype uint16) bool {
	if qtype == dns.TypeANY || qtype == dns.TypeCNAME {
		return false
	}
	for _, rr := range rrs {
		if !equalNames(rr.Header().Name, name) {
			continue
		}
		if rr.Header().Rrtype == dns.TypeCNAME {
			return true
		}
		if matchesType(rr, qtype) {
			return false
		}
	}
	return false
}

// matchesType reports whether rr answers qtype at its owner.
func matchesType(rr dns.RR, qtype uint16) bool {
	t := rr.Header().Rrtype
	return t == qtype || qtype == dns.TypeANY && t != dns.TypeRRSIG
}

// dnameTarget synthesises the CNAME target for name under a DNAME
// (RFC 6672 §2.2); false when the result would be too long.
func dnameTarget(name string, d *dns.DNAME) (string, bool) {
	prefix := name[:len(name)-len(d.Hdr.Name)]
	t := prefix + d.Target
	if d.Target == "." {
		t = prefix
	}
	if len(t) > 255 {
		return "", false
	}
	if _, ok := dns.IsDomainName(t); !ok {
		return "", false
	}
	return t, true
}

// hasUpwardNS reports whether rrs hold an NS set at zone or above it.
func hasUpwardNS(rrs []dns.RR, zone string) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeNS && inBailiwick(zone, rr.Header().Name) {
			return true
		}
	}
	return false
}

// scrubAuthority keeps denial and delegation records inside zone.
func scrubAuthority(rrs, sigs []dns.RR, zone, name string) []dns.RR {
	keep := make([]bool, len(rrs))
	nsOwner := ""
	for i, rr := range rrs {
		h := rr.Header()
		if !inBailiwick(h.Name, zone) {
			continue
		}
		switch h.Rrtype {
		case dns.TypeSOA, dns.TypeDS, dns.TypeNSEC3:
			keep[i] = true
		case dns.TypeNSEC:
			keep[i] = !overreaching(rr, zone)
		case dns.TypeNS:
			// One NS owner only, and only one that is name or above it:
			// NS sets for other names are promiscuous.
			if !inBailiwick(name, h.Name) || nsOwner != "" && !equalNames(nsOwner, h.Name) {
				continue
			}
			nsOwner = h.Name
			keep[i] = true
		}
	}
	return keepWithSigs(rrs, keep, sigs)
}

// overreaching reports whether rr is an NSEC whose next name lies outside
// the zone asked: the server cannot speak for the names it would deny
// there, and aggressive use (RFC 8198) would carry the denial into
// another zone (Unbound's scrub).
func overreaching(rr dns.RR, zone string) bool {
	n, ok := rr.(*dns.NSEC)
	return ok && !inBailiwick(n.NextDomain, zone)
}

// capNS drops the NS records of each owner beyond the first max. The
// scrubber owns rrs: when no owner has too many, which needs no more NS
// records than max in all, rrs itself is returned rather than copied
// (issue #6).
func capNS(rrs []dns.RR, max int) []dns.RR {
	if countType(rrs, dns.TypeNS) <= max {
		return rrs
	}
	seen := map[string]int{}
	out := rrs[:0:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeNS {
			owner := strings.ToLower(rr.Header().Name)
			if seen[owner]++; seen[owner] > max {
				continue
			}
		}
		out = append(out, rr)
	}
	return out
}

// countType returns how many records of rrs have type t.
func countType(rrs []dns.RR, t uint16) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			n++
		}
	}
	return n
}

// scrubAdditional keeps addresses of NS names named in authority or
// answer, and only those inside zone: glue for an NS name elsewhere would
// let any server speak for any name. Each address is held to the NS
// records by a scan rather than a set of their names: both sections are
// capped at maxNS already, and the set cost two maps per answer (issue
// #6). A reply whose additional records all stay, as most answers' do,
// comes back as it was.
func scrubAdditional(rrs, sigs, ns, answer []dns.RR, zone string) []dns.RR {
	switch {
	case len(rrs) == 0:
		return nil
	case len(rrs) == 1 && rrs[0].Header().Rrtype == dns.TypeOPT:
		return rrs[:1:1] // most answers' section, signed or not: see keepWithSigs
	}
	var buf [8]bool
	keep := buf[:0]
	if len(rrs) > len(buf) {
		keep = make([]bool, 0, len(rrs))
	}
	for _, rr := range rrs {
		switch h := rr.Header(); h.Rrtype {
		case dns.TypeOPT:
			keep = append(keep, true)
		case dns.TypeA, dns.TypeAAAA:
			keep = append(keep, inBailiwick(h.Name, zone) && (namedByNS(h.Name, ns) || namedByNS(h.Name, answer)))
		default:
			keep = append(keep, false)
		}
	}
	return keepWithSigs(rrs, keep, sigs)
}

// namedByNS reports whether an NS record of rrs names host.
func namedByNS(host string, rrs []dns.RR) bool {
	for _, rr := range rrs {
		if n, ok := rr.(*dns.NS); ok && equalNames(n.Ns, host) {
			return true
		}
	}
	return false
}

// ofClass drops records of another class than the question's: a CH
// referral must not steer an IN resolution. OPT uses the class field for
// the payload size and is kept. When nothing is dropped it returns rrs
// itself, which the scrubber only reads.
func ofClass(rrs []dns.RR, qclass uint16) []dns.RR {
	return without(rrs, func(rr dns.RR) bool {
		h := rr.Header()
		return h.Class != qclass && h.Rrtype != dns.TypeOPT
	})
}

// without returns rrs without the records drop reports: rrs itself when
// it drops none, which spares the copy on the common path (issue #6), and
// else a new slice, so that rrs is never modified.
func without(rrs []dns.RR, drop func(dns.RR) bool) []dns.RR {
	for i, rr := range rrs {
		if drop(rr) {
			out := append(make([]dns.RR, 0, len(rrs)), rrs[:i]...)
			for _, rr := range rrs[i+1:] {
				if !drop(rr) {
					out = append(out, rr)
				}
			}
			return out
		}
	}
	return rrs
}

// rrsigsIn returns the RRSIGs of all sections.
func rrsigsIn(sections ...[]dns.RR) []dns.RR {
	var out []dns.RR
	for _, sec := range sections {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeRRSIG {
				out = append(out, rr)
			}
		}
	}
	return out
}

// keepWithSigs returns the kept records, each RRset followed by the
// RRSIGs from sigs that cover it. When it keeps all of rrs and there is no
// RRSIG to place, as in most unsigned answers, it returns rrs itself,
// capped so that an append copies, rather than a copy: neither in's
// sections nor the scrubbed ones are ever written into, only replaced
// (issue #6).
func keepWithSigs(rrs []dns.RR, keep []bool, sigs []dns.RR) []dns.RR {
	if len(rrs) > 0 && len(sigs) == 0 && !slices.Contains(keep, false) {
		return rrs[:len(rrs):len(rrs)]
	}
	return appendKept(nil, rrs, keep, sigs)
}

// appendKept appends keepWithSigs's records to out.
func appendKept(out, rrs []dns.RR, keep []bool, sigs []dns.RR) []dns.RR {
	type ot struct {
		owner string
		t     uint16
	}
	kept := map[ot]bool{}
	for i, rr := range rrs {
		if keep[i] && rr.Header().Rrtype != dns.TypeRRSIG {
			kept[ot{strings.ToLower(rr.Header().Name), rr.Header().Rrtype}] = true
		}
	}
	for i, rr := range rrs {
		// RRSIGs come from sigs below, except when they were asked for.
		if keep[i] && (rr.Header().Rrtype != dns.TypeRRSIG || !kept[ot{strings.ToLower(rr.Header().Name), rr.(*dns.RRSIG).TypeCovered}]) {
			out = append(out, rr)
		}
	}
	for _, rr := range sigs {
		sig := rr.(*dns.RRSIG)
		if kept[ot{strings.ToLower(sig.Hdr.Name), sig.TypeCovered}] {
			out = append(out, rr)
		}
	}
	return out
}

// lowerNames lowers owner names and CNAME/DNAME targets. Servers echo the
// 0x20-mixed question name into the records they answer with; the cache
// and the client must see one spelling.
func lowerNames(rrs []dns.RR) {
	for _, rr := range rrs {
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		switch v := rr.(type) {
		case *dns.CNAME:
			v.Target = strings.ToLower(v.Target)
		case *dns.DNAME:
			v.Target = strings.ToLower(v.Target)
		}
	}
}
