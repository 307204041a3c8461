package transport

import (
	"encoding/binary"
	"net"

	"github.com/miekg/dns"
)

// unpackFast unpacks a reply as unpackReply's library path does (Unpack,
// the question given the resolver's spelling, owner names respelled), but
// with the owner names that point into the echoed question (an answer's,
// a referral's NS set, a denial's SOA: most of them) taken from qname
// instead of decoded into strings of their own, the question's name not
// decoded at all, and the records of all three sections in one slice.
// The library path took 30% of an exchange's user time, and its name
// strings were most of its allocations (issue #6). ok is false for any
// reply it does not read exactly as the library would, which then reads
// it: a name in the question that needs escapes, a count the message does
// not hold, a record the library refuses, a second question.
// FuzzUnpackFastMatchesTheLibrary holds the two paths to the same result.
func unpackFast(b []byte, wq *wireQuery, qname string) (m *dns.Msg, ok bool) {
	if len(b) < headerLen || binary.BigEndian.Uint16(b[4:]) != 1 {
		return nil, false
	}
	var labels [maxLabels]questionLabel
	n, ok := questionLabels(b, wq.nameEnd, qname, &labels)
	if !ok || wq.nameEnd+4 > len(b) {
		return nil, false
	}
	m = new(dns.Msg)
	if m.Unpack(b[:headerLen]) != nil { // the header alone: the library's flags, no sections
		return nil, false
	}
	m.Question = []dns.Question{{Name: qname, Qtype: binary.BigEndian.Uint16(b[wq.nameEnd:]), Qclass: binary.BigEndian.Uint16(b[wq.nameEnd+2:])}}
	off := wq.nameEnd + 4
	counts := [3]int{int(binary.BigEndian.Uint16(b[6:])), int(binary.BigEndian.Uint16(b[8:])), int(binary.BigEndian.Uint16(b[10:]))}
	total := counts[0] + counts[1] + counts[2]
	if total > (len(b)-off)/minRRLen {
		return nil, false // a count the message cannot hold
	}
	rrs := make([]dns.RR, total)
	for i := range rrs {
		if rrs[i], off, ok = unpackRR(b, off, qname, labels[:n]); !ok {
			return nil, false
		}
	}
	m.Answer, m.Ns, m.Extra = section(rrs, 0, counts[0]), section(rrs, counts[0], counts[1]), section(rrs, counts[0]+counts[1], counts[2])
	if opt := m.IsEdns0(); opt != nil {
		m.Rcode |= opt.ExtendedRcode()
	}
	return m, true
}

// maxLabels bounds the labels of a question the fast path reads; a name
// with more takes the library path. Bounded well below a name's 127, so
// that the labels' array keeps the frame of every exchange small.
const maxLabels = 16

// minRRLen is the shortest record: the root name, then type, class, TTL
// and RDATA length.
const minRRLen = 11

// questionLabel is where a label of the question's name starts in the
// message, and where the name from that label on starts in qname.
type questionLabel struct{ wire, name int }

// questionLabels finds the labels of the question's name, which ends at
// nameEnd, and reports whether the name reads as qname letter for letter:
// labels of letters, digits, hyphens and underscores only, which the
// library decodes without escapes. The root label's name is qname's last
// dot.
func questionLabels(b []byte, nameEnd int, qname string, labels *[maxLabels]questionLabel) (int, bool) {
	off, pos := headerLen, 0
	for n := 0; off < nameEnd && n < maxLabels; n++ {
		l := int(b[off])
		if l == 0 {
			if qname != "." && pos != len(qname) || off+1 != nameEnd {
				return 0, false
			}
			labels[n] = questionLabel{wire: off, name: len(qname) - 1}
			return n + 1, true
		}
		if l > 63 || off+1+l >= nameEnd || pos+l >= len(qname) || qname[pos+l] != '.' {
			return 0, false
		}
		for i, c := range b[off+1 : off+1+l] {
			if c != qname[pos+i] || !plainByte(c) {
				return 0, false
			}
		}
		labels[n] = questionLabel{wire: off, name: pos}
		off, pos = off+1+l, pos+l+1
	}
	return 0, false
}

func plainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// unpackRR unpacks the record at off: its owner name from qname when it
// is a pointer to a label of the question, else decoded and respelled as
// unpackReply respells; its RDATA by unpackCommon, else by the library.
func unpackRR(b []byte, off int, qname string, labels []questionLabel) (dns.RR, int, bool) {
	var h dns.RR_Header
	if off+2 <= len(b) && b[off]&0xC0 == 0xC0 {
		ptr := int(binary.BigEndian.Uint16(b[off:]) & 0x3FFF)
		for _, l := range labels {
			if l.wire == ptr {
				h.Name = qname[l.name:]
				off += 2
				break
			}
		}
	}
	if h.Name == "" {
		name, next, err := dns.UnpackDomainName(b, off)
		if err != nil {
			return nil, 0, false
		}
		h.Name, off = respell(name, qname), next
	}
	if off+10 > len(b) {
		return nil, 0, false
	}
	h.Rrtype, h.Class = binary.BigEndian.Uint16(b[off:]), binary.BigEndian.Uint16(b[off+2:])
	h.Ttl, h.Rdlength = binary.BigEndian.Uint32(b[off+4:]), binary.BigEndian.Uint16(b[off+8:])
	off += 10
	end := off + int(h.Rdlength)
	if end > len(b) {
		return nil, 0, false
	}
	if rr, ok := unpackCommon(h, b[:end], off); ok {
		return rr, end, true
	}
	rr, next, err := dns.UnpackRRWithHeader(h, b[:end], off)
	if err != nil || next != end {
		return nil, 0, false
	}
	return rr, end, true
}

// unpackCommon unpacks the RDATA at off, which ends with b, of the records
// most replies carry (A, AAAA, NS, an OPT without options) as the library
// does, but without its lookup of the type's constructor in a map, and an
// address with its record in one allocation: those were a fifth of
// unpackRR's samples in a cold-flat profile (issue #6). ok is false for
// anything else, which the library unpacks: another type, RDATA of
// another length than the type's, or none, or class ANY (the library
// then leaves the record empty).
func unpackCommon(h dns.RR_Header, b []byte, off int) (rr dns.RR, ok bool) {
	if h.Rrtype == dns.TypeOPT && h.Rdlength == 0 {
		return &dns.OPT{Hdr: h}, true
	}
	if h.Class == dns.ClassANY || h.Rdlength == 0 {
		return nil, false
	}
	switch {
	case h.Rrtype == dns.TypeA && len(b)-off == net.IPv4len:
		a := new(struct {
			rr dns.A
			ip [net.IPv4len]byte
		})
		a.rr.Hdr, a.rr.A = h, append(a.ip[:0], b[off:]...)
		return &a.rr, true
	case h.Rrtype == dns.TypeAAAA && len(b)-off == net.IPv6len:
		a := new(struct {
			rr dns.AAAA
			ip [net.IPv6len]byte
		})
		a.rr.Hdr, a.rr.AAAA = h, append(a.ip[:0], b[off:]...)
		return &a.rr, true
	case h.Rrtype == dns.TypeNS:
		name, next, err := dns.UnpackDomainName(b, off)
		if err != nil || next != len(b) {
			return nil, false
		}
		return &dns.NS{Hdr: h, Ns: name}, true
	}
	return nil, false
}

// section is rrs[start:start+n], or nil when n is 0, as the library
// leaves an empty section; its capacity ends with it, so that an append
// to one section cannot overwrite the next.
func section(rrs []dns.RR, start, n int) []dns.RR {
	if n == 0 {
		return nil
	}
	return rrs[start : start+n : start+n]
}
