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
	var buf [4][]dns.RR
	now := r.clock.Now()
	for _, set := range splitRRsets(m.Answer, buf[:]) {
		h := set[0].Header()
		if h.Rrtype == dns.TypeRRSIG || synthesised(set[0], m.Answer) || h.Rrtype == dns.TypeNS && !r.renewable(q, h.Name) {
			continue
		}
		r.putRRset(r.glueBound(set, now), sigsFor(m.Answer, h.Name, h.Rrtype), rank, sec, now)
	}
}

// glueBound returns an address RRset to cache from an answer. When the
// cache holds the same addresses as glue, the answer may not outlive it:
// the glue's delegation is what vouches for the name, and a server the
// parent no longer delegates to must not keep its address alive by
// repeating it (ghost domains, Unbound's ghost_glue_*). The records are
// copied; the client sees the answer's own TTLs.
func (r *Resolver) glueBound(set []dns.RR, now time.Time) []dns.RR {
	h := set[0].Header()
	if h.Rrtype != dns.TypeA && h.Rrtype != dns.TypeAAAA {
		return set
	}
	bound, limit := false, uint32(0)
	// Read, not Get: only a comparison and a TTL are needed of the glue.
	r.cache.Read(cache.NewKey(h.Name, h.Rrtype, h.Class), now, func(e cache.Entry, ttl uint32) {
		bound, limit = !e.Negative() && e.Rank <= cache.RankGlue && sameData(e.RRs, set), ttl
	})
	if !bound {
		return set
	}
	out := make([]dns.RR, len(set))
	for i, rr := range set {
		out[i] = dns.Copy(rr)
		out[i].Header().Ttl = min(rr.Header().Ttl, limit)
	}
	return out
}

// cacheGlue stores the addresses of NS names, as glueSets bounds them
// (glue must not outlive the delegation it came with: the ghost-domain
// fixes), at rank.
func (r *Resolver) cacheGlue(sets [][]dns.RR, rank cache.Rank, now time.Time) {
	for _, set := range sets {
		r.putRRset(set, nil, rank, cache.Unchecked, now)
	}
}

// cacheParentGlue stores a referral's glue again on the parent's side,
// where the child zone's own answer for the NS name, which outranks glue,
// does not replace it: when the child's addresses are wrong, the parent's
// are the last resort (parentGlue). sets are glueSets's, which a
// referral computes once for both sides (issue #6).
func (r *Resolver) cacheParentGlue(sets [][]dns.RR, now time.Time) {
	for _, set := range sets {
		h := set[0].Header()
		r.cache.Put(cache.NewKey(h.Name, h.Rrtype, h.Class).On(cache.SideParent), cache.Entry{RRs: set, Rank: cache.RankGlue, Security: cache.Unchecked}, now)
	}
}

// glueSets returns the address RRsets of extra with TTLs no longer than
// the NS set's.
func glueSets(extra, ns []dns.RR) [][]dns.RR {
	if len(ns) == 0 {
		return nil
	}
	nsTTL := ns[0].Header().Ttl
	sets := splitRRsets(extra, nil)
	// splitRRsets's slice is new: the address sets are kept in place, in
	// order, rather than copied (issue #6).
	out := sets[:0]
	for _, set := range sets {
		t := set[0].Header().Rrtype
		if t != dns.TypeA && t != dns.TypeAAAA {
			continue
		}
		for _, rr := range set {
			rr.Header().Ttl = min(rr.Header().Ttl, nsTTL)
		}
		out = append(out, set)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// cacheChildNS keeps the NS set that the authority section of an
// authoritative reply gives for the zone asked, beside the delegation
// rather than in it: the zone's own servers may list servers the parent
// does not, worth trying when the parent's all fail (lastResort), but a
// reply must not redirect a working delegation (the Kaminsky-style NS
// hijack, BIND CVE-2025-40778). It lives no longer than the delegation.
func (r *Resolver) cacheChildNS(q *query, m *dns.Msg, sec cache.Security) {
	if !m.Authoritative || !r.renewable(q, q.cut.zone) {
		return
	}
	var buf [8]dns.RR
	ns := buf[:0]
	ttl := q.cut.ttl
	for _, rr := range m.Ns {
		if h := rr.Header(); h.Rrtype == dns.TypeNS && equalNames(h.Name, q.cut.zone) {
			ns = append(ns, rr)
			ttl = min(ttl, h.Ttl)
		}
	}
	if len(ns) == 0 {
		return
	}
	k := cache.NewKey(q.cut.zone, dns.TypeNS, q.qclass).On(cache.SideChild)
	now := r.clock.Now()
	if r.childNSFresh(k, ns, sec, ttl, now) {
		return
	}
	kept := make([]dns.RR, len(ns))
	for i, rr := range ns {
		kept[i] = dns.Copy(rr)
	}
	clampTTL(kept, q.cut.ttl)
	r.cache.Put(k, cache.Entry{RRs: kept, Rank: cache.RankAuthorityAA, Security: sec}, now)
}

// childNSFresh reports whether the cache holds ns as the child's NS set
// already, as trusted and with at least half of the ttl that storing it
// again would give. Every answer from a zone repeats its NS set, and
// storing it again for each one cost copies and an LRU insert per cold
// name (issue #6); Unbound likewise keeps an equal RRset of equal trust
// instead of refreshing it. A set that changed, or has aged past half its
// life, is stored again.
func (r *Resolver) childNSFresh(k cache.Key, ns []dns.RR, sec cache.Security, ttl uint32, now time.Time) bool {
	fresh := false
	r.cache.Read(k, now, func(e cache.Entry, left uint32) {
		fresh = e.Rank == cache.RankAuthorityAA && e.Security == sec && 2*uint64(left) >= uint64(ttl) && sameData(e.RRs, ns)
	})
	return fresh
}

// putRRset stores one RRset.
func (r *Resolver) putRRset(rrs, sigs []dns.RR, rank cache.Rank, sec cache.Security, now time.Time) {
	if len(rrs) == 0 {
		return
	}
	h := rrs[0].Header()
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
// one second on its second-granular clock, which is this. What is
// synthesised from it still carries TTL 0.
func dnameGrace(now time.Time) time.Duration {
	return now.Truncate(time.Second).Add(2 * time.Second).Sub(now)
}

// splitRRsets groups records by (owner, type) in order of appearance.
// Callers only read the sets: when each RRset's records are adjacent, as
// servers send them, the sets are capped sub-slices of rrs, which saves an
// allocation per set, and they are listed in buf when it has room, which
// spares a caller that only loops over them one more (issue #6).
func splitRRsets(rrs []dns.RR, buf [][]dns.RR) [][]dns.RR {
	if sets, ok := adjacentRRsets(rrs, buf); ok {
		return sets
	}
	return groupRRsets(rrs)
}

// groupRRsets is splitRRsets for records in any order.
func groupRRsets(rrs []dns.RR) [][]dns.RR {
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

// adjacentRRsets is splitRRsets for records whose RRsets are each one
// run, OPT records aside; ok is false when an RRset comes back later.
func adjacentRRsets(rrs []dns.RR, buf [][]dns.RR) (sets [][]dns.RR, ok bool) {
	if n := countRuns(rrs); n > cap(buf) {
		sets = make([][]dns.RR, 0, n)
	} else if n > 0 {
		sets = buf[:0]
	}
	start := 0
	for i := 0; i <= len(rrs); i++ {
		if i < len(rrs) && i > start && sameOwnerType(rrs[start], rrs[i]) {
			continue
		}
		if i > start {
			for _, set := range sets {
				if sameOwnerType(set[0], rrs[start]) {
					return nil, false
				}
			}
			sets = append(sets, rrs[start:i:i])
		}
		start = i
		if i < len(rrs) && rrs[i].Header().Rrtype == dns.TypeOPT {
			start = i + 1
		}
	}
	return sets, true
}

// countRuns returns the number of runs of records of one owner and type
// in rrs, OPT records aside: the most RRsets it may hold.
func countRuns(rrs []dns.RR) int {
	n := 0
	var last dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			last = nil
			continue
		}
		if last == nil || !sameOwnerType(last, rr) {
			n++
		}
		last = rr
	}
	return n
}

// sameOwnerType reports whether two records belong to one RRset, owner
// names compared as splitRRsets keys them.
func sameOwnerType(a, b dns.RR) bool {
	ha, hb := a.Header(), b.Header()
	return ha.Rrtype == hb.Rrtype && lowerEqual(ha.Name, hb.Name)
}

// addAnswer appends records to the result and folds in their security.
// A record the chain already holds is not repeated: a DNAME the chain
// passes twice is shown once (RFC 2181 §5, as Unbound and Knot answer).
func (q *query) addAnswer(rrs, sigs []dns.RR, sec cache.Security) {
	if len(q.res.answer) == 0 && len(rrs) > 0 && len(sigs) == 0 {
		// Nothing to repeat or append: the result takes rrs, capped so
		// that a later link's append cannot write into the caller's
		// slice, without a copy per answer (issue #6).
		q.res.answer = rrs[:len(rrs):len(rrs)]
		q.res.security = worse(q.res.security, sec)
		return
	}
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

// cacheDenialSOA remembers the SOA of a negative answer, with its RRSIGs,
// as the zone's latest: negative answers cached earlier show it instead of
// their own (withLatestSOA), as in Unbound, whose message cache refers to
// the SOA RRset rather than copying it.
func (r *Resolver) cacheDenialSOA(ns []dns.RR, rank cache.Rank, sec cache.Security) {
	soa := rrsOfType(ns, dns.TypeSOA)
	if len(soa) != 1 {
		return
	}
	h := soa[0].Header()
	k := cache.NewKey(h.Name, dns.TypeSOA, h.Class).On(cache.SideDenial)
	r.cache.Put(k, cache.Entry{RRs: soa, Sigs: sigsFor(ns, h.Name, dns.TypeSOA), Rank: rank, Security: sec}, r.clock.Now())
}

// withLatestSOA returns the cached negative entry e with its SOA and the
// SOA's RRSIGs replaced by the zone's latest (cacheDenialSOA), unless that
// is less secure. The entry keeps its own lifetime.
func (r *Resolver) withLatestSOA(e cache.Entry, now time.Time) cache.Entry {
	soa := rrsOfType(e.Ns, dns.TypeSOA)
	if len(soa) != 1 {
		return e
	}
	h := soa[0].Header()
	latest, ok := r.cache.Get(cache.NewKey(h.Name, dns.TypeSOA, h.Class).On(cache.SideDenial), now)
	if !ok || worse(e.Security, latest.Security) != e.Security {
		return e
	}
	ns := append(latest.RRs, latest.Sigs...)
	for _, rr := range e.Ns {
		if len(rrsOfTypes([]dns.RR{rr}, dns.TypeSOA)) == 0 {
			ns = append(ns, rr)
		}
	}
	e.Ns = ns
	return e
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

// shownGlue returns the addresses of extra as a client is shown them: an
// address RRset the cache holds live with the same data counts down from
// the cache's TTL, since a reply repeating it did not renew it (Unbound
// shows its message cache's RRsets the same way).
func (r *Resolver) shownGlue(extra []dns.RR) []dns.RR {
	now := r.clock.Now()
	var out []dns.RR
	var buf [4][]dns.RR
	for _, set := range splitRRsets(rrsOfTypes(extra, dns.TypeA, dns.TypeAAAA), buf[:]) {
		h := set[0].Header()
		if h.Rrtype == dns.TypeRRSIG {
			continue
		}
		if e, ok := r.cache.Get(cache.NewKey(h.Name, h.Rrtype, h.Class), now); ok && !e.Negative() && sameData(e.RRs, set) {
			set = e.RRs
		}
		out = append(append(out, set...), sigsFor(extra, h.Name, h.Rrtype)...)
	}
	return out
}

// sameData reports whether two RRsets hold the same records, TTLs aside.
func sameData(a, b []dns.RR) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y dns.RR) bool { return dns.IsDuplicate(x, y) }) {
			return false
		}
	}
	return true
}
