package replay

import (
	"strings"

	"github.com/miekg/dns"
)

// canonicalText renders rr for comparison: owner and embedded names in
// lower case (RFC 4034 §6.2), TTL zeroed unless ttl, and rdata in the form
// a wire round trip gives, so that a record parsed from text and one
// unpacked from a reply compare equal.
func canonicalText(rr dns.RR, ttl bool) string {
	c := roundTrip(rr)
	h := c.Header()
	h.Name = strings.ToLower(h.Name)
	if !ttl {
		h.Ttl = 0
	}
	lowerNames(c)
	return strings.Join(strings.Fields(c.String()), " ")
}

// roundTrip packs and unpacks rr; records that do not survive (malformed
// on purpose) are kept as they are.
func roundTrip(rr dns.RR) dns.RR {
	buf := make([]byte, dns.Len(rr)+64)
	off, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return dns.Copy(rr)
	}
	out, _, err := dns.UnpackRR(buf[:off], 0)
	if err != nil || out == nil {
		return dns.Copy(rr)
	}
	return out
}

// lowerNames lowers the domain names inside the rdata of the types whose
// names RFC 4034 §6.2 puts in canonical (lower) case.
func lowerNames(rr dns.RR) {
	l := strings.ToLower
	switch v := rr.(type) {
	case *dns.NS:
		v.Ns = l(v.Ns)
	case *dns.CNAME:
		v.Target = l(v.Target)
	case *dns.DNAME:
		v.Target = l(v.Target)
	case *dns.PTR:
		v.Ptr = l(v.Ptr)
	case *dns.MX:
		v.Mx = l(v.Mx)
	case *dns.SOA:
		v.Ns, v.Mbox = l(v.Ns), l(v.Mbox)
	case *dns.SRV:
		v.Target = l(v.Target)
	case *dns.RRSIG:
		v.SignerName = l(v.SignerName)
	case *dns.NSEC:
		v.NextDomain = l(v.NextDomain)
	case *dns.NAPTR:
		v.Replacement = l(v.Replacement)
	case *dns.KX:
		v.Exchanger = l(v.Exchanger)
	case *dns.PX:
		v.Map822, v.Mapx400 = l(v.Map822), l(v.Mapx400)
	case *dns.RP:
		v.Mbox, v.Txt = l(v.Mbox), l(v.Txt)
	case *dns.AFSDB:
		v.Hostname = l(v.Hostname)
	}
}
