package replay

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// entry reads the lines after ENTRY_BEGIN up to ENTRY_END.
func (p *parser) entry() (*Entry, error) {
	e := newEntry(p.lineNo)
	cur, section := e, -1
	for {
		line, ok := p.next()
		if !ok {
			return nil, fmt.Errorf("entry at line %d: no ENTRY_END", e.Line)
		}
		fields := strings.Fields(line)
		var err error
		switch fields[0] {
		case "ENTRY_END":
			return e, nil
		case "MATCH":
			err = cur.addMatch(fields[1:])
		case "ADJUST":
			for _, f := range fields[1:] {
				cur.Adjust[f] = true
			}
		case "REPLY", "FLAGS":
			err = cur.addReply(fields[1:])
		case "SECTION":
			section, err = sectionIndex(fields)
		case "HEX_ANSWER_BEGIN":
			cur.HexAnswer, err = p.hexBlock("HEX_ANSWER_END")
		case "HEX_EDNSDATA_BEGIN":
			cur.EDNSData, err = p.hexBlock("HEX_EDNSDATA_END")
			cur.HasEDNSData = true
		case "RAW":
			err = p.raw(cur)
		case "EXTRA_PACKET":
			cur, section = newEntry(p.lineNo), -1
			e.Extra = append(e.Extra, cur)
		case "MANDATORY":
			cur.Mandatory = true
		case "$ORIGIN", "$TTL":
			err = p.directive(fields)
		default:
			err = p.record(cur, section, line)
		}
		if err != nil {
			return nil, err
		}
	}
}

func newEntry(line int) *Entry {
	return &Entry{Line: line, Match: map[string]bool{}, Adjust: map[string]bool{}}
}

// raw reads the one hex line that follows a Deckard RAW keyword.
func (p *parser) raw(e *Entry) error {
	line, ok := p.next()
	if !ok {
		return fmt.Errorf("RAW without data")
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(line), ""))
	if err != nil {
		return fmt.Errorf("RAW: %w", err)
	}
	e.Raw = b
	return nil
}

// addMatch records MATCH elements; ede=N is kept apart.
func (e *Entry) addMatch(elems []string) error {
	for _, m := range elems {
		v, isEDE := strings.CutPrefix(m, "ede=")
		if !isEDE {
			e.Match[m] = true
			continue
		}
		e.HasEDE = true
		if v == "any" {
			e.EDE = -1
			continue
		}
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return fmt.Errorf("MATCH ede=%q: %w", v, err)
		}
		e.EDE = int(n)
	}
	return nil
}

// addReply applies the opcode, rcode and flags of a REPLY line.
func (e *Entry) addReply(words []string) error {
	for _, w := range words {
		if op, ok := dns.StringToOpcode[w]; ok {
			e.Opcode = op
			continue
		}
		if rc, ok := rcodeByName(w); ok {
			e.Rcode = rc
			continue
		}
		if !e.Flags.set(w) && w != "DO" {
			return fmt.Errorf("REPLY: unknown word %q", w)
		}
		e.DO = e.DO || w == "DO"
	}
	return nil
}

func rcodeByName(w string) (int, bool) {
	switch w {
	case "NOTIMPL":
		return dns.RcodeNotImplemented, true
	case "NOERROR":
		return dns.RcodeSuccess, true
	}
	rc, ok := dns.StringToRcode[w]
	return rc, ok
}

// set turns on the header bit named w and reports whether w is one.
func (f *Flags) set(w string) bool {
	bits := map[string]*bool{"QR": &f.QR, "AA": &f.AA, "TC": &f.TC, "RD": &f.RD, "RA": &f.RA, "AD": &f.AD, "CD": &f.CD}
	b, ok := bits[w]
	if ok {
		*b = true
	}
	return ok
}

// sectionIndex maps SECTION names to -1 (question) or a Sections index.
func sectionIndex(fields []string) (int, error) {
	if len(fields) < 2 {
		return 0, fmt.Errorf("SECTION without a name")
	}
	switch fields[1] {
	case "QUESTION":
		return -1, nil
	case "ANSWER":
		return secAnswer, nil
	case "AUTHORITY":
		return secAuthority, nil
	case "ADDITIONAL":
		return secAdditional, nil
	}
	return 0, fmt.Errorf("unknown SECTION %q", fields[1])
}

// record parses a question or RR line into the current section.
func (p *parser) record(e *Entry, section int, line string) error {
	if section == -1 {
		q, err := parseQuestion(line, p.origin)
		if err != nil {
			return err
		}
		e.Question = append(e.Question, q)
		return nil
	}
	rr, err := parseRR(line, p.origin, p.ttl)
	if err != nil {
		return err
	}
	e.Sections[section] = append(e.Sections[section], rr)
	return nil
}

// parseRR parses one zone-file line, relative to origin, with default ttl.
func parseRR(line, origin string, ttl uint32) (dns.RR, error) {
	zp := dns.NewZoneParser(strings.NewReader(line), origin, "")
	zp.SetDefaultTTL(ttl)
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		if unknown, uerr := parseGenericRR(line, origin, ttl); uerr == nil {
			return unknown, nil
		}
		return nil, fmt.Errorf("record %q: %w", line, err)
	}
	if !ok || rr == nil {
		return nil, fmt.Errorf("record %q: nothing parsed", line)
	}
	sortTypeBitmap(rr)
	fixBase64(rr)
	return rr, nil
}

// sortTypeBitmap puts an NSEC or NSEC3 type list in order: scenarios list
// types as written (SOA NS ...), ldns sorts them when it builds the wire
// form, and miekg/dns refuses to pack them unsorted.
func sortTypeBitmap(rr dns.RR) {
	switch v := rr.(type) {
	case *dns.NSEC:
		v.TypeBitMap = sortedTypes(v.TypeBitMap)
	case *dns.NSEC3:
		v.TypeBitMap = sortedTypes(v.TypeBitMap)
	}
}

// fixBase64 re-encodes a signature or key whose base64 only a lenient
// decoder takes (scenarios write placeholders such as "UNUSABLE=="), so
// that it packs to the bytes dnspython and ldns would send.
func fixBase64(rr dns.RR) {
	switch v := rr.(type) {
	case *dns.RRSIG:
		v.Signature = lenientBase64(v.Signature)
	case *dns.DNSKEY:
		v.PublicKey = lenientBase64(v.PublicKey)
	}
}

func lenientBase64(s string) string {
	if _, err := base64.StdEncoding.DecodeString(s); err == nil {
		return s
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return s
	}
	return base64.StdEncoding.EncodeToString(b)
}

func sortedTypes(ts []uint16) []uint16 {
	slices.Sort(ts)
	return slices.Compact(ts)
}

// parseQuestion parses "name [class] type" in either order of class and
// type, with TYPEnnn / CLASSnnn forms.
func parseQuestion(line, origin string) (dns.Question, error) {
	f := strings.Fields(line)
	name := f[0]
	if !dns.IsFqdn(name) {
		name = dns.Fqdn(name + "." + strings.TrimSuffix(origin, "."))
		if origin == "." {
			name = dns.Fqdn(f[0])
		}
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return dns.Question{}, fmt.Errorf("question %q: bad name", line)
	}
	q := dns.Question{Name: name, Qclass: dns.ClassINET}
	typed := false
	for i, w := range f[1:] {
		if _, err := strconv.ParseUint(w, 10, 32); err == nil {
			continue // a TTL, meaningless in a question
		}
		// ANY names both a class and a type: last it is the type.
		if c, ok := classByName(w); ok && (w != "ANY" || i+2 < len(f)) {
			q.Qclass = c
			continue
		}
		t, ok := typeByName(w)
		if !ok {
			return q, fmt.Errorf("question %q: unknown type or class %q", line, w)
		}
		q.Qtype, typed = t, true
	}
	if !typed {
		return q, fmt.Errorf("question %q: no type", line)
	}
	return q, nil
}

func typeByName(w string) (uint16, bool) {
	w = strings.ToUpper(w)
	if t, ok := dns.StringToType[w]; ok {
		return t, true
	}
	if n, ok := strings.CutPrefix(w, "TYPE"); ok {
		v, err := strconv.ParseUint(n, 10, 16)
		return uint16(v), err == nil
	}
	return 0, false
}

func classByName(w string) (uint16, bool) {
	w = strings.ToUpper(w)
	if c, ok := dns.StringToClass[w]; ok {
		return c, true
	}
	if n, ok := strings.CutPrefix(w, "CLASS"); ok {
		v, err := strconv.ParseUint(n, 10, 16)
		return uint16(v), err == nil
	}
	return 0, false
}

// parseGenericRR reads an RR in RFC 3597 form (\# len hex) without
// interpreting its rdata, so that deliberately malformed records, which
// miekg/dns refuses to parse by type, still reach the resolver as bytes.
func parseGenericRR(line, origin string, ttl uint32) (dns.RR, error) {
	head, data, ok := strings.Cut(line, `\#`)
	f := strings.Fields(head)
	if !ok || len(f) < 2 {
		return nil, fmt.Errorf("record %q: not in \\# form", line)
	}
	q, err := parseQuestion(strings.Join(f, " "), origin)
	if err != nil {
		return nil, err
	}
	for _, w := range f[1:] {
		if v, err := strconv.ParseUint(w, 10, 32); err == nil {
			ttl = uint32(v)
		}
	}
	d := strings.Fields(data)
	if len(d) == 0 {
		return nil, fmt.Errorf("record %q: no rdata length", line)
	}
	rd := strings.Join(d[1:], "")
	if n, err := strconv.Atoi(d[0]); err != nil || n*2 != len(rd) {
		return nil, fmt.Errorf("record %q: rdata length does not match", line)
	}
	if _, err := hex.DecodeString(rd); err != nil {
		return nil, fmt.Errorf("record %q: %w", line, err)
	}
	return &dns.RFC3597{Hdr: dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: q.Qclass, Ttl: ttl}, Rdata: rd}, nil
}
