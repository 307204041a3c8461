package resolver

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// stage is a named step of one query's progress (Unbound's iter_state).
type stage uint8

const (
	stageCache   stage = iota // answer from the cache, or follow a cached CNAME
	stageFindCut              // find the closest known zone cut
	stageSend                 // pick a server of the cut and ask it
	stageReply                // scrub, validate, classify and act on the reply
	stageDone                 // result is complete
)

var stageNames = [...]string{"cache", "find-cut", "send", "reply", "done"}

func (s stage) String() string { return stageNames[s] }

// maxMinimiseSteps bounds the minimised queries for one name; past it the
// full name is sent (Unbound's MAX_MINIMISE_COUNT).
const maxMinimiseSteps = 10

// maxFailsPerServer bounds the failed tries of one server address for one
// cut: the first failure is retried over TCP, the second moves on.
const maxFailsPerServer = 2

// maxHoldOnReplies bounds the later replies to one query taken after the
// first failed validation: an on-path injector may send a few forgeries
// before the genuine reply (GFW: three injectors).
const maxHoldOnReplies = 4

// maxBogusRetries bounds how many other servers are asked after a reply
// fails validation (Unbound's val-max-restart is 5).
const maxBogusRetries = 2

// query is one question being resolved: the client's, or a sub-query for
// an NS name's address or a validator's DNSKEY/DS lookup. Its whole state
// is here; nothing hides in the context.
type query struct {
	name   string // current name: the client's, or a CNAME target
	qtype  uint16
	qclass uint16
	stage  stage
	depth  int
	req    *request

	cut *delegation
	// above, for the address lookup of an NS name inside the zone it
	// serves (a delegation without glue), is that zone: the lookup starts
	// at the parent's servers, which hold the glue, not at the zone whose
	// servers it is trying to find.
	above string
	fails map[netip.Addr]int // failed tries per server, for this cut
	// lostUDP is the server of the cut whose reply to this query's own
	// UDP exchange (not one it shared) was lost.
	lostUDP   netip.Addr
	referrals int
	minimise  bool   // QNAME minimisation still on for this query
	minLabels int    // labels of the name asked while minimising
	minSteps  int    // minimised queries sent
	askName   string // what was sent last
	waitedFor string // the minimised name this query last waited on another for
	askType   uint16
	server    netip.Addr
	reply     scrubbed
	// replyTrusted: the reply came over TCP or with a valid server cookie,
	// which an off-path spoofer cannot forge.
	replyTrusted bool
	// replyTCP: the reply came over TCP, the only way a zone under
	// spoofing pressure takes delegation data (renewable).
	replyTCP   bool
	next       func(context.Context) (*transport.Response, error) // Hold-On: later replies
	heldOn     int                                                // later replies taken
	bogusTries int
	// parentRetried: the cached cut proved useless once and the query went
	// back to the parent for a fresh referral; it does so only once.
	parentRetried bool
	// parentLocated: a DS NODATA came from the child side and the parent's
	// cut was looked up; it is done once.
	parentLocated bool

	res result
}

// result is what a query found.
type result struct {
	rcode  int
	answer []dns.RR // CNAME/DNAME chain, then the final RRset (with RRSIGs)
	// ns holds the SOA and denial proofs of a negative answer, and the
	// NSEC/NSEC3 proofs that come with wildcard expansions on the way.
	ns []dns.RR
	// chainProofs are the other NSEC/NSEC3 records of the chain's
	// replies (a delegation without DS on the way to the target, say):
	// they join ns only if the chain ends in a negative answer, as
	// Unbound's do, for a positive one does not rest on them.
	chainProofs []dns.RR
	// authNS and glue are the zone's NS set and addresses from the final
	// reply, shown to clients only when minimal responses are off.
	authNS, glue []dns.RR
	// referral: the result is a delegation from the cache for an RD=0
	// question, shown in authority and additional.
	referral bool
	zone     string // the cut that gave the last answer
	security cache.Security
	ede      uint16
	reason   string
}

// request is the client query that every sub-query works for.
type request struct {
	budget   *budget
	rejected *rejections // shared by the client query and its sub-queries; address lookups start afresh
	validate bool        // false for CD=1 and when validation is off
	noCache  bool
}

// sub returns the request of a sub-query: same budget and rejections,
// no validation of its own (the validator checks what it fetched).
func (rq *request) sub() *request {
	return &request{budget: rq.budget, rejected: rq.rejected}
}

// addressLookup returns the request of an NS name's address lookup: the
// same budget, and no servers avoided. A server whose key reply was
// rejected may still tell the addresses of its zone's servers (Unbound's
// target queries are queries of their own): those only lead to data that
// is validated, and without them a zone whose every known address was
// rejected could not reach its other servers.
func (rq *request) addressLookup() *request {
	all := &struct {
		request
		rejections
	}{request: request{budget: rq.budget}}
	all.request.rejected = &all.rejections
	return &all.request
}

// newClientQuery returns the query of a client's question with a request
// of its own: the query, the request, its budget and its rejections come
// in one allocation instead of four, since every client question makes
// them all (issue #6).
func (r *Resolver) newClientQuery(name string, qtype, qclass uint16) *query {
	all := &struct {
		q  query
		rq request
		b  budget
		rj rejections
	}{b: budget{limits: &r.cfg.Limits}}
	all.rq.budget, all.rq.rejected = &all.b, &all.rj
	all.q = r.queryOf(name, qtype, qclass, &all.rq, 0)
	return &all.q
}

func (r *Resolver) newQuery(name string, qtype, qclass uint16, req *request, depth int) *query {
	q := r.queryOf(name, qtype, qclass, req, depth)
	return &q
}

func (r *Resolver) queryOf(name string, qtype, qclass uint16, req *request, depth int) query {
	return query{
		name:     strings.ToLower(dns.Fqdn(name)),
		qtype:    qtype,
		qclass:   qclass,
		depth:    depth,
		req:      req,
		minimise: r.cfg.QNameMinimisation && qtype != dns.TypeDS,
		res:      result{security: cache.Secure},
	}
}

// run drives the query through its stages until it is done.
func (r *Resolver) run(ctx context.Context, q *query) (*result, error) {
	if q.depth > r.cfg.Limits.MaxDepth {
		return nil, fmt.Errorf("%s %s: %w (%d)", q.name, dns.TypeToString[q.qtype], ErrDepthLimit, r.cfg.Limits.MaxDepth)
	}
	for q.stage != stageDone {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("resolve %s %s: %w", q.name, dns.TypeToString[q.qtype], err)
		}
		var err error
		switch q.stage {
		case stageCache:
			err = r.stepCache(q)
		case stageFindCut:
			err = r.stepFindCut(ctx, q)
		case stageSend:
			err = r.stepSend(ctx, q)
		case stageReply:
			err = r.stepReply(ctx, q)
		}
		if err != nil {
			return nil, err
		}
	}
	return &q.res, nil
}
