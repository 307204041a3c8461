package resolver

import (
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// cacheAnswer stores every RRset of a scrubbed answer section with the
// rank its reply earns (RFC 2181 §5.4.1).
func (r *Resolver) cacheAnswer(q *query, m *dns.Msg, sec cache.Security) {
	rank := cache.RankAnswerNonAA
	if m.Authoritative {
		rank = cache.RankAnswerAA
	}
	for _, set := range splitRRsets(m.Answer) {
		if set[0].Header().Rrtype == dns.TypeRRSIG || synthesised(set[0], m.Answer) {
			continue
		}
		h := set[0].Header()
		r.putRRset(q, set, sigsFor(m.Answer, h.Name, h.Rrtype), rank, sec)
	}
}

// cacheGlue stores the addresses of NS names, with TTLs no longer than
// the NS set's: glue must not outlive the delegation it came with (the
// ghost-domain fixes).
func (r *Resolver) cacheGlue(q *query, extra, ns []dns.RR) {
	if len(ns) == 0 {
		return
	}
	nsTTL := ns[0].Header().Ttl
	for _, set := range splitRRsets(extra) {
		t := set[0].Header().Rrtype
		if t != dns.TypeA && t != dns.TypeAAAA {
			continue
		}
		for _, rr := range set {
			rr.Header().Ttl = min(rr.Header().Ttl, nsTTL)
		}
		r.putRRset(q, set, nil, cache.RankGlue, cache.Unchecked)
	}
}

// putRRset stores one RRset.
func (r *Resolver) putRRset(q *query, rrs, sigs []dns.RR, rank cache.Rank, sec cache.Security) {
	if len(rrs) == 0 {
		return
	}
	h := rrs[0].Header()
	now := r.clock.Now()
	e := cache.Entry{RRs: rrs, Sigs: sigs, Rank: rank, Security: sec}
	if h.Rrtype == dns.TypeDNAME && sec == cache.Secure {
		e.Grace = dnameGrace(now)
	}
	r.cache.Put(cache.NewKey(h.Name, h.Rrtype, h.Class), e, now)
}

// dnameGrace is how long a validated DNAME with TTL 0 stays usable for
// synthesis: to the end of the next whole second. Zone owners sign DNAMEs
// with TTL 0 so that no CNAME synthesised from them is cached, not to
// have every name under them resolved afresh; Unbound keeps such a DNAME
// one second on its second-granular clock, which is this
// (iter_dname_ttl0). What is synthesised from it still carries TTL 0.
func dnameGrace(now time.Time) time.Duration {
	return now.Truncate(time.Second).Add(2 * time.Second).Sub(now)
}

// splitRRsets groups records by (owner, type) in order of appearance.
func splitRRsets(rrs []dns.RR) [][]dns.RR {
	type ot struct {
		owner string
		t     uint16
	}
	idx := map[ot]int{}
	var sets [][]dns.RR
	for _, rr := range rrs {
		h := rr.Header()
		if h.Rrtype == dns.TypeOPT {
			continue
		}
		k := ot{strings.ToLower(h.Name), h.Rrtype}
		if i, ok := idx[k]; ok {
			sets[i] = append(sets[i], rr)
			continue
		}
		idx[k] = len(sets)
		sets = append(sets, []dns.RR{rr})
	}
	return sets
}

// addAnswer appends records to the result and folds in their security.
// A record the chain already holds is not repeated: a DNAME the chain
// passes twice is shown once (RFC 2181 §5, as Unbound and Knot answer).
func (q *query) addAnswer(rrs, sigs []dns.RR, sec cache.Security) {
	before := q.res.answer
	for _, set := range [2][]dns.RR{rrs, sigs} {
		for _, rr := range set {
			if !slices.ContainsFunc(before, func(d dns.RR) bool { return dns.IsDuplicate(d, rr) }) {
				q.res.answer = append(q.res.answer, rr)
			}
		}
	}
	q.res.security = worse(q.res.security, sec)
}

// finish ends the query with rcode.
func (r *Resolver) finish(q *query, rcode int) {
	q.res.rcode = rcode
	q.stage = stageDone
}

// finishNegative ends the query with a cached or fresh negative entry.
func (r *Resolver) finishNegative(q *query, rcode int, e cache.Entry) {
	q.res.ns = appendNew(appendNew(q.res.ns, q.res.chainProofs...), e.Ns...)
	q.res.security = worse(q.res.security, e.Security)
	r.finish(q, rcode)
}

// securityOrder ranks states from best to worst for combining the parts
// of one answer: the answer is only as secure as its weakest part.
var securityOrder = map[cache.Security]int{cache.Secure: 0, cache.Insecure: 1, cache.Indeterminate: 2, cache.Unchecked: 3, cache.Bogus: 4}

func worse(a, b cache.Security) cache.Security {
	if securityOrder[b] > securityOrder[a] {
		return b
	}
	return a
}

// synthesised reports whether rr is a CNAME made from a DNAME in the same
// answer: the DNAME is cached instead (see dnameLinks).
func synthesised(rr dns.RR, answer []dns.RR) bool {
	if rr.Header().Rrtype != dns.TypeCNAME {
		return false
	}
	for _, a := range answer {
		if a.Header().Rrtype == dns.TypeDNAME && strictlyBelow(rr.Header().Name, a.Header().Name) {
			return true
		}
	}
	return false
}
