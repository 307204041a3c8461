package transport

import (
	"encoding/binary"
	"fmt"

	"github.com/miekg/dns"
)

// opaqueTypes are the types whose RDATA a resolver passes on without
// reading it, so a form the library refuses (an SVCB with a repeated or
// overlong key, which RFC 9460 §2.2 leaves the SVCB client to reject) is
// kept as opaque RFC 3597 data rather than failing the whole reply.
// Types the resolver interprets (NS, addresses, chains, DNSSEC) stay strict.
var opaqueTypes = map[uint16]bool{dns.TypeSVCB: true, dns.TypeHTTPS: true}

// placeholderType stands in for an opaque record's type while the
// library unpacks the message: a private-use type it reads as RFC 3597.
const placeholderType = 65534

// UnpackLenient unpacks b, first strictly, then with records of
// opaqueTypes the library refuses read as RFC 3597 data of their own type.
func UnpackLenient(b []byte) (*dns.Msg, error) {
	m := new(dns.Msg)
	err := m.Unpack(b)
	if err == nil {
		return m, nil
	}
	redo := make([]byte, len(b))
	copy(redo, b)
	marked, werr := markOpaque(redo)
	if werr != nil || len(marked) == 0 {
		return nil, err
	}
	m = new(dns.Msg)
	if uerr := m.Unpack(redo); uerr != nil {
		return nil, err
	}
	rrs := sectionsOf(m)
	for i, t := range marked {
		// The library may count records otherwise than the wire walk (a
		// message it reads differently): then the strict error stands.
		if i >= len(rrs) || rrs[i].Header().Rrtype != placeholderType {
			return nil, err
		}
		rrs[i].Header().Rrtype = t
	}
	return m, nil
}

// markOpaque rewrites, in b, the type of each record of opaqueTypes whose
// RDATA does not unpack to placeholderType, and returns those records'
// indexes (counted over answer, authority and additional) with their types.
func markOpaque(b []byte) (map[int]uint16, error) {
	if len(b) < headerLen {
		return nil, fmt.Errorf("message of %d bytes", len(b))
	}
	qd := int(binary.BigEndian.Uint16(b[4:]))
	rrCount := int(binary.BigEndian.Uint16(b[6:])) + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
	off := headerLen
	for range qd {
		_, next, err := dns.UnpackDomainName(b, off)
		if err != nil {
			return nil, err
		}
		off = next + 4
	}
	marked := map[int]uint16{}
	for i := range rrCount {
		start := off
		_, next, err := dns.UnpackDomainName(b, off)
		if err != nil || next+10 > len(b) {
			return nil, fmt.Errorf("record %d: truncated", i)
		}
		t := binary.BigEndian.Uint16(b[next:])
		off = next + 10 + int(binary.BigEndian.Uint16(b[next+8:]))
		if off > len(b) {
			return nil, fmt.Errorf("record %d: RDATA past the end", i)
		}
		if _, _, err := dns.UnpackRR(b, start); err != nil && opaqueTypes[t] {
			binary.BigEndian.PutUint16(b[next:], placeholderType)
			marked[i] = t
		}
	}
	return marked, nil
}

// sectionsOf returns the records of the answer, authority and additional
// sections in wire order. The OPT record is among them, as on the wire.
func sectionsOf(m *dns.Msg) []dns.RR {
	out := make([]dns.RR, 0, len(m.Answer)+len(m.Ns)+len(m.Extra))
	out = append(out, m.Answer...)
	out = append(out, m.Ns...)
	return append(out, m.Extra...)
}
