// Package listener owns the client-facing side of Bulwark: the UDP and TCP
// sockets that clients query, the access list, the checks every client
// message passes before the resolver sees it, and the fitting of the reply
// to the client's transport (EDNS buffer size, truncation).
//
// It must not resolve or validate anything, and never talks to upstream
// servers: a well-formed query from an allowed client is answered from the
// answer cache (cache.AnswerCache) when a live answer is there, else it goes
// to the Handler, whose reply is fitted to the transport and remembered in
// the answer cache. It reads the wall clock for socket and query deadlines
// only; answer TTLs run on the injected Clock.
package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/cache"
)

// Handler answers one client query that passed the listener's checks. The
// resolver satisfies it. A nil reply is sent as SERVFAIL. A reply is the
// Server's once returned: it sets its ID and flags, fits its additional
// section and may send its OPT record, records included, as they are.
type Handler interface {
	Answer(ctx context.Context, req *dns.Msg) *dns.Msg
}

// Refresher is a Handler that can also resolve past its own caches; the
// Server prefers it for prefetch and for refreshing stale answers.
type Refresher interface {
	Refresh(ctx context.Context, req *dns.Msg) *dns.Msg
}

// Clock tells the Server the time for answer-cache TTLs.
type Clock interface{ Now() time.Time }

// Config tunes a Server. The zero value means the defaults.
type Config struct {
	// Access decides which clients are served, longest prefix first. Nil
	// means DefaultAccess (loopback only); clients no rule matches are
	// REFUSED.
	Access []AccessRule

	// MaxInFlight bounds the queries being answered at once over all
	// sockets. Default 1000. A UDP query that finds no free slot is dropped
	// (the client retries, and a flood is not reflected); a TCP query gets
	// SERVFAIL, since a stream client cannot tell a drop from a slow answer.
	MaxInFlight int

	// MaxTCPConns bounds open client TCP connections; one beyond the bound
	// is closed at once. Default 256.
	MaxTCPConns int

	// TCPIdleTimeout closes a TCP connection on which no complete query
	// arrived for this long, once its outstanding answers are written.
	// Default 10 s (RFC 7766 §6.2.3 asks for seconds, not minutes).
	TCPIdleTimeout time.Duration

	// QueryTimeout is the deadline of each Handler call. Default 10 s, just
	// above the resolver's own 8 s so that the resolver's SERVFAIL, with its
	// reason, normally wins.
	QueryTimeout time.Duration

	// Logger defaults to a no-op logger.
	Logger *zap.Logger

	// Answers, when set, answers plain queries (see parsePlainQuery) from
	// whole cached answers without calling the Handler, and is filled from
	// the Handler's NOERROR and NXDOMAIN replies. Serve-stale is the cache's
	// MaxStale: a stale hit is answered with TTL 30 s (RFC 8767 §4) and
	// refreshed in the background. Nil sends every query to the Handler.
	Answers *cache.AnswerCache
	// Clock is required with Answers.
	Clock Clock
	// Prefetch refreshes an answer in the background when a hit finds it
	// in the last tenth of its lifetime, once per answer, as Unbound's
	// prefetch does. Default off.
	Prefetch bool
	// MaxRefreshes bounds the background refreshes (prefetch and stale)
	// running at once; a hit that finds none free refreshes nothing.
	// Default 16.
	MaxRefreshes int

	// Workers is the number of UDP sockets bound to each address with
	// SO_REUSEPORT, each with its own read loop, so that the kernel spreads
	// clients over them. Default GOMAXPROCS.
	Workers int
}

// Defaults of Config.
const (
	DefaultMaxInFlight    = 1000
	DefaultMaxTCPConns    = 256
	DefaultTCPIdleTimeout = 10 * time.Second
	DefaultQueryTimeout   = 10 * time.Second
	DefaultMaxRefreshes   = 16
)

func (c Config) withDefaults() Config {
	if c.Access == nil {
		c.Access = DefaultAccess()
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxTCPConns <= 0 {
		c.MaxTCPConns = DefaultMaxTCPConns
	}
	if c.TCPIdleTimeout <= 0 {
		c.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.MaxRefreshes <= 0 {
		c.MaxRefreshes = DefaultMaxRefreshes
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	return c
}

// Server serves clients on any number of UDP and TCP sockets. It is safe
// for concurrent use.
type Server struct {
	cfg    Config
	h      Handler
	log    *zap.Logger
	access accessList
	slots  chan struct{} // one token per query being answered
	// refreshes holds one token per background refresh.
	refreshes chan struct{}
	answers   *cache.AnswerCache // nil: no fast path
	clock     Clock
	conns     chan struct{} // one token per open TCP connection
	stats     counters

	// base is the parent of every Handler context; cancelled when Shutdown
	// stops waiting.
	base   context.Context
	cancel context.CancelFunc

	// wg counts read loops, accept loops, connections, miss workers, their
	// sweeper and queries. Every Add happens in Listen before closing or in
	// a goroutine wg counts.
	wg sync.WaitGroup

	// misses keeps the idle miss workers; the first Listen starts their
	// sweeper, which ends when Shutdown closes stopSweep.
	misses    missPool
	stopSweep chan struct{}

	mu      sync.Mutex // guards the fields below
	closing bool
	swept   bool           // the sweeper has started
	udp     []*net.UDPConn // every worker socket
	bound   []*net.UDPConn // the first socket of each Listen
	tcp     []net.Listener
	active  map[net.Conn]struct{}
}

// New returns a Server that answers through h once Listen is called. It
// panics when cfg has Answers without a Clock, a wiring mistake that would
// otherwise leave every answer's TTL unknown.
func New(cfg Config, h Handler) *Server {
	cfg = cfg.withDefaults()
	if cfg.Answers != nil && cfg.Clock == nil {
		panic("listener: Config.Answers needs Config.Clock")
	}
	base, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:       cfg,
		h:         h,
		log:       cfg.Logger,
		access:    newAccessList(cfg.Access),
		refreshes: make(chan struct{}, cfg.MaxRefreshes),
		answers:   cfg.Answers,
		clock:     cfg.Clock,
		slots:     make(chan struct{}, cfg.MaxInFlight),
		conns:     make(chan struct{}, cfg.MaxTCPConns),
		base:      base,
		cancel:    cancel,
		active:    map[net.Conn]struct{}{},
		stopSweep: make(chan struct{}),
	}
}

// ErrServerClosed is returned by Listen after Shutdown.
var ErrServerClosed = errors.New("listener: server closed")

// Listen binds UDP and TCP on addr (host:port) and starts serving them:
// Workers UDP sockets sharing the port with SO_REUSEPORT, one TCP socket.
// With port 0 all get the same kernel-chosen port. The error wraps the
// socket error (errors.Is works with syscall.EACCES, EADDRINUSE, ...).
// Bind specific addresses: a UDP socket on a wildcard address answers
// from whichever address the kernel routes by, which on a multi-homed
// host may not be the one the client asked.
func (s *Server) Listen(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen on %q: %w", addr, err)
	}
	for attempt := 0; ; attempt++ {
		pcs, ln, err := listenGroup(ctx, host, port, s.cfg.Workers)
		if err != nil && port == "0" && attempt < 5 && errors.Is(err, errTCPPortTaken) {
			continue
		}
		if err != nil {
			return err
		}
		return s.start(pcs, ln)
	}
}

var errTCPPortTaken = errors.New("tcp port taken")

// listenGroup opens the first UDP socket, then TCP on the port UDP got,
// then the other UDP sockets on that port. TCP has no SO_REUSEPORT, so a
// port the kernel handed out that another reuse-port socket of ours already
// holds fails here and is retried rather than shared.
func listenGroup(ctx context.Context, host, port string, workers int) ([]*net.UDPConn, net.Listener, error) {
	lc := net.ListenConfig{Control: reusePort}
	pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, nil, err
	}
	pcs := []*net.UDPConn{pc.(*net.UDPConn)}
	closeAll := func() {
		for _, c := range pcs {
			c.Close()
		}
	}
	got := strconv.Itoa(pcs[0].LocalAddr().(*net.UDPAddr).Port)
	var plain net.ListenConfig
	ln, err := plain.Listen(ctx, "tcp", net.JoinHostPort(host, got))
	if err != nil {
		closeAll()
		if port == "0" {
			return nil, nil, fmt.Errorf("%w: %w", errTCPPortTaken, err)
		}
		return nil, nil, err
	}
	for len(pcs) < workers {
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, got))
		if err != nil {
			closeAll()
			ln.Close()
			return nil, nil, fmt.Errorf("udp worker socket on %s: %w", net.JoinHostPort(host, got), err)
		}
		pcs = append(pcs, pc.(*net.UDPConn))
	}
	return pcs, ln, nil
}

func (s *Server) start(pcs []*net.UDPConn, ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		for _, pc := range pcs {
			pc.Close()
		}
		ln.Close()
		return ErrServerClosed
	}
	s.bound = append(s.bound, pcs[0])
	s.udp = append(s.udp, pcs...)
	s.tcp = append(s.tcp, ln)
	s.wg.Add(len(pcs) + 1)
	if !s.swept {
		s.swept = true
		s.wg.Add(1)
		go s.sweepMisses()
	}
	for _, pc := range pcs {
		go s.serveUDP(pc)
	}
	go s.serveTCP(ln)
	return nil
}

// Addrs returns the bound addresses, one per Listen call (UDP and TCP share
// each).
func (s *Server) Addrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(s.bound))
	for _, pc := range s.bound {
		out = append(out, pc.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	return out
}

// Workers is the number of UDP sockets, and read loops, per address.
func (s *Server) Workers() int { return s.cfg.Workers }

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops reading new queries, lets the queries in flight finish
// and write their answers, then closes every socket. If ctx ends first it
// cancels the Handler contexts, closes the connections, waits for the
// goroutines and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		close(s.stopSweep)
		s.misses.close()
	}
	s.closing = true
	past := time.Unix(1, 0)
	for _, pc := range s.udp {
		pc.SetReadDeadline(past)
	}
	for _, ln := range s.tcp {
		ln.Close()
	}
	for c := range s.active {
		c.SetReadDeadline(past)
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.cancel()
		s.closeActive()
		<-done
	}
	s.cancel()
	s.mu.Lock()
	for _, pc := range s.udp {
		pc.Close()
	}
	s.mu.Unlock()
	return err
}

func (s *Server) closeActive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.active {
		c.Close()
	}
}

// acquire takes a query slot without waiting.
func (s *Server) acquire() bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *Server) release() { <-s.slots }
