package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// stepCache answers from the cache, follows a cached CNAME, or moves on
// to finding a zone cut.
func (r *Resolver) stepCache(q *query) error {
	if q.req.noCache {
		q.stage = stageFindCut
		return nil
	}
	now := r.clock.Now()
	if e, ok := r.cache.Get(cache.NewKey(q.name, cache.TypeNXDomain, q.qclass), now); ok && answerable(q, e) {
		r.finishNegative(q, dns.RcodeNameError, r.withLatestSOA(e, now))
		return nil
	}
	if e, ok := r.cache.Get(cache.NewKey(q.name, q.qtype, q.qclass), now); ok && answerable(q, e) {
		if e.Negative() {
			r.finishNegative(q, dns.RcodeSuccess, r.withLatestSOA(e, now))
			return nil
		}
		q.addAnswer(e.RRs, e.Sigs, e.Security)
		q.res.ns = appendNew(q.res.ns, rrsOfTypes(e.Ns, dns.TypeNSEC, dns.TypeNSEC3)...)
		q.res.authNS = rrsOfTypes(e.Ns, dns.TypeNS)
		q.res.glue = rrsOfTypes(e.Ns, dns.TypeA, dns.TypeAAAA)
		r.finish(q, dns.RcodeSuccess)
		return nil
	}
	if done, err := r.cachedChain(q, now); done || err != nil {
		return err
	}
	if q.req.validate && r.deps.Validator != nil {
		// RFC 8198: validated NSEC/NSEC3 records already seen may prove
		// the name or type absent without asking.
		if m, sec, ok := r.deps.Validator.Synthesize(q.name, q.qtype); ok {
			return r.synthesized(q, m, sec)
		}
	}
	q.stage = stageFindCut
	return nil
}

// cachedChain follows a cached CNAME at the name, or synthesises one from
// a cached validated DNAME above it. A CNAME question is answered by the
// synthesised CNAME and its DNAME (RFC 6672 §3.4) and ends there. It
// reports whether it moved the query on.
func (r *Resolver) cachedChain(q *query, now time.Time) (bool, error) {
	if q.qtype != dns.TypeCNAME {
		if e, ok := r.cache.Get(cache.NewKey(q.name, dns.TypeCNAME, q.qclass), now); ok && !e.Negative() && answerable(q, e) {
			q.addAnswer(e.RRs, e.Sigs, e.Security)
			return true, r.followCNAME(q, e.RRs[0].(*dns.CNAME).Target)
		}
	}
	d, e, ok := r.cachedDNAME(q.name, q.qclass, now)
	if !ok {
		return false, nil
	}
	target, ok := dnameTarget(q.name, d)
	if !ok {
		return true, q.errorf(ErrCNAMELimit, "DNAME %s yields a name too long", d.Hdr.Name)
	}
	q.addAnswer(dnameLinks(q.name, d, target, e.Sigs), nil, e.Security)
	if q.qtype == dns.TypeCNAME {
		r.finish(q, dns.RcodeSuccess)
		return true, nil
	}
	return true, r.followCNAME(q, target)
}

// synthesized takes an answer the validator made from remembered proofs:
// a denial, or a wildcard expansion with its proof, which ends the query
// or, for a CNAME, continues it at the target.
func (r *Resolver) synthesized(q *query, m *dns.Msg, sec cache.Security) error {
	if len(m.Answer) == 0 {
		r.finishNegative(q, m.Rcode, cache.Entry{Ns: m.Ns, Security: sec})
		return nil
	}
	q.addAnswer(m.Answer, nil, sec)
	q.res.ns = appendNew(q.res.ns, m.Ns...)
	if c, ok := m.Answer[0].(*dns.CNAME); ok && q.qtype != dns.TypeCNAME {
		return r.followCNAME(q, c.Target)
	}
	r.finish(q, dns.RcodeSuccess)
	return nil
}

// cachedDNAME finds a validated DNAME cached at an ancestor of name. An
// unvalidated one is not used to synthesise: whoever answered with it may
// only speak for the names asked, so other names under it are asked
// afresh (Unbound).
func (r *Resolver) cachedDNAME(name string, qclass uint16, now time.Time) (*dns.DNAME, cache.Entry, bool) {
	if !r.cache.MayHold(dns.TypeDNAME) {
		return nil, cache.Entry{}, false
	}
	for n := parentName(name); ; n = parentName(n) {
		if e, ok := r.cache.Get(cache.NewKey(n, dns.TypeDNAME, qclass), now); ok && !e.Negative() && e.Security == cache.Secure {
			if d, ok := e.RRs[0].(*dns.DNAME); ok {
				return d, e, true
			}
		}
		if n == "." {
			return nil, cache.Entry{}, false
		}
	}
}

// answerable reports whether cached data may answer q: referral NS sets
// and glue steer resolution but are not answers (RFC 2181 §5.4.1), and
// data cached unvalidated (by a CD=1 client, or for a sub-query) does not
// answer a query that validates: the zone's own servers are asked instead.
func answerable(q *query, e cache.Entry) bool {
	if q.req.validate && e.Security == cache.Unchecked {
		return false
	}
	return e.Negative() || e.Rank >= cache.RankAnswerNonAA
}

// followCNAME restarts the query at target, within the chain limit.
func (r *Resolver) followCNAME(q *query, target string) error {
	if len(q.res.answer) > 2*r.cfg.Limits.MaxCNAMEs || q.chainLength() > r.cfg.Limits.MaxCNAMEs {
		return fmt.Errorf("%s: %w (%d)", q.name, ErrCNAMELimit, r.cfg.Limits.MaxCNAMEs)
	}
	q.name = dns.CanonicalName(target)
	q.minimise = r.cfg.QNameMinimisation && q.qtype != dns.TypeDS
	q.stage = stageCache
	return nil
}

// chainLength counts the CNAMEs in the answer so far.
func (q *query) chainLength() int {
	n := 0
	for _, rr := range q.res.answer {
		if rr.Header().Rrtype == dns.TypeCNAME {
			n++
		}
	}
	return n
}

// stepFindCut finds the deepest known cut for the name, priming the root
// first if nothing is cached. A name in a forward zone goes to the zone's
// forwarders instead, whatever the cache knows.
func (r *Resolver) stepFindCut(ctx context.Context, q *query) error {
	start := q.name
	if q.qtype == dns.TypeDS && start != "." {
		start = parentName(start) // DS lives in the parent zone
	}
	if q.above != "" && q.above != "." && inBailiwick(start, q.above) {
		start = parentName(q.above)
	}
	if zone, ok := r.forwardZone(start); ok {
		q.setCut(r.forwardDelegation(zone))
		q.stage = stageSend
		return nil
	}
	cut := r.findCut(start)
	if cut.fromHints && r.cfg.PrimeRoot && !(q.name == "." && q.qtype == dns.TypeNS) {
		if err := r.prime(ctx, q); err == nil {
			cut = r.findCut(start)
		} else {
			r.log.Debug("root priming failed, using hints")
		}
	}
	q.setCut(cut)
	q.stage = stageSend
	return nil
}

// prime asks the root servers for the root NS set (RFC 8109); the answer
// lands in the cache where findCut picks it up.
func (r *Resolver) prime(ctx context.Context, q *query) error {
	sub := r.newQuery(".", dns.TypeNS, dns.ClassINET, q.req, q.depth+1)
	sub.req = q.req.sub()
	sub.req.noCache = true
	_, err := r.run(ctx, sub)
	return err
}

// setCut makes d the cut to ask, resetting per-cut state.
func (q *query) setCut(d *delegation) {
	q.cut = d
	q.fails = nil
	q.lostUDP = netip.Addr{}
	q.minLabels = dns.CountLabel(d.zone) + 1
}

// failed counts one more failed try of server a of the cut.
func (q *query) failed(a netip.Addr) { q.setFails(a, q.fails[a]+1) }

// setFails records n failed tries of server a of the cut. The map is made
// at the first failure: most cuts see none, and every cut would otherwise
// cost one (issue #6).
func (q *query) setFails(a netip.Addr, n int) {
	if q.fails == nil {
		q.fails = map[netip.Addr]int{}
	}
	q.fails[a] = n
}

// nextAsk returns the name and type to send to the cut's servers: with
// QNAME minimisation one label more than the cut, type NS, stepping over
// names known to hold no cut (nocut.go), else the full question (always
// to a forwarder, which finds the cuts itself). NS is what the question
// is really about (is there a cut here?) and what Knot Resolver sends;
// Unbound sends A to dodge servers that mishandle NS, which the relaxed
// fallback (stopMinimising) covers.
func (r *Resolver) nextAsk(q *query) (string, uint16) {
	labels := dns.CountLabel(q.name)
	if q.cut.forward || !q.minimise || q.minSteps >= maxMinimiseSteps {
		return q.name, q.qtype
	}
	for now := r.clock.Now(); q.minLabels < labels && r.knownNoCut(lastLabels(q.name, q.minLabels), q.qclass, now); {
		q.minLabels++
	}
	if q.minLabels >= labels {
		return q.name, q.qtype
	}
	return lastLabels(q.name, q.minLabels), dns.TypeNS
}

// stopMinimising sends the full name from now on (the relaxed mode of
// RFC 9156: broken servers answer minimised queries wrongly).
func (q *query) stopMinimising() {
	q.minimise = false
	q.stage = stageSend
}

// errorf wraps err with the query's name and type.
func (q *query) errorf(err error, format string, args ...any) error {
	return fmt.Errorf("%s %s: %s: %w", q.name, dns.TypeToString[q.qtype], fmt.Sprintf(format, args...), err)
}

var errNoReply = errors.New("no reply")
