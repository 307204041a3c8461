package resolver

import (
	"context"
	"errors"
	"strings"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver/internal/deadline"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// ednsSize is the UDP payload size Bulwark advertises to clients: the DNS
// flag day 2020 value, small enough never to fragment.
const ednsSize = 1232

// Answer resolves a client's query and returns the response to send. The
// listener has already checked the client's access, the opcode and the
// message's form; Answer handles RD, DO, CD and the EDNS of the response.
func (r *Resolver) Answer(ctx context.Context, req *dns.Msg) *dns.Msg {
	return r.answerLogged(ctx, req, false)
}

// Refresh resolves the query again without answering from the record
// cache, for a caller that prefetches popular answers before they expire
// (Unbound's prefetch). The fresh data replaces the cached data as usual.
func (r *Resolver) Refresh(ctx context.Context, req *dns.Msg) *dns.Msg {
	return r.answerLogged(ctx, req, true)
}

func (r *Resolver) answerLogged(ctx context.Context, req *dns.Msg, refresh bool) *dns.Msg {
	if !r.deps.QueryLog {
		return r.answer(ctx, req, refresh)
	}
	start := r.clock.Now()
	resp := r.answer(ctx, req, refresh)
	if len(req.Question) == 1 {
		r.log.Info("query", zap.String("name", req.Question[0].Name),
			zap.String("type", dns.TypeToString[req.Question[0].Qtype]),
			zap.String("rcode", dns.RcodeToString[resp.Rcode]),
			zap.Duration("took", r.clock.Now().Sub(start)))
	}
	return resp
}

func (r *Resolver) answer(ctx context.Context, req *dns.Msg, refresh bool) *dns.Msg {
	out := newResponse(req)
	resp := &out.msg
	resp.RecursionAvailable = true
	opt := req.IsEdns0()
	q := req.Question[0]
	switch {
	case q.Qclass != dns.ClassINET:
		return out.refuse(opt, dns.ExtendedErrorCodeProhibited, "only class IN is served")
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		// Unbound clears RA here: a transfer is no recursion question.
		resp.RecursionAvailable = false
		return out.refuse(opt, dns.ExtendedErrorCodeProhibited, "zone transfers are not served")
	case !req.RecursionDesired && !r.cfg.AllowSnoop:
		// RFC 8914 §4.21, and what Unbound sends for a refused snoop.
		return out.refuse(opt, dns.ExtendedErrorCodeNotAuthoritative, "recursion not desired and cache snooping not allowed")
	}
	res, err := r.resolveShared(ctx, q, req, refresh)
	if err != nil {
		return r.servfail(out, opt, q, err)
	}
	r.shape(resp, req, res)
	out.withEDNS(opt, res.ede, res.reason)
	return resp
}

// response is a client's response with room for the question and the OPT
// record that most responses carry, so that it is one allocation
// (issue #6).
type response struct {
	msg      dns.Msg
	question [1]dns.Question
	opt      dns.OPT
	extra    [1]dns.RR
}

// newResponse starts the response to req as dns.Msg.SetReply does, with
// CD copied whatever the opcode.
func newResponse(req *dns.Msg) *response {
	out := new(response)
	resp := &out.msg
	resp.Id = req.Id
	resp.Response = true
	resp.Opcode = req.Opcode
	if resp.Opcode == dns.OpcodeQuery {
		resp.RecursionDesired = req.RecursionDesired
	}
	resp.CheckingDisabled = req.CheckingDisabled
	if len(req.Question) > 0 {
		out.question[0] = req.Question[0]
		resp.Question = out.question[:]
	}
	return out
}

// resolveShared resolves the question, joining an identical resolution
// already in flight. The shared resolution runs on its own deadline so
// that the first client's going away does not fail the others.
func (r *Resolver) resolveShared(ctx context.Context, q dns.Question, req *dns.Msg, refresh bool) (*result, error) {
	k := flightKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, cd: req.CheckingDisabled, refresh: refresh}
	if err := r.failures.get(k, r.clock.Now()); err != nil {
		return nil, err
	}
	if !req.RecursionDesired {
		return r.fromCacheOnly(k)
	}
	res, err, _, _ := r.group.do(ctx, k, func() (*result, error) {
		// Checked between steps and kept by the transport's own timers,
		// the deadline needs a timer only if something waits on it: a
		// query joining another's resolution or key validation (issue #6).
		rctx := deadline.Detached(ctx, r.cfg.QueryTimeout)
		defer rctx.Cancel()
		q := r.newClientQuery(k.name, k.qtype, k.qclass)
		q.req.validate, q.req.noCache = r.deps.Validator != nil && !k.cd, refresh
		res, err := r.run(rctx, q)
		switch {
		case err != nil:
			r.failures.put(k, edeFor(err), err.Error(), r.clock.Now())
		case res.rcode == dns.RcodeServerFailure:
			r.failures.put(k, res.ede, res.reason, r.clock.Now())
		}
		return res, err
	})
	if err == nil && res == nil {
		err = errors.New("resolution ended without a result")
	}
	return res, err
}

// fromCacheOnly answers an RD=0 query (cache snooping) without sending
// anything upstream.
func (r *Resolver) fromCacheOnly(k flightKey) (*result, error) {
	q := r.newClientQuery(k.name, k.qtype, k.qclass)
	if err := r.stepCache(q); err != nil {
		return nil, err
	}
	if q.stage == stageDone {
		return &q.res, nil
	}
	return r.cachedReferral(q.name)
}

// cachedReferral answers an RD=0 question the cache cannot with the
// closest cached delegation, its NS set in authority and the addresses of
// its servers in additional, as Unbound does for cache snooping. A Secure
// NS set keeps its AD bit: unvalidated addresses are left out instead.
func (r *Resolver) cachedReferral(name string) (*result, error) {
	now := r.clock.Now()
	for n := name; ; n = parentName(n) {
		if e, ok := r.cache.Get(cache.NewKey(n, dns.TypeNS, dns.ClassINET), now); ok && !e.Negative() {
			res := &result{rcode: dns.RcodeSuccess, referral: true, security: e.Security, authNS: append(e.RRs, e.Sigs...)}
			for _, rr := range e.RRs {
				for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
					a, ok := r.cache.Get(cache.NewKey(rr.(*dns.NS).Ns, t, dns.ClassINET), now)
					if !ok || a.Negative() || e.Security == cache.Secure && a.Security != cache.Secure {
						// Next to a Secure NS set only Secure addresses are
						// shown (Unbound's val-clean-additional).
						continue
					}
					res.glue = append(append(res.glue, a.RRs...), a.Sigs...)
					res.security = worse(res.security, a.Security)
				}
			}
			return res, nil
		}
		if n == "." {
			return nil, errors.New("not in cache")
		}
	}
}

// shape fills the response sections from the result.
func (r *Resolver) shape(resp, req *dns.Msg, res *result) {
	do := req.IsEdns0() != nil && req.IsEdns0().Do()
	qtype := req.Question[0].Qtype
	resp.Rcode = res.rcode
	resp.Answer = dnssecFiltered(res.answer, do, qtype)
	resp.Ns = dnssecFiltered(res.ns, do, qtype)
	if res.rcode == dns.RcodeServerFailure {
		resp.Answer, resp.Ns = nil, nil
	}
	switch {
	case res.referral || !r.cfg.MinimalResponses && res.rcode == dns.RcodeSuccess:
		ns, extra := fullSections(res)
		resp.Ns = dnssecFiltered(append(ns, res.ns...), do, qtype)
		resp.Extra = dnssecFiltered(extra, do, qtype)
	case r.cfg.NSAnswerAddresses && qtype == dns.TypeNS && res.rcode == dns.RcodeSuccess:
		_, extra := fullSections(res)
		resp.Extra = dnssecFiltered(extra, do, qtype)
	}
	resp.AuthenticatedData = res.security == cache.Secure && (do || req.AuthenticatedData) && !req.CheckingDisabled
}

// dnssecFiltered drops DNSSEC records for clients that did not ask for
// them with DO (RFC 4035 §3.2.1), unless the client asked for that type.
// Like a DO answer, one with nothing to drop shares rrs.
func dnssecFiltered(rrs []dns.RR, do bool, qtype uint16) []dns.RR {
	if do {
		return rrs
	}
	return without(rrs, func(rr dns.RR) bool {
		switch t := rr.Header().Rrtype; t {
		case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
			return t != qtype
		}
		return false
	})
}

// servfail turns a failed resolution into SERVFAIL with an Extended DNS
// Error that says why.
func (r *Resolver) servfail(out *response, opt *dns.OPT, q dns.Question, err error) *dns.Msg {
	r.log.Debug("resolution failed", zap.String("name", q.Name), zap.String("type", dns.TypeToString[q.Qtype]), zap.Error(err))
	out.msg.Rcode = dns.RcodeServerFailure
	out.withEDNS(opt, edeFor(err), err.Error())
	return &out.msg
}

// edeFor maps a resolution error to an RFC 8914 info code.
func edeFor(err error) uint16 {
	var fe *failedError
	switch {
	case errors.As(err, &fe):
		return fe.code
	case errors.Is(err, ErrNoServers), errors.Is(err, transport.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return dns.ExtendedErrorCodeNoReachableAuthority
	}
	return dns.ExtendedErrorCodeOther
}

// refuse answers REFUSED with an Extended DNS Error saying why.
func (out *response) refuse(opt *dns.OPT, code uint16, why string) *dns.Msg {
	out.msg.Rcode = dns.RcodeRefused
	out.withEDNS(opt, code, why)
	return &out.msg
}

// withEDNS adds the response OPT record when the client used EDNS, with
// an Extended DNS Error when code is set (RFC 8914).
func (out *response) withEDNS(opt *dns.OPT, code uint16, text string) {
	if opt == nil {
		return
	}
	resp, o := &out.msg, &out.opt
	o.Hdr.Name = "."
	o.Hdr.Rrtype = dns.TypeOPT
	o.SetUDPSize(ednsSize)
	o.SetDo(opt.Do())
	if code != 0 || text != "" && resp.Rcode == dns.RcodeServerFailure {
		o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: code, ExtraText: text})
	}
	if len(resp.Extra) == 0 {
		resp.Extra = out.extra[:0]
	}
	resp.Extra = append(resp.Extra, o)
}
