package resolver

import (
	"context"
	"errors"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// stepSend picks a server of the cut, asks it, and hands the reply on.
// When no server address is known it resolves an NS name first.
func (r *Resolver) stepSend(ctx context.Context, q *query) error {
	var buf [8]netip.Addr
	p, ok := r.infra.choose(q.cut.appendAddresses(buf[:0], r.cfg.DoIPv4, r.cfg.DoIPv6), q.cut.zone,
		func(a netip.Addr) bool { return q.fails[a] >= maxFailsPerServer || q.req.rejected.avoided(a) })
	if !ok {
		return r.resolveMoreServers(ctx, q)
	}
	if err := q.req.budget.spendUpstream(); err != nil {
		return q.errorf(err, "asking %s", q.cut.zone)
	}
	// A retry after a failure goes over TCP: it reaches servers whose UDP
	// is filtered or broken (TCP-only servers).
	addr := p.addr
	useTCP := q.fails[addr] > 0 || p.tcp
	q.askName, q.askType = r.nextAsk(q)
	tq := transport.Query{
		Server: netip.AddrPortFrom(addr, q.cut.port(addr)),
		Name:   q.askName,
		Type:   q.askType,
		Class:  q.qclass,
		DO:     r.deps.Validator != nil,
		// A forwarder is asked to recurse; when we validate, also to hand
		// over data that fails its own checks (CD), so that we judge it and
		// try another forwarder. Unbound sets CD only on its retries.
		RD:      q.cut.forward,
		CD:      q.cut.forward && r.deps.Validator != nil,
		TCP:     useTCP,
		RTT:     p.srtt,
		Timeout: p.timeout,
	}
	if q.minimising() && q.waitedFor != q.askName && !q.parentRetried {
		return r.sendMinimised(ctx, q, tq)
	}
	r.takeExchange(ctx, q, tq)
	return nil
}

// sendMinimised asks a minimised question once for every query that asks
// it of the same server at once: the names of a new zone asked together
// all look for its cut. The query that asks also handles the reply (the
// referral cached, or no cut remembered) before the others go on; they
// then find the cut in the cache, as a later query would, instead of each
// scrubbing and storing the same referral again. A query waits so only
// once per name asked: when the cache did not take the cut (an untrusted
// referral under spoofing pressure, an answer from a server of both
// zones), it asks itself. A query that went back to the parent because
// the cached cut proved useless asks itself too: the cache holds the cut
// it is getting away from.
func (r *Resolver) sendMinimised(ctx context.Context, q *query, tq transport.Query) error {
	var replyErr error
	cached := false
	_, err, joined, _ := r.discoveries.do(ctx, newExchangeKey(tq), func() (struct{}, error) {
		// The query found no cut a moment ago, but another may have just
		// handled the same referral and left.
		if cached = r.cachedDelegation(q.askName, r.clock.Now()) != nil; cached {
			return struct{}{}, nil
		}
		if err := r.takeExchange(ctx, q, tq); err != nil {
			return struct{}{}, err
		}
		if q.stage == stageReply {
			replyErr = r.stepReply(ctx, q)
		}
		return struct{}{}, nil
	})
	switch {
	case !joined && !cached:
		return replyErr
	case err != nil:
		// The infra cache heard of the failure from the query that asked.
		q.failed(tq.Server.Addr())
		return nil
	}
	q.waitedFor = q.askName
	q.stage = stageFindCut
	return nil
}

// takeExchange asks tq's server and takes its reply, or counts the
// failure; it returns the exchange's error. Only the query that made an
// exchange tells the infra cache how the server did: the queries that
// shared it would count one lost datagram, one RTT sample or one answer
// over TCP as many, and three of them made a server dead for a minute and
// asked over TCP first for 15. For the same reason an answer over TCP
// counts as TCP's win only after the query's own UDP exchange was lost.
func (r *Resolver) takeExchange(ctx context.Context, q *query, tq transport.Query) error {
	addr := tq.Server.Addr()
	resp, joined, err := r.exchange(ctx, tq)
	if r.notePressure(ctx, q, addr, transport.Unwanted(resp, err)) {
		return nil
	}
	if err != nil {
		q.failed(addr)
		if !joined {
			r.upstreamFailed(ctx, q.askName, addr, err)
			if !tq.TCP {
				q.lostUDP = addr
			}
		}
		return err
	}
	if !joined {
		way := overUDP
		switch {
		case resp.TCP && q.lostUDP == addr:
			way = overTCPAfterLostUDP
		case resp.TCP:
			way = overTCP
		}
		r.infra.answered(addr, resp.RTT, way)
	}
	q.server = addr
	q.heldOn = 0
	r.takeReply(q, resp)
	return nil
}

// exchangeKey identifies an upstream query for coalescing.
type exchangeKey struct {
	server  netip.Addr
	name    string
	qtype   uint16
	qclass  uint16
	do, tcp bool
}

// newExchangeKey is the key under which tq is shared.
func newExchangeKey(tq transport.Query) exchangeKey {
	return exchangeKey{tq.Server.Addr(), strings.ToLower(tq.Name), tq.Type, tq.Class, tq.DO, tq.TCP}
}

// exchange asks a server, sharing the exchange with identical queries to
// the same server in flight (Unbound's serviced queries): the address
// lookups and key fetches of concurrent queries, and a minimised question
// asked again by the queries that waited on it (sendMinimised). Every
// caller of a shared exchange gets its own copy of the reply, since
// scrubbing and validation modify it; the caller that made an exchange
// nobody joined, the usual case, keeps the reply itself. Hold-On's later
// replies stay with the caller that made the exchange. joined reports
// whether the caller shared another's exchange.
func (r *Resolver) exchange(ctx context.Context, tq transport.Query) (resp *transport.Response, joined bool, err error) {
	resp, err, joined, shared := r.exchanges.do(ctx, newExchangeKey(tq), func() (*transport.Response, error) {
		return r.deps.Exchanger.Exchange(ctx, tq)
	})
	if err != nil || resp == nil {
		if ue, ok := errors.AsType[*transport.UnwantedError](err); ok && joined {
			err = ue.Err // the exchange's unwanted replies count once, for the caller that made it
		}
		return resp, joined, err
	}
	if !shared {
		return resp, false, nil
	}
	own := *resp
	own.Msg = resp.Msg.Copy()
	if joined {
		own.Next = nil
		own.Unwanted = 0
	}
	return &own, joined, nil
}

// takeReply scrubs a reply and hands it to stepReply.
func (r *Resolver) takeReply(q *query, resp *transport.Response) {
	q.reply = r.scrubReply(q, resp.Msg)
	q.replyTrusted = resp.TCP || resp.ServerCookie
	q.replyTCP = resp.TCP
	q.next = resp.Next
	q.stage = stageReply
}

// upstreamFailed records in the infra cache an exchange about name that
// got no usable reply from addr.
func (r *Resolver) upstreamFailed(ctx context.Context, name string, addr netip.Addr, err error) {
	if ctx.Err() != nil {
		return // the client's deadline, not the server's fault
	}
	r.infra.timedOut(addr)
	if !errors.Is(err, transport.ErrTimeout) {
		r.log.Debug("upstream failed", zap.String("name", name), zap.Stringer("server", addr), zap.Error(err))
	}
}

// resolveMoreServers looks up the address of one more NS name of the cut
// (one at a time, so that a referral to many glueless names costs little:
// NXNSAttack). When a server of the cut sent a key reply that failed
// validation and no other known address is left, the other address family
// of a name comes next: it may reach a server that answers well (Unbound
// fetches such missing targets). Servers that merely
// time out do not start this hunt, which would spend the query's time on
// more silent servers. It fails when no name is left.
func (r *Resolver) resolveMoreServers(ctx context.Context, q *query) error {
	v4, v6 := r.cfg.DoIPv4, r.cfg.DoIPv6
	for _, ns := range q.cut.unresolved(v4, v6) {
		if found, err := r.lookUpServer(ctx, q, ns, r.addrTypes()); found || err != nil {
			return err
		}
	}
	if r.rejectedServer(q) {
		for _, ns := range q.cut.incomplete(v4, v6) {
			if found, err := r.lookUpServer(ctx, q, ns, q.cut.lacking(ns, v4, v6)); found || err != nil {
				return err
			}
		}
	}
	if r.lastResort(q) {
		return nil
	}
	if q.bogusTries > 0 {
		r.finishBogus(q) // every server gave data that failed validation
		return nil
	}
	if q.cut.fromCache && q.cut.zone != "." && !q.parentRetried {
		// A cached NS set (the child's own, say) whose servers all fail
		// or cannot be found: ask the parent for the delegation afresh.
		q.parentRetried = true
		q.setCut(r.findCut(parentName(q.cut.zone)))
		return nil
	}
	return q.errorf(ErrNoServers, "zone %s", q.cut.zone)
}

// lastResort widens a cut whose servers all failed or could not be
// found, each way once (Unbound's processLastResort): with the NS names
// the zone's own servers listed beyond the parent's, then with the
// parent's glue for NS names whose own zone gave other addresses. Both
// are kept beside the cache's main entries (see cacheChildNS and
// cacheParentGlue), so they are tried only when the delegation fails and
// never take a working one's place. It reports whether the cut grew.
func (r *Resolver) lastResort(q *query) bool {
	d := q.cut
	if !d.childNSTried {
		d.childNSTried = true
		k := cache.NewKey(d.zone, dns.TypeNS, q.qclass).On(cache.SideChild)
		if e, ok := r.cache.Get(k, r.clock.Now()); ok && d.addNames(e.RRs, r.cfg.Limits.MaxServersPerZone) > 0 {
			return true
		}
	}
	if d.parentGlueTried {
		return false
	}
	d.parentGlueTried = true
	grew := false
	for _, s := range d.servers {
		if d.addAddrsFor(s.name, r.parentGlue(s.name, r.addrTypes())) {
			grew = true
		}
	}
	return grew
}

// rejectedServer reports whether a known address of q's cut is avoided
// for a rejected reply.
func (r *Resolver) rejectedServer(q *query) bool {
	for _, a := range q.cut.addresses(r.cfg.DoIPv4, r.cfg.DoIPv6) {
		if q.req.rejected.avoided(a) {
			return true
		}
	}
	return false
}

// lookUpServer looks up the addresses of types of the NS name ns, once
// per cut, and reports whether it found any.
func (r *Resolver) lookUpServer(ctx context.Context, q *query, ns string, types []uint16) (bool, error) {
	if q.cut.looked == nil {
		q.cut.looked = map[string]bool{}
	}
	q.cut.looked[ns] = true
	if err := q.req.budget.spendNSLookup(); err != nil {
		return false, q.errorf(err, "servers of %s", q.cut.zone)
	}
	addrs := r.lookupAddrs(ctx, q, ns, types)
	if len(addrs) == 0 {
		return false, nil
	}
	q.cut.addAddrsFor(ns, addrs)
	return true, nil
}

// lookupAddrs resolves the addresses of types of an NS name as a
// sub-query, stopping at the first type that has some.
func (r *Resolver) lookupAddrs(ctx context.Context, q *query, ns string, types []uint16) []dns.RR {
	var out []dns.RR
	for _, t := range types {
		key := ns + "/" + dns.TypeToString[t]
		if err := q.req.budget.enter(key); err != nil {
			r.log.Debug("name server loop", zap.String("ns", ns), zap.Error(err))
			return nil
		}
		sub := r.newQuery(ns, t, dns.ClassINET, q.req.addressLookup(), q.depth+1)
		if inBailiwick(ns, q.cut.zone) {
			sub.above = q.cut.zone
		}
		res, err := r.run(ctx, sub)
		q.req.budget.leave(key)
		if err != nil {
			r.log.Debug("name server address lookup failed", zap.String("ns", ns), zap.Error(err))
			continue
		}
		out = append(out, res.answer...)
		if len(out) > 0 {
			return out
		}
	}
	return r.parentGlue(ns, types)
}

// parentGlue returns the addresses of an NS name that a referral on the
// way carried as glue, kept on the parent's side, and what the cache holds
// for it otherwise, for when the name's own zone answers it wrongly
// (Unbound's parent-side fallback).
func (r *Resolver) parentGlue(ns string, types []uint16) []dns.RR {
	var out []dns.RR
	now := r.clock.Now()
	for _, t := range types {
		k := cache.NewKey(ns, t, dns.ClassINET)
		for _, side := range []cache.Side{cache.SideParent, cache.SideMain} {
			if e, ok := r.cache.Get(k.On(side), now); ok {
				out = append(out, e.RRs...)
			}
		}
	}
	return out
}

// addrTypes lists the address types to look up, IPv4 first.
func (r *Resolver) addrTypes() []uint16 {
	var ts []uint16
	if r.cfg.DoIPv4 {
		ts = append(ts, dns.TypeA)
	}
	if r.cfg.DoIPv6 {
		ts = append(ts, dns.TypeAAAA)
	}
	return ts
}
