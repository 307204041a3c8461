package resolver

import (
	"context"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/validate"
)

// validateReply runs the validator over the scrubbed reply when the
// request wants validation. It returns false for a Bogus reply, after
// recording the validator's reason in the result.
func (r *Resolver) validateReply(ctx context.Context, q *query, kind responseKind) (cache.Security, bool) {
	// RRSIGs are not signed themselves: a query for them has nothing to
	// validate (RFC 4035 §3.2.1 answers it like any other type).
	if !q.req.validate || r.deps.Validator == nil || kind == kindLame || q.askType == dns.TypeRRSIG {
		return cache.Unchecked, true
	}
	res := r.deps.Validator.Validate(ctx, fetcher{r: r, q: q}, validate.Reply{
		Zone:  q.reply.zone,
		QName: q.askName,
		QType: q.askType,
		Msg:   q.reply.msg,
	})
	if res.Security != cache.Bogus {
		if res.EDE != 0 && q.res.ede == 0 {
			q.res.ede, q.res.reason = res.EDE, res.Reason
		}
		return res.Security, true
	}
	q.res.ede, q.res.reason = res.EDE, res.Reason
	r.log.Debug("bogus reply", zap.String("name", q.askName), zap.String("zone", q.reply.zone),
		zap.Stringer("server", q.server), zap.String("reason", res.Reason))
	return cache.Bogus, false
}

// fetcher lets the validator look up DNSKEY and DS records through the
// resolver, charged to the client query's budget and without validation
// (the validator checks what it gets).
type fetcher struct {
	r *Resolver
	q *query
}

func (f fetcher) Fetch(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, error) {
	sub := f.r.newQuery(name, qtype, dns.ClassINET, f.q.req.sub(), f.q.depth+1)
	res, err := f.r.run(ctx, sub)
	if err != nil {
		return nil, "", err
	}
	f.q.req.rejected.answered(name, qtype, sub.server)
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Response = true
	m.Rcode = res.rcode
	m.Answer = res.answer
	m.Ns = res.ns
	return m, resultZone(res), nil
}

// resultZone names the zone a result came from. A result from the cache
// has no cut; its signer, or its SOA's owner, names the zone.
func resultZone(res *result) string {
	if res.zone != "" {
		return res.zone
	}
	for _, rr := range res.answer {
		if sig, ok := rr.(*dns.RRSIG); ok {
			return sig.SignerName
		}
	}
	for _, rr := range res.ns {
		switch v := rr.(type) {
		case *dns.SOA:
			return v.Hdr.Name
		case *dns.RRSIG:
			return v.SignerName
		}
	}
	return ""
}

// Reject forgets a DNSKEY or DS reply that failed validation and keeps
// its server out of this client query, so that the validator's next fetch
// asks another server (Unbound's blacklist, black_* scenarios).
func (f fetcher) Reject(name string, qtype uint16) bool {
	srv, ok := f.q.req.rejected.reject(name, qtype)
	if !ok {
		return false
	}
	// The answer may have been a CNAME (a forged wildcard, say) that the
	// lookup followed: forget that too.
	f.r.cache.Delete(cache.NewKey(name, qtype, dns.ClassINET))
	f.r.cache.Delete(cache.NewKey(name, dns.TypeCNAME, dns.ClassINET))
	f.r.log.Debug("rejected a key reply that failed validation", zap.String("name", name),
		zap.String("type", dns.TypeToString[qtype]), zap.Stringer("server", srv))
	return true
}
