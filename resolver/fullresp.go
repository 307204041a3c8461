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
	return notIn(res.authNS, inAnswer), notIn(res.glue, inAnswer)
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
