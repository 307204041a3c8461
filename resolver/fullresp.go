package resolver

import (
	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// fullSections fills the authority and additional sections of a positive
// answer when minimal responses are off (Unbound's minimal-responses: no):
// the zone's NS set and glue from the final reply, never a record the
// answer holds.
func fullSections(res *result) (ns, extra []dns.RR) {
	inAnswer := map[cache.Key]bool{}
	for _, rr := range res.answer {
		inAnswer[keyOf(rr)] = true
	}
	ns, extra = notIn(res.authNS, inAnswer), notIn(res.glue, inAnswer)
	if res.security == cache.Secure {
		ns, extra = signedOnly(ns), signedOnly(extra)
	}
	return ns, extra
}

// signedOnly drops the RRsets of rrs that carry no RRSIG. Next to a
// Secure answer, which a client may trust for its AD bit, unsigned NS or
// glue cannot be Secure: Unbound's validator strips a spurious unsigned
// NS set from a positive answer's authority section and unsigned
// additional data (val-clean-additional), rather than fail the answer.
func signedOnly(rrs []dns.RR) []dns.RR {
	signed := map[cache.Key]bool{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeRRSIG {
			signed[keyOf(rr)] = true
		}
	}
	out := rrs[:0:0]
	for _, rr := range rrs {
		if signed[keyOf(rr)] {
			out = append(out, rr)
		}
	}
	return out
}

func keyOf(rr dns.RR) cache.Key {
	h := rr.Header()
	t := h.Rrtype
	if sig, ok := rr.(*dns.RRSIG); ok {
		t = sig.TypeCovered
	}
	return cache.NewKey(h.Name, t, h.Class)
}

// notIn returns the records of rrs whose RRset is not in set.
func notIn(rrs []dns.RR, set map[cache.Key]bool) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if !set[keyOf(rr)] {
			out = append(out, rr)
		}
	}
	return out
}
