package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// Spoofing pressure per zone (issue #5). The transport counts the
// unwanted replies (wrong ID, question or cookie) of each exchange and,
// per server, asks a server that draws many of them over TCP. It knows no
// zones; the resolver adds each exchange's count to the zone whose servers
// were asked (the query's cut). Past ZonePressure.Threshold within Window
// someone is spraying forgeries at that zone's queries, and one may have
// slipped in already: the zone's delegation is fetched afresh from the
// parent's servers over TCP and replaces what the cache holds, and until
// that has happened no UDP reply, server cookie or not, may renew the
// delegation.
// Unbound's unwanted-reply-threshold counts per thread and flushes the
// whole cache instead; this keeps what was learned elsewhere.

// zoneCount is one zone's unwanted replies in the current window.
type zoneCount struct {
	n     int
	since time.Time // start of the window
	// pendingUntil: the zone passed the threshold and its delegation has
	// not been re-validated yet; until then (bounded by Hold) UDP
	// replies may not renew it. Zero when nothing is pending.
	pendingUntil time.Time
	busy         bool // a re-validation is running
}

// zonePressure counts unwanted replies per zone in a table of at most
// MaxZones zones. It is safe for concurrent use.
type zonePressure struct {
	cfg ZonePressure

	mu    sync.Mutex
	zones map[string]*zoneCount // guarded by mu
	// pendingN counts zones with pendingUntil set, so that the check on
	// every referral takes no lock while nothing is pending.
	pendingN atomic.Int64

	unwanted, escalations, revalidated, failed atomic.Uint64
}

func newZonePressure(cfg ZonePressure) *zonePressure {
	return &zonePressure{cfg: cfg, zones: map[string]*zoneCount{}}
}

// note adds n unwanted replies to zone at now. It reports whether the zone
// passed the threshold and no re-validation of it is running: the count
// restarts, the zone is marked pending and busy, and the caller must call
// done when the re-validation ends.
func (p *zonePressure) note(zone string, n int, now time.Time) (escalate bool) {
	if n <= 0 || p.cfg.Threshold <= 0 {
		return false
	}
	p.unwanted.Add(uint64(n))
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.zones[zone]
	if c == nil {
		if len(p.zones) >= p.cfg.MaxZones && !p.evictLocked(now) {
			return false
		}
		c = &zoneCount{since: now}
		p.zones[zone] = c
	}
	if now.Sub(c.since) > p.cfg.Window || now.Before(c.since) {
		c.n, c.since = 0, now
	}
	c.n += n
	if c.n < p.cfg.Threshold || c.busy {
		return false
	}
	c.n, c.since = 0, now
	if c.pendingUntil.IsZero() {
		p.pendingN.Add(1)
	}
	c.pendingUntil, c.busy = now.Add(p.cfg.Hold), true
	p.escalations.Add(1)
	return true
}

// evictLocked makes room for one zone: it forgets a zone whose window has
// passed and that has nothing pending, else the one whose window started
// first. A zone being re-validated stays. It reports whether it made room.
func (p *zonePressure) evictLocked(now time.Time) bool {
	oldest := ""
	for z, c := range p.zones { // at most MaxZones entries
		if c.busy {
			continue
		}
		if now.Sub(c.since) > p.cfg.Window && !now.Before(c.since) && !now.Before(c.pendingUntil) {
			p.forgetLocked(z)
			return true
		}
		if oldest == "" || c.since.Before(p.zones[oldest].since) {
			oldest = z
		}
	}
	if oldest == "" {
		return false
	}
	p.forgetLocked(oldest)
	return true
}

func (p *zonePressure) forgetLocked(zone string) {
	if !p.zones[zone].pendingUntil.IsZero() {
		p.pendingN.Add(-1)
	}
	delete(p.zones, zone)
}

// pending reports whether zone, in any letter case, awaits re-validation
// at now. With no zone pending, as almost always, it answers before the
// name is lower-cased: every reply that carries NS records asks.
func (p *zonePressure) pending(zone string, now func() time.Time) bool {
	if p.pendingN.Load() == 0 {
		return false
	}
	zone = strings.ToLower(zone)
	at := now()
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.zones[zone]
	if c == nil || c.pendingUntil.IsZero() {
		return false
	}
	if !at.Before(c.pendingUntil) {
		c.pendingUntil = time.Time{}
		p.pendingN.Add(-1)
		return false
	}
	return true
}

// done ends a re-validation of zone that note started; a successful one
// lifts the pending mark.
func (p *zonePressure) done(zone string, ok bool) {
	if ok {
		p.revalidated.Add(1)
	} else {
		p.failed.Add(1)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.zones[zone]
	if c == nil {
		return
	}
	c.busy = false
	if ok && !c.pendingUntil.IsZero() {
		c.pendingUntil = time.Time{}
		p.pendingN.Add(-1)
	}
}

// Stats counts the resolver's own defense events, beside the transport's
// (transport.Stats).
type Stats struct {
	// ZoneUnwantedReplies counts the unwanted replies of exchanges with a
	// zone's servers, as added to the per-zone counts.
	ZoneUnwantedReplies uint64
	// ZonePressureEscalations counts zones that passed
	// ZonePressure.Threshold; DelegationsRevalidated and
	// RevalidationsFailed count how the re-validations that followed
	// ended.
	ZonePressureEscalations, DelegationsRevalidated, RevalidationsFailed uint64
}

// Stats returns a snapshot of the counters.
func (r *Resolver) Stats() Stats {
	p := r.pressure
	return Stats{ZoneUnwantedReplies: p.unwanted.Load(), ZonePressureEscalations: p.escalations.Load(),
		DelegationsRevalidated: p.revalidated.Load(), RevalidationsFailed: p.failed.Load()}
}

// notePressure adds the unwanted replies of an exchange with server to
// the zone of q's cut and, past the threshold, re-validates the zone's
// delegation. It reports whether it replaced the delegation: the query
// then finds its cut afresh instead of taking a reply from a server of
// the old one. A forward zone's cut comes from the configuration, so
// there is nothing to re-validate.
func (r *Resolver) notePressure(ctx context.Context, q *query, server netip.Addr, unwanted int) bool {
	if unwanted == 0 || q.cut.forward {
		return false
	}
	zone := q.cut.zone
	if !r.pressure.note(zone, unwanted, r.clock.Now()) {
		return false
	}
	r.log.Warn("spoofing pressure on a zone: unwanted replies past the threshold, re-validating its delegation over TCP",
		zap.String("zone", zone), zap.Int("threshold", r.cfg.ZonePressure.Threshold),
		zap.Duration("window", r.cfg.ZonePressure.Window), zap.Stringer("server", server))
	err := r.revalidate(ctx, q, zone)
	r.pressure.done(zone, err == nil)
	if err != nil {
		r.log.Warn("re-validating a delegation under spoofing pressure failed; UDP may not renew it for a while",
			zap.String("zone", zone), zap.Duration("hold", r.cfg.ZonePressure.Hold), zap.Error(err))
		return false
	}
	q.stage = stageFindCut
	return true
}

// renewable reports whether q's reply may write zone's delegation (its NS
// set and glue): a reply over TCP always may, a UDP reply only while zone
// is not awaiting re-validation. A server cookie does not count here: an
// injector on the path sees the client cookie and can echo it, and a zone
// under pressure is being attacked.
func (r *Resolver) renewable(q *query, zone string) bool {
	return q.replyTCP || !r.pressure.pending(zone, r.clock.Now)
}

// revalidate asks the servers of zone's parent, over TCP, for zone's NS
// set, and puts it and its glue in place of what the cache holds. It
// tries at most MaxRevalidationTries servers, each charged to q's budget.
func (r *Resolver) revalidate(ctx context.Context, q *query, zone string) error {
	parent := r.hintsDelegation()
	if zone != "." {
		parent = r.findCut(parentName(zone))
	}
	addrs := parent.addresses(r.cfg.DoIPv4, r.cfg.DoIPv6)
	var errs []error
	for i, a := range addrs {
		if i >= r.cfg.Limits.MaxRevalidationTries {
			break
		}
		if err := q.req.budget.spendUpstream(); err != nil {
			return fmt.Errorf("re-validate %s: %w", zone, err)
		}
		ns, glue, err := r.fetchDelegation(ctx, parent, a, zone)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.replaceDelegation(zone, ns, glue)
		r.log.Info("delegation re-validated over TCP", zap.String("zone", zone), zap.Stringer("parent server", a),
			zap.Int("ns", len(ns)), zap.Int("glue", len(glue)))
		return nil
	}
	err := errors.Join(errs...)
	if err == nil {
		err = ErrNoServers
	}
	return fmt.Errorf("re-validate %s at %s (%d servers known): %w", zone, parent.zone, len(addrs), err)
}

// fetchDelegation asks the parent's server a for zone's NS set over TCP
// and returns the NS records and the glue that survive scrubbing.
func (r *Resolver) fetchDelegation(ctx context.Context, parent *delegation, a netip.Addr, zone string) (ns, glue []dns.RR, err error) {
	resp, err := r.deps.Exchanger.Exchange(ctx, transport.Query{
		Server: netip.AddrPortFrom(a, parent.port(a)), Name: zone, Type: dns.TypeNS, Class: dns.ClassINET,
		DO: r.deps.Validator != nil, TCP: true, RTT: r.infra.srtt(a),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ask %s for %s NS over TCP: %w", a, zone, err)
	}
	if !resp.TCP {
		return nil, nil, fmt.Errorf("ask %s for %s NS: %w: the reply did not come over TCP", a, zone, errNoReply)
	}
	m := scrub(resp.Msg, parent.zone, zone, dns.TypeNS, r.cfg.Limits.MaxServersPerZone).msg
	for _, rr := range append(m.Answer, m.Ns...) {
		if rr.Header().Rrtype == dns.TypeNS && equalNames(rr.Header().Name, zone) {
			ns = append(ns, rr)
		}
	}
	if m.Rcode != dns.RcodeSuccess || len(ns) == 0 {
		return nil, nil, fmt.Errorf("ask %s for %s NS over TCP: %w: rcode %s, no NS set", a, zone, errNoReply, dns.RcodeToString[m.Rcode])
	}
	for _, rr := range m.Extra {
		if t := rr.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
			glue = append(glue, rr)
		}
	}
	return ns, glue, nil
}

// replaceDelegation puts the parent's NS set for zone, and the glue that
// came with it, in place of what the cache holds, whatever its rank: the
// parent's word over TCP is what a forgery must not outlive. Data that
// validated Secure stays, since no forgery validates. The zone's own
// servers' NS set (cacheChildNS) goes too, and so do the addresses of NS
// names inside the zone that the parent gave no glue for: both may have
// come from the forger.
func (r *Resolver) replaceDelegation(zone string, ns, glue []dns.RR) {
	now := r.clock.Now()
	k := cache.NewKey(zone, dns.TypeNS, dns.ClassINET)
	r.cache.Delete(k.On(cache.SideChild))
	r.replaceUnlessSecure(k, cache.Entry{RRs: ns, Rank: cache.RankAuthorityNonAA, Security: cache.Unchecked}, now)
	given := map[cache.Key]bool{}
	sets := glueSets(glue, ns)
	for _, set := range sets {
		h := set[0].Header()
		gk := cache.NewKey(h.Name, h.Rrtype, h.Class)
		given[gk] = true
		r.replaceUnlessSecure(gk, cache.Entry{RRs: set, Rank: cache.RankGlue, Security: cache.Unchecked}, now)
	}
	r.cacheParentGlue(sets, now)
	for _, rr := range ns {
		name := rr.(*dns.NS).Ns
		if !inBailiwick(name, zone) {
			continue
		}
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if gk := cache.NewKey(name, t, dns.ClassINET); !given[gk] {
				r.replaceUnlessSecure(gk, cache.Entry{}, now)
			}
		}
	}
}

// replaceUnlessSecure deletes the entry under k unless it validated
// Secure, and puts e there when it holds records.
func (r *Resolver) replaceUnlessSecure(k cache.Key, e cache.Entry, now time.Time) {
	secure := false
	r.cache.Read(k, now, func(old cache.Entry, _ uint32) { secure = old.Security == cache.Secure })
	if secure {
		return
	}
	r.cache.Delete(k)
	if len(e.RRs) > 0 {
		r.cache.Put(k, e, now)
	}
}
