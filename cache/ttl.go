package cache

import (
	"math"
	"time"

	"github.com/miekg/dns"
)

// Lifetime returns how long Put would keep e if stored at now; zero means
// Put refuses it.
//
//   - Positive entry: the smallest TTL over RRs and Sigs. Zero stays zero,
//     because the owner asked that the data not be cached (RFC 1035
//     §3.2.1), unless the entry carries a Grace; any other value is
//     clamped to [MinTTL, MaxTTL].
//   - Negative entry: min(SOA TTL, SOA MINIMUM) of the SOA in Ns (RFC 2308
//     §5), lowered to the TTL of any other record in Ns or Sigs so that the
//     denial proofs do not outlive themselves (RFC 9077 §3), capped by
//     MaxNegativeTTL. Without an SOA it is zero: RFC 2308 §5 says such
//     answers SHOULD NOT be cached, since nothing stops them looping between
//     servers. MinTTL does not raise negative entries.
//   - Secure entry: further capped, after MinTTL, by every RRSIG's Original
//     TTL and the time left to its signature expiration (RFC 4035 §5.3.3),
//     so the cache never serves data whose signatures have run out.
//   - Bogus entry: min(BogusTTL, the lifetime above); a negative one without
//     an SOA lives BogusTTL, since it is only kept to answer SERVFAIL.
//
// TTLs with the top bit set count as zero (RFC 2181 §8). An entry holding a
// nil record gets zero.
func (c *Cache) Lifetime(e *Entry, now time.Time) time.Duration {
	var life time.Duration
	var known bool
	if len(e.RRs) > 0 {
		life, known = c.positiveLife(e)
	} else {
		life, known = c.negativeLife(e)
	}
	switch {
	case e.Security == Bogus && !known:
		return c.cfg.BogusTTL
	case e.Security == Bogus:
		return min(life, c.cfg.BogusTTL)
	case e.Security == Secure:
		return min(life, sigLife(e, now))
	}
	return life
}

func (c *Cache) positiveLife(e *Entry) (time.Duration, bool) {
	ttl := minTTL(maxWireTTL, e.RRs, e.Sigs)
	if ttl == 0 {
		return max(e.Grace, 0), true
	}
	return min(max(seconds(ttl), c.cfg.MinTTL), c.cfg.MaxTTL), true
}

func (c *Cache) negativeLife(e *Entry) (time.Duration, bool) {
	var soa *dns.SOA
	for _, rr := range e.Ns {
		if s, ok := rr.(*dns.SOA); ok {
			soa = s
			break
		}
	}
	if soa == nil {
		return 0, false
	}
	ttl := minTTL(wireTTL(soa.Minttl), e.Ns, e.Sigs)
	return min(seconds(ttl), c.cfg.MaxNegativeTTL), true
}

// sigLife is the longest a Secure entry may live by its signatures.
func sigLife(e *Entry, now time.Time) time.Duration {
	life := time.Duration(math.MaxInt64)
	for _, set := range [2][]dns.RR{e.Sigs, e.Ns} {
		for _, rr := range set {
			if sig, ok := rr.(*dns.RRSIG); ok {
				orig := seconds(wireTTL(sig.OrigTtl))
				if orig == 0 && len(e.RRs) > 0 {
					orig = max(e.Grace, 0) // signed with TTL 0: the grace, as for the records
				}
				life = min(life, orig, untilExpiration(sig, now))
			}
		}
	}
	return life
}

// untilExpiration is the time from now to sig's Signature Expiration, read
// in serial number arithmetic (RFC 4034 §3.1.5) around now, or zero when it
// has passed.
func untilExpiration(sig *dns.RRSIG, now time.Time) time.Duration {
	delta := int32(sig.Expiration - uint32(now.Unix()))
	if delta <= 0 {
		return 0
	}
	return time.Unix(now.Unix()+int64(delta), 0).Sub(now)
}

// minTTL returns the smallest of limit and every record's TTL, or zero
// when a set holds a nil record.
func minTTL(limit uint32, sets ...[]dns.RR) uint32 {
	for _, set := range sets {
		for _, rr := range set {
			if rr == nil {
				return 0
			}
			limit = min(limit, wireTTL(rr.Header().Ttl))
		}
	}
	return limit
}

// wireTTL reads a TTL as RFC 2181 §8 asks: values with the top bit set
// are zero.
func wireTTL(ttl uint32) uint32 {
	if ttl > maxWireTTL {
		return 0
	}
	return ttl
}

func seconds(ttl uint32) time.Duration { return time.Duration(ttl) * time.Second }
