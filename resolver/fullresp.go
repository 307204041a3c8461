package resolver

import (
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// fullSections fills the authority and additional sections of a positive
// answer when minimal responses are off (Unbound's minimal-responses: no):
// the zone's NS set and glue from the final reply, or for an answer from
// the cache the zone's cached NS set; never a record the answer holds.
func (r *Resolver) fullSections(res *result) (ns, extra []dns.RR) {
	ns = res.authNS
	if res.zone == "" { // answered from the cache
		ns = r.cachedZoneNS(res, r.clock.Now())
	}
	inAnswer := map[cache.Key]bool{}
	for _, rr := range res.answer {
		inAnswer[keyOf(rr)] = true
	}
	return notIn(ns, inAnswer), notIn(res.glue, inAnswer)
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

// cachedZoneNS returns the cached NS set (with RRSIGs) of the closest zone
// enclosing the answer's last owner.
func (r *Resolver) cachedZoneNS(res *result, now time.Time) []dns.RR {
	name := res.answer[len(res.answer)-1].Header().Name
	for n := strings.ToLower(name); ; n = parentName(n) {
		if e, ok := r.cache.Get(cache.NewKey(n, dns.TypeNS, dns.ClassINET), now); ok && !e.Negative() {
			return append(e.RRs, e.Sigs...)
		}
		if n == "." {
			return nil
		}
	}
}
