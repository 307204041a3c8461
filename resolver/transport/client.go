package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Clock tells the Client the time for its per-server memory (0x20
// exemptions, EDNS fallback). Socket deadlines and RTTs use real time.
type Clock interface{ Now() time.Time }

// Config holds the Client's options. The zero value means every default.
type Config struct {
	// UDPSize is the EDNS UDP payload size advertised upstream. Default
	// 1232: replies that fit are not fragmented on any sane path (threat
	// model T4, FRAG-1), and all four peer resolvers use it.
	UDPSize uint16
	// NearMissMax is how many replies with a wrong ID one exchange
	// tolerates before it assumes a spoofer who knows the port and moves
	// to TCP. Default 1 (PowerDNS spoof-nearmiss-max).
	NearMissMax int
	// Timeout caps one exchange when the context has no earlier deadline.
	// Default 3 s (threat model OFF-8: no socket open longer than 3 s).
	Timeout time.Duration
	// ServerTableSize bounds the servers whose quirks are remembered.
	// Default 10,000.
	ServerTableSize int
	// CaseExemptFor is how long a server seen to change the question's case
	// (over TCP) is asked without 0x20. Default 1 hour.
	CaseExemptFor time.Duration
	// PlainDNSFor is how long a server that rejects or ignores EDNS is
	// asked without it. Default 15 minutes (Unbound infra-host-ttl).
	PlainDNSFor time.Duration
	// EDNSTimeouts is how many EDNS queries in a row may go unanswered by a
	// server never seen to answer EDNS before the next query probes it
	// without EDNS. Default 3.
	EDNSTimeouts int
	// CookieRotate is how often the secret behind the client cookies is
	// redrawn (RFC 9018 §3 asks for regular rotation). Default 1 hour.
	CookieRotate time.Duration
	// UnwantedThreshold is how many replies failing a check (wrong ID,
	// question or cookie) one server's exchanges may see within
	// UnwantedWindow before that server is asked over TCP for
	// PressureTCPFor. Defaults 10, 1 minute, 10 minutes. See noteUnwanted.
	UnwantedThreshold int
	UnwantedWindow    time.Duration
	PressureTCPFor    time.Duration
	// HoldOnMax bounds the Hold-On window after the first acceptable UDP
	// reply (see holdon.go); the exchange's deadline bounds it too.
	// Default 1 s.
	HoldOnMax time.Duration
	// InjectionMemory is how long a server on whose replies an injection
	// was seen has every UDP reply held for the full window. Default 10
	// minutes.
	InjectionMemory time.Duration

	// The switches below turn one defense off. Only the attack suite's
	// "defense off" runs set them, to show that each attack succeeds
	// without its defense; the config file never does.
	//
	// DisableCaseMix turns 0x20 off for every server.
	DisableCaseMix bool
	// DisableCookies sends no DNS cookies and checks none.
	DisableCookies bool
	// DisableHoldOn returns the first acceptable UDP reply and closes the
	// socket at once: first reply wins.
	DisableHoldOn bool
	// AcceptFragments takes UDP replies the kernel reassembled from IP
	// fragments instead of moving to TCP.
	AcceptFragments bool
	// Clock times the per-server memory; pass the resolver's clock so that
	// replayed runs age it on virtual time. Default: the system clock.
	Clock Clock
}

func (c Config) withDefaults() Config {
	if c.UDPSize == 0 {
		c.UDPSize = 1232
	}
	if c.NearMissMax <= 0 {
		c.NearMissMax = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.ServerTableSize <= 0 {
		c.ServerTableSize = 10000
	}
	if c.CaseExemptFor <= 0 {
		c.CaseExemptFor = time.Hour
	}
	if c.PlainDNSFor <= 0 {
		c.PlainDNSFor = 15 * time.Minute
	}
	if c.EDNSTimeouts <= 0 {
		c.EDNSTimeouts = 3
	}
	if c.CookieRotate <= 0 {
		c.CookieRotate = time.Hour
	}
	if c.UnwantedThreshold <= 0 {
		c.UnwantedThreshold = 10
	}
	if c.UnwantedWindow <= 0 {
		c.UnwantedWindow = time.Minute
	}
	if c.PressureTCPFor <= 0 {
		c.PressureTCPFor = 10 * time.Minute
	}
	if c.HoldOnMax <= 0 {
		c.HoldOnMax = time.Second
	}
	if c.InjectionMemory <= 0 {
		c.InjectionMemory = 10 * time.Minute
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	return c
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Stats is a snapshot of the Client's counters since it was made.
type Stats struct {
	QueriesUDP, QueriesTCP uint64
	// Accepted counts replies that passed every check and were returned.
	Accepted uint64
	// MismatchedID counts replies whose ID was not the query's (near-misses).
	MismatchedID uint64
	// MismatchedQuestion counts right-ID replies with another question,
	// QDCOUNT other than 1, or another opcode.
	MismatchedQuestion uint64
	// MismatchedCase counts right-ID replies whose question differed only in
	// letter case.
	MismatchedCase uint64
	// Malformed counts datagrams too short, with QR=0, or that failed to
	// unpack.
	Malformed uint64
	// TCEscalations, NearMissEscalations and CaseEscalations count
	// exchanges moved from UDP to TCP, by cause.
	TCEscalations, NearMissEscalations, CaseEscalations uint64
	// ReassembledDropped counts UDP replies rebuilt from IP fragments; each
	// also moves its exchange to TCP.
	ReassembledDropped uint64
	// CaseExemptionsLearned counts servers exempted from 0x20 after a TCP
	// answer that changed the case.
	CaseExemptionsLearned uint64
	// EDNSFallbacks counts queries re-asked or probed without EDNS.
	EDNSFallbacks uint64

	// MismatchedCookie counts UDP replies carrying another client cookie,
	// or none from a server known to send one.
	MismatchedCookie uint64
	// CookieEscalations counts exchanges moved to TCP because a server
	// known to do cookies answered without one, or twice BADCOOKIE.
	CookieEscalations uint64
	// BadCookieRetries counts BADCOOKIE replies retried with the new
	// server cookie (RFC 7873 §5.3).
	BadCookieRetries uint64
	// CookiesForgotten counts servers seen over TCP to have stopped
	// sending cookies.
	CookiesForgotten uint64
	// UnwantedReplies counts replies that failed the ID, question or
	// cookie check; PressureEscalations counts servers switched to TCP
	// when their count passed Config.UnwantedThreshold.
	UnwantedReplies, PressureEscalations uint64
	// ConflictingReplies counts acceptable UDP replies that differed from
	// the one accepted first on the same association; InjectionsDetected
	// counts exchanges that saw at least one (on-path injection).
	ConflictingReplies, InjectionsDetected uint64
	// HoldOnWaits counts exchanges whose first reply was held for the
	// whole window before it was returned (see holdon.go).
	HoldOnWaits uint64
	// LateReplies counts datagrams read after a reply was accepted, while
	// the association was held open; DuplicateReplies are those identical
	// to the accepted reply. Datagrams that arrive after the socket is
	// closed are dropped by the kernel and show only in the host's
	// Udp NoPorts counter (/proc/net/snmp).
	LateReplies, DuplicateReplies uint64
}

type counters struct {
	queriesUDP, queriesTCP, accepted         atomic.Uint64
	badID, badQuestion, badCase, malformed   atomic.Uint64
	tcEsc, nearMissEsc, caseEsc, reassembled atomic.Uint64
	exemptionsLearned, ednsFallbacks         atomic.Uint64
	badCookie, cookieEsc, badCookieRetries   atomic.Uint64
	cookiesForgotten, unwanted, pressureEsc  atomic.Uint64
	conflicts, injections, holdOnWaits       atomic.Uint64
	lateReplies, duplicates                  atomic.Uint64
}

// Client is the Exchanger that every upstream reply passes through; it
// works over any Network and keeps all the forgery defenses itself, so the
// simulated and attack networks exercise exactly the production checks.
type Client struct {
	net     Network
	cfg     Config
	log     *zap.Logger
	rand    *entropy
	servers *serverTable
	cookies *cookieJar
	n       counters

	// watchers are the background Hold-On goroutines (watchers and the
	// sweeper) still holding a socket open; stop ends them early (Close).
	watchers sync.WaitGroup
	sweeper  sweeper
	life     context.Context
	stop     context.CancelFunc
}

// NewExchanger returns a Client sending over nw. A nil log logs nothing.
func NewExchanger(nw Network, cfg Config, log *zap.Logger) *Client {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	life, stop := context.WithCancel(context.Background())
	return &Client{net: nw, cfg: cfg, log: log, rand: newEntropy(), servers: newServerTable(cfg.ServerTableSize),
		cookies: newCookieJar(cfg.CookieRotate), life: life, stop: stop}
}

// Close ends the Hold-On windows watched in the background and waits for
// their goroutines; their sockets are closed when it returns. An exchange
// waiting out its window in its own goroutine ends with that window
// (HoldOnMax at most). Exchanges after Close get no Hold-On window.
func (c *Client) Close() {
	c.stop()
	c.sweeper.shut()
	c.watchers.Wait()
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	n := &c.n
	return Stats{
		QueriesUDP: n.queriesUDP.Load(), QueriesTCP: n.queriesTCP.Load(), Accepted: n.accepted.Load(),
		MismatchedID: n.badID.Load(), MismatchedQuestion: n.badQuestion.Load(), MismatchedCase: n.badCase.Load(),
		Malformed: n.malformed.Load(), TCEscalations: n.tcEsc.Load(), NearMissEscalations: n.nearMissEsc.Load(),
		CaseEscalations: n.caseEsc.Load(), ReassembledDropped: n.reassembled.Load(),
		CaseExemptionsLearned: n.exemptionsLearned.Load(), EDNSFallbacks: n.ednsFallbacks.Load(),
		MismatchedCookie: n.badCookie.Load(), CookieEscalations: n.cookieEsc.Load(),
		BadCookieRetries: n.badCookieRetries.Load(), CookiesForgotten: n.cookiesForgotten.Load(),
		UnwantedReplies: n.unwanted.Load(), PressureEscalations: n.pressureEsc.Load(),
		ConflictingReplies: n.conflicts.Load(), InjectionsDetected: n.injections.Load(),
		HoldOnWaits: n.holdOnWaits.Load(), LateReplies: n.lateReplies.Load(), DuplicateReplies: n.duplicates.Load(),
	}
}

var _ Exchanger = (*Client)(nil)

// plan says how the next attempt of an exchange is sent.
type plan struct {
	tcp, edns, mix bool
	// caseFailed: a UDP reply came back with the case changed; if TCP fails
	// too the exchange ends in ErrCaseMismatch.
	caseFailed bool
	// ednsRejected: the server answered FORMERR/NOTIMP to EDNS (or ignored
	// it), so a plain answer now teaches that it is EDNS-intolerant.
	ednsRejected bool
	// badCookie: the server answered BADCOOKIE once already in this
	// exchange; a second one moves to TCP.
	badCookie bool
}

// maxAttempts bounds one exchange: EDNS UDP, its BADCOOKIE retry, plain
// UDP, TCP, and one spare.
const maxAttempts = 5

// Exchange asks q.Name of q.Server and returns the first reply that passes
// every check, or an error wrapping one of the package's sentinels.
func (c *Client) Exchange(ctx context.Context, q Query) (*Response, error) {
	q.end = c.exchangeEnd(ctx, q)
	p := c.firstPlan(q)
	for range maxAttempts {
		// Called directly, not through a func value, which would move q
		// to the heap on every exchange (issue #6).
		var resp *Response
		var next plan
		var err error
		if p.tcp {
			resp, next, err = c.tcpAttempt(ctx, &q, p)
		} else {
			resp, next, err = c.udpAttempt(ctx, &q, p)
		}
		if resp != nil || err != nil {
			return withUnwanted(&q, resp, err)
		}
		p = next
	}
	return withUnwanted(&q, nil, fmt.Errorf("ask %s for %s: no usable reply after %d attempts: %w", q.Server, q.Name, maxAttempts, ErrTimeout))
}

// exchangeEnd is when an exchange starting now must be over: Config.Timeout
// from now, or sooner by q.Timeout or ctx's deadline. The UDP reads take
// it as their deadline, so no context is derived for it (issue #6).
func (c *Client) exchangeEnd(ctx context.Context, q Query) time.Time {
	span := c.cfg.Timeout
	if q.Timeout > 0 {
		span = min(span, q.Timeout)
	}
	end := time.Now().Add(span)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	return end
}

// withUnwanted tells the resolver how many unwanted replies the exchange
// saw, on the reply or, when it failed, in an UnwantedError.
func withUnwanted(q *Query, resp *Response, err error) (*Response, error) {
	switch {
	case q.unwanted == 0:
	case err != nil:
		err = &UnwantedError{Unwanted: q.unwanted, Err: err}
	case resp != nil:
		resp.Unwanted = q.unwanted
	}
	return resp, err
}

func (c *Client) firstPlan(q Query) plan {
	info := c.servers.get(q.Server)
	now := c.cfg.Clock.Now()
	p := plan{tcp: q.TCP || c.underPressure(info, now), edns: true, mix: !c.cfg.DisableCaseMix && !now.Before(info.caseExemptUntil)}
	switch {
	case now.Before(info.plainUntil):
		p.edns = false
	case !info.ednsSeen && int(info.ednsTimeouts) >= c.cfg.EDNSTimeouts && !q.TCP:
		// A server that never answered EDNS: probe it with plain DNS.
		p.edns, p.ednsRejected = false, true
		c.n.ednsFallbacks.Add(1)
	}
	return p
}

// timeoutErr turns a read that ended with the context into the error the
// resolver expects: ErrTimeout, or the cancellation itself.
func timeoutErr(ctx context.Context, q *Query, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("ask %s for %s: %w", q.Server, q.Name, ctx.Err())
	}
	if errors.Is(err, ErrTimeout) || ctx.Err() != nil {
		return fmt.Errorf("ask %s for %s: %w", q.Server, q.Name, ErrTimeout)
	}
	return fmt.Errorf("ask %s for %s: %w", q.Server, q.Name, err)
}
