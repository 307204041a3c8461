package resolver

import (
	"context"
	"fmt"
	"slices"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/cache"
)

// stepReply acts on a scrubbed reply according to what it means.
func (r *Resolver) stepReply(ctx context.Context, q *query) error {
	kind := classify(q.reply, q.cut.zone, q.askName, q.askType)
	if kind == kindNoData && q.reply.empty && r.otherServerLeft(q) {
		// A reply with no answer and no authority at all, not even an SOA,
		// is taken as NODATA only when no other server is left to ask, as
		// Unbound does.
		kind = kindLame
	}
	if q.minimising() {
		return r.minimisedReply(q, kind)
	}
	if (kind == kindNoData || kind == kindCNAME) && r.dsFromChild(ctx, q) {
		return nil
	}
	sec, ok := r.validateReply(ctx, q, kind)
	if !ok {
		return r.bogusReply(ctx, q)
	}
	if q.reply.contradicted {
		return r.onContradiction(ctx, q, sec)
	}
	if kind == kindNXDomain && q.reply.msg.Rcode == dns.RcodeSuccess {
		// The validator found the name exists (an empty non-terminal the
		// server wrongly denied) and made the reply the NODATA it proves.
		kind = kindNoData
	}
	switch kind {
	case kindAnswer:
		return r.onAnswer(q, sec)
	case kindCNAME:
		return r.onCNAME(q, sec)
	case kindNXDomain:
		return r.onNegative(q, dns.RcodeNameError, sec)
	case kindNoData:
		return r.onNegative(q, dns.RcodeSuccess, sec)
	case kindReferral:
		return r.onReferral(q, sec)
	default:
		return r.onLame(q)
	}
}

// otherServerLeft reports whether the cut has a server not yet failed
// other than the one that just answered, or NS names still to look up.
func (r *Resolver) otherServerLeft(q *query) bool {
	for _, a := range q.cut.addresses(r.cfg.DoIPv4, r.cfg.DoIPv6) {
		if a != q.server && q.fails[a] < maxFailsPerServer {
			return true
		}
	}
	return len(q.cut.unresolved(r.cfg.DoIPv4, r.cfg.DoIPv6)) > 0
}

// minimising reports whether the last question was a minimised one.
func (q *query) minimising() bool {
	return !equalNames(q.askName, q.name) || q.askType != q.qtype
}

// minimisedReply handles the reply to a minimised question. Nothing of it
// is answer to the client; it only tells whether a cut lies at the name
// asked.
func (r *Resolver) minimisedReply(q *query, kind responseKind) error {
	switch kind {
	case kindReferral:
		r.keepReferralProof(q)
		return r.onReferral(q, cache.Unchecked)
	case kindAnswer, kindNoData:
		// No cut at this name: ask one label more of the same servers.
		if kind == kindNoData {
			r.rememberNoCut(q)
		}
		q.minLabels++
		q.minSteps++
		q.stage = stageSend
	default:
		// NXDOMAIN for an empty non-terminal, a CNAME, or an error: many
		// servers mishandle minimised names, so ask the full name.
		q.stopMinimising()
	}
	return nil
}

// keepReferralProof hands the validator the no-DS proof a referral to a
// minimised question may carry. Such referrals are not validated (a bad
// DS there would fail a question that is only finding cuts); the
// validator checks the proof when it needs the child's keys, and asks
// for the DS when the proof does not hold. A query that does not
// validate (CD) keeps it too, for the validating queries that waited on
// it for the cut (sendMinimised).
func (r *Resolver) keepReferralProof(q *query) {
	if r.deps.Validator == nil {
		return
	}
	if child, ok := nsOwner(q.reply.msg.Ns); ok {
		r.deps.Validator.KeepReferralProof(q.cut.zone, child, q.reply.msg.Ns)
	}
}

// onContradiction refuses a reply whose CNAME contradicts the DNAME it
// came with: the server is broken or the CNAME forged, and the reply is
// taken as Bogus. The DNAME, proven Secure by its own signature, is kept,
// so that names under it are synthesised from the cache from now on, as
// Knot Resolver does.
func (r *Resolver) onContradiction(ctx context.Context, q *query, sec cache.Security) error {
	if sec == cache.Secure {
		r.cacheAnswer(q, q.reply.msg, sec)
	}
	q.res.ede = dns.ExtendedErrorCodeDNSBogus
	q.res.reason = fmt.Sprintf("CNAME for %s from %s contradicts its DNAME", q.askName, q.server)
	return r.bogusReply(ctx, q)
}

// onAnswer takes the asked RRset as the final answer.
func (r *Resolver) onAnswer(q *query, sec cache.Security) error {
	m := q.reply.msg
	if applicableDNAME(m.Answer, q.cut.zone, q.name) != nil {
		// A CNAME (or ANY) question under a DNAME: the answer is the
		// DNAME and the CNAME synthesised from it (scrub left no more).
		return r.finishChain(q, sec)
	}
	r.cacheAnswer(q, m, sec)
	r.cacheChildNS(q, m, sec)
	if q.qtype == dns.TypeNS && r.renewable(q, q.name) {
		// The addresses of an NS answer rank as additional data (RFC 2181
		// §5.4.1): the zone's own servers must not refresh the parent's
		// glue, or a revoked delegation lives on (ghost domains).
		r.cacheGlue(glueSets(m.Extra, rrsOfType(m.Answer, dns.TypeNS)), cache.RankAdditional, r.clock.Now())
		q.res.glue = r.shownGlue(m.Extra)
	}
	rrs, sigs := answerRRset(m.Answer, q.name, q.qtype)
	q.addAnswer(rrs, sigs, sec)
	q.addProofs(m)
	q.res.zone = q.reply.zone
	r.cacheWithSections(q, m, rrs, sigs, sec)
	r.finish(q, dns.RcodeSuccess)
	return nil
}

// answerRRset returns the records of answer that answer qtype at name,
// and the RRSIGs covering them. When the records are one run of answer,
// as servers send them, rrs is that run, capped so that an append copies,
// rather than a copy (issue #6).
func answerRRset(answer []dns.RR, name string, qtype uint16) (rrs, sigs []dns.RR) {
	first, last, n := -1, -1, 0
	for i, rr := range answer {
		switch answerPart(rr, name, qtype) {
		case partSig:
			sigs = append(sigs, rr)
		case partData:
			if first < 0 {
				first = i
			}
			last, n = i, n+1
		}
	}
	if n > 0 && last-first+1 == n {
		return answer[first : last+1 : last+1], sigs
	}
	for _, rr := range answer {
		if answerPart(rr, name, qtype) == partData {
			rrs = append(rrs, rr)
		}
	}
	return rrs, sigs
}

type rrsetPart int

const (
	partNone rrsetPart = iota
	partData
	partSig
)

// answerPart tells whether rr is a record of the answer to qtype at name,
// an RRSIG covering them, or neither.
func answerPart(rr dns.RR, name string, qtype uint16) rrsetPart {
	switch {
	case !equalNames(rr.Header().Name, name):
		return partNone
	case isCoveringSig(rr, qtype):
		return partSig
	case matchesType(rr, qtype):
		return partData
	}
	return partNone
}

func isCoveringSig(rr dns.RR, qtype uint16) bool {
	sig, ok := rr.(*dns.RRSIG)
	return ok && (sig.TypeCovered == qtype || qtype == dns.TypeANY)
}

// cacheWithSections stores the answer's RRset again with what came with
// it: the NSEC/NSEC3 proofs of a wildcard expansion, and, when minimal
// responses are off, the zone's NS set and glue, so that an answer from
// the cache shows them too (Unbound's message cache).
func (r *Resolver) cacheWithSections(q *query, m *dns.Msg, rrs, sigs []dns.RR, sec cache.Security) {
	extra := rrsOfTypes(m.Ns, dns.TypeNSEC, dns.TypeNSEC3)
	if !r.cfg.MinimalResponses {
		q.res.authNS = rrsOfTypes(m.Ns, dns.TypeNS)
		q.res.glue = r.shownGlue(m.Extra)
		extra = append(append(extra, q.res.authNS...), q.res.glue...)
	}
	if len(extra) == 0 || len(rrs) == 0 {
		return
	}
	rank := cache.RankAnswerNonAA
	if m.Authoritative {
		rank = cache.RankAnswerAA
	}
	k := cache.NewKey(q.name, q.qtype, q.qclass)
	e := cache.Entry{RRs: rrs, Sigs: sigs, Ns: extra, Rank: rank, Security: sec}
	now := r.clock.Now()
	if proofs := rrsOfTypes(extra, dns.TypeNSEC, dns.TypeNSEC3); len(proofs) > 0 && (uncacheable(proofs) || r.cache.Lifetime(&e, now) == 0) {
		// Proofs that may not be cached (TTL 0) leave the expansion they
		// prove uncached too: from the cache it would reach a DO client
		// without them (RFC 4035 §3.1.3.3), so it is asked for again.
		r.cache.Delete(k)
		return
	}
	r.cache.Put(k, e, now)
}

// uncacheable reports whether a record of rrs, or the TTL its RRSIG was
// signed with, is zero.
func uncacheable(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.OrigTtl == 0 || rr.Header().Ttl == 0 {
			return true
		}
	}
	return false
}

// onCNAME takes the first link of the chain and restarts the query at its
// target (scrub kept nothing beyond the first link).
func (r *Resolver) onCNAME(q *query, sec cache.Security) error {
	m := q.reply.msg
	r.cacheAnswer(q, m, sec)
	r.cacheChildNS(q, m, sec)
	target, links, err := r.chainLinks(q, m.Answer)
	if err != nil {
		return err
	}
	q.addAnswer(links, nil, sec)
	q.addProofs(m)
	if equalNames(target, q.name) {
		// A chain that leads back to the name asked is all there is to
		// say about it: Unbound answers it as it stands, NOERROR
		// (iter_resptype.c), rather than chasing it to the chain limit.
		q.res.zone = q.cut.zone
		r.finish(q, dns.RcodeSuccess)
		return nil
	}
	return r.followCNAME(q, target)
}

// finishChain ends the query with the first link of the chain at q.name
// as the answer.
func (r *Resolver) finishChain(q *query, sec cache.Security) error {
	m := q.reply.msg
	r.cacheAnswer(q, m, sec)
	_, links, err := r.chainLinks(q, m.Answer)
	if err != nil {
		return err
	}
	q.addAnswer(links, nil, sec)
	q.addProofs(m)
	q.res.zone = q.cut.zone
	r.finish(q, dns.RcodeSuccess)
	return nil
}

// addProofs keeps the NSEC and NSEC3 records of a positive reply that
// holds a wildcard expansion: they prove it and go to a DO client with
// the answer (RFC 4035 §3.1.3.3). Other denial records in a positive
// reply (a server's proof about a CNAME's target, say) answer another
// question: they are kept aside for a chain that ends negative.
func (q *query) addProofs(m *dns.Msg) {
	proofs := rrsOfTypes(m.Ns, dns.TypeNSEC, dns.TypeNSEC3)
	if expandsWildcard(m.Answer) {
		q.res.ns = appendNew(q.res.ns, proofs...)
		return
	}
	q.res.chainProofs = appendNew(q.res.chainProofs, proofs...)
}

// expandsWildcard reports whether an RRSIG in rrs has fewer labels than
// its owner: the RRset it covers was expanded from a wildcard (RFC 4035
// §5.3.4).
func expandsWildcard(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if sig, ok := rr.(*dns.RRSIG); ok && int(sig.Labels) < dns.CountLabel(sig.Hdr.Name) {
			return true
		}
	}
	return false
}

// appendNew appends the records of src not already in dst: the links of a
// chain may carry the same proof.
func appendNew(dst []dns.RR, src ...dns.RR) []dns.RR {
	for _, rr := range src {
		if !slices.ContainsFunc(dst, func(d dns.RR) bool { return dns.IsDuplicate(d, rr) }) {
			dst = append(dst, rr)
		}
	}
	return dst
}

// chainLinks returns the first link of the chain at q.name and its
// target: a DNAME above the name with the CNAME synthesised from it (a
// DNAME wins over the CNAME the server sent, which is unsigned and may
// disagree, RFC 6672 §3.4), else a CNAME at the name.
func (r *Resolver) chainLinks(q *query, answer []dns.RR) (string, []dns.RR, error) {
	for _, rr := range answer {
		if d, ok := rr.(*dns.DNAME); ok && strictlyBelow(q.name, d.Hdr.Name) {
			target, ok := dnameTarget(q.name, d)
			if !ok {
				return "", nil, q.errorf(ErrCNAMELimit, "DNAME %s yields a name too long", d.Hdr.Name)
			}
			return target, dnameLinks(q.name, d, target, sigsFor(answer, d.Hdr.Name, dns.TypeDNAME)), nil
		}
	}
	for _, rr := range answer {
		if c, ok := rr.(*dns.CNAME); ok && equalNames(c.Hdr.Name, q.name) {
			return c.Target, append([]dns.RR{c}, sigsFor(answer, c.Hdr.Name, dns.TypeCNAME)...), nil
		}
	}
	return "", nil, q.errorf(fmt.Errorf("%w: chain does not start at the name", errNoReply), "CNAME from %s", q.server)
}

// dnameLinks returns the DNAME, its RRSIGs and the CNAME synthesised from
// it for name (RFC 6672 §3.4). The synthesised CNAME is never cached: the
// DNAME is, and stepCache synthesises again, so answers from the cache
// carry the DNAME too.
func dnameLinks(name string, d *dns.DNAME, target string, sigs []dns.RR) []dns.RR {
	return append(append([]dns.RR{d}, sigs...), synthCNAME(name, d, target))
}

// sigsFor returns the RRSIGs in rrs covering (owner, t).
func sigsFor(rrs []dns.RR, owner string, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == t && equalNames(s.Hdr.Name, owner) {
			out = append(out, rr)
		}
	}
	return out
}

// onNegative ends the query with NXDOMAIN or NODATA and caches it.
func (r *Resolver) onNegative(q *query, rcode int, sec cache.Security) error {
	m := q.reply.msg
	e := cache.Entry{Ns: negativeAuthority(m.Ns), Rcode: rcode, Rank: cache.RankAuthorityAA, Security: sec}
	key := cache.NewKey(q.name, q.qtype, q.qclass)
	if rcode == dns.RcodeNameError {
		key.Type = cache.TypeNXDomain
	}
	r.cache.Put(key, e, r.clock.Now())
	r.cacheDenialSOA(e.Ns, e.Rank, sec)
	r.cacheChildNS(q, m, sec)
	q.res.zone = q.reply.zone
	if !r.cfg.MinimalResponses {
		q.res.authNS = rrsOfTypes(m.Ns, dns.TypeNS)
		q.res.glue = rrsOfTypes(m.Extra, dns.TypeA, dns.TypeAAAA)
	}
	r.finishNegative(q, rcode, e)
	return nil
}

// dsFromChild handles a DS reply that came from the child zone itself: a
// NODATA with the name's own SOA or none, or a CNAME at the name. The
// server asked serves both sides of the cut, and only the parent can
// answer DS. The parent's cut is looked up between the name and the cut
// asked, and the query moves there, once (Unbound's DS "locate NS").
func (r *Resolver) dsFromChild(ctx context.Context, q *query) bool {
	// A forwarder finds the parent itself; its NS sets never make a cut.
	if q.qtype != dns.TypeDS || q.cut.forward || q.parentLocated || !childSideDS(q.reply.msg, q.name) {
		return false
	}
	q.parentLocated = true
	for n := parentName(q.name); strictlyBelow(n, q.cut.zone); n = parentName(n) {
		sub := r.newQuery(n, dns.TypeNS, dns.ClassINET, q.req.sub(), q.depth+1)
		res, err := r.run(ctx, sub)
		if err != nil || !hasRRset(res.answer, n, dns.TypeNS) {
			continue
		}
		d := r.cachedDelegation(n, r.clock.Now())
		if d == nil {
			d = newDelegation(n, res.answer, r.cfg.Limits.MaxServersPerZone)
		}
		q.setCut(d)
		q.stage = stageSend
		return true
	}
	return false
}

// childSideDS reports whether a DS reply for name came from name's zone.
// A signed CNAME is the asked zone's own data (a wildcard, perhaps forged)
// and goes to the validator instead.
func childSideDS(m *dns.Msg, name string) bool {
	if hasRRset(m.Answer, name, dns.TypeCNAME) {
		return len(sigsFor(m.Answer, name, dns.TypeCNAME)) == 0
	}
	soa := rrsOfType(m.Ns, dns.TypeSOA)
	return len(m.Answer) == 0 && (len(soa) == 0 || equalNames(soa[0].Header().Name, name))
}

// negativeAuthority keeps what a negative answer needs: the SOA, with its
// TTL lowered to the negative TTL (RFC 2308 §3: min of the SOA's TTL and
// MINIMUM), and the NSEC/NSEC3 proofs, with their RRSIGs.
func negativeAuthority(ns []dns.RR) []dns.RR {
	out := rrsOfTypes(ns, dns.TypeSOA, dns.TypeNSEC, dns.TypeNSEC3)
	for _, rr := range out {
		if soa, ok := rr.(*dns.SOA); ok {
			soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return out
}

// onReferral moves the query down to the child zone the reply names.
func (r *Resolver) onReferral(q *query, sec cache.Security) error {
	q.referrals++
	if q.referrals > r.cfg.Limits.MaxReferrals {
		return q.errorf(ErrReferralLimit, "at %s", q.cut.zone)
	}
	m := q.reply.msg
	child, _ := nsOwner(m.Ns)
	if q.qtype == dns.TypeDS && equalNames(child, q.name) {
		return r.onLame(q) // the parent must answer DS itself
	}
	ns := rrsOfType(m.Ns, dns.TypeNS)
	clampTTL(ns, q.cut.ttl)
	clampTTL(m.Extra, q.cut.ttl)
	renew := r.renewable(q, child)
	// A referral over plain UDP may set a delegation but not replace a
	// live one: only TCP or a server cookie rules out an off-path forgery
	// (BIND CVE-2025-40778). Under spoofing pressure on the zone only TCP
	// may write it (pressure.go: renewable). The query follows it either
	// way.
	now := r.clock.Now()
	putNS := renew && (q.replyTrusted || r.cachedDelegation(child, now) == nil)
	if ds := rrsOfType(m.Ns, dns.TypeDS); len(ds) > 0 {
		// The DS set is the parent's own signed data, not a hint: it may
		// answer a DS question (rank of a non-AA answer).
		r.putRRset(ds, sigsFor(m.Ns, child, dns.TypeDS), cache.RankAnswerNonAA, sec, now)
	}
	if renew {
		glue := glueSets(m.Extra, ns)
		r.cacheGlue(glue, cache.RankGlue, now)
		r.cacheParentGlue(glue, now)
	}
	if putNS {
		// Last, so that a query that finds the NS set in the cache finds
		// the glue with it, not a cut without addresses to look up.
		r.putRRset(ns, nil, cache.RankAuthorityNonAA, sec, now)
	}
	d := newDelegation(child, ns, r.cfg.Limits.MaxServersPerZone)
	d.addAddrs(r.usableGlue(m.Extra, child))
	q.setCut(d)
	q.stage = stageSend
	return nil
}

// clampTTL lowers the TTLs of rrs to limit. A delegation
// must not outlive the one it was learnt through: a revoked domain's own
// servers could otherwise keep sub-delegations alive (ghost domains,
// threat model BAIL-5).
func clampTTL(rrs []dns.RR, limit uint32) {
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT { // its TTL field holds flags
			rr.Header().Ttl = min(rr.Header().Ttl, limit)
		}
	}
}

// usableGlue returns the glue a referral to child may use.
func (r *Resolver) usableGlue(extra []dns.RR, child string) []dns.RR {
	if !r.cfg.HardenUnverifiedGlue {
		return extra
	}
	var out []dns.RR
	for _, rr := range extra {
		if inBailiwick(rr.Header().Name, child) {
			out = append(out, rr)
		}
	}
	return out
}

// onLame remembers the server as lame for the zone and tries another.
func (r *Resolver) onLame(q *query) error {
	q.setFails(q.server, maxFailsPerServer)
	r.infra.markLame(q.server, q.cut.zone)
	r.log.Debug("lame reply", zap.String("zone", q.cut.zone), zap.Stringer("server", q.server),
		zap.String("name", q.askName), zap.String("rcode", dns.RcodeToString[q.reply.msg.Rcode]))
	q.stage = stageSend
	return nil
}

// bogusReply waits for a later reply to the same query (Hold-On: the
// forgery of an on-path injector comes first, the genuine reply after),
// then asks other servers, then gives up with the validator's reason.
func (r *Resolver) bogusReply(ctx context.Context, q *query) error {
	if q.next != nil && q.heldOn < maxHoldOnReplies {
		q.heldOn++
		if resp, err := q.next(ctx); err == nil {
			r.log.Warn("reply failed validation, a later one arrived: likely injection",
				zap.String("name", q.askName), zap.Stringer("server", q.server))
			r.takeReply(q, resp)
			return nil
		}
	}
	q.bogusTries++
	q.setFails(q.server, maxFailsPerServer)
	if q.bogusTries <= maxBogusRetries {
		q.stage = stageSend
		return nil
	}
	r.finishBogus(q)
	return nil
}

// finishBogus ends the query with SERVFAIL and the validator's reason.
func (r *Resolver) finishBogus(q *query) {
	q.res.security = cache.Bogus
	r.finish(q, dns.RcodeServerFailure)
}

// rrsOfTypes returns the records of the types ts, and their RRSIGs.
func rrsOfTypes(rrs []dns.RR, ts ...uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		t := rr.Header().Rrtype
		if s, ok := rr.(*dns.RRSIG); ok {
			t = s.TypeCovered
		}
		for _, want := range ts {
			if t == want {
				out = append(out, rr)
			}
		}
	}
	return out
}

// rrsOfType returns the records of type t.
func rrsOfType(rrs []dns.RR, t uint16) []dns.RR {
	n := countType(rrs, t)
	if n == 0 {
		return nil
	}
	out := make([]dns.RR, 0, n) // one allocation, not one per doubling (issue #6)
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			out = append(out, rr)
		}
	}
	return out
}
