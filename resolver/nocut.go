package resolver

import (
	"time"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/miekg/dns"
)

// A minimised NS question that gets NODATA shows that its name is no zone
// cut (an empty non-terminal, or a name with data of other types). The
// next names under it would ask the same question of the same servers, so
// the answer is kept, for its negative TTL and no longer than the cut it
// came from lives, on a side of the cache no client lookup reads, and
// minimisation steps over the name while it is remembered (Unbound finds
// the same in its message cache). Trusting a forged NODATA here costs only
// privacy, never correctness: the name is then asked in full of the same
// servers, which must still refer to any cut below.

// rememberNoCut keeps the NODATA reply to the minimised question of q.
func (r *Resolver) rememberNoCut(q *query) {
	soa := rrsOfType(q.reply.msg.Ns, dns.TypeSOA)
	if len(soa) == 0 {
		return
	}
	auth := negativeAuthority([]dns.RR{dns.Copy(soa[0])})
	clampTTL(auth, q.cut.ttl)
	k := cache.NewKey(q.askName, dns.TypeNS, q.qclass).On(cache.SideNoCut)
	r.cache.Put(k, cache.Entry{Ns: auth, Rank: cache.RankAuthorityAA, Security: cache.Unchecked}, r.clock.Now())
}

// knownNoCut reports whether name was found to hold no zone cut.
func (r *Resolver) knownNoCut(name string, qclass uint16, now time.Time) bool {
	_, ok := r.cache.Get(cache.NewKey(name, dns.TypeNS, qclass).On(cache.SideNoCut), now)
	return ok
}
