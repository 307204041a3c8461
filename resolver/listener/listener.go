// Package listener owns the client-facing side of Bulwark: the UDP and TCP
// sockets that clients query, the access list, the checks every client
// message passes before the resolver sees it, and the fitting of the reply
// to the client's transport (EDNS buffer size, truncation).
//
// It must not resolve, cache or validate anything, and never talks to
// upstream servers: a well-formed query from an allowed client goes to the
// Handler, and the Handler's reply is only fitted to the transport. It reads
// the wall clock for socket deadlines only.
package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// Handler answers one client query that passed the listener's checks. The
// resolver satisfies it. A nil reply is sent as SERVFAIL.
type Handler interface {
	Answer(ctx context.Context, req *dns.Msg) *dns.Msg
}

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
}

// Defaults of Config.
const (
	DefaultMaxInFlight    = 1000
	DefaultMaxTCPConns    = 256
	DefaultTCPIdleTimeout = 10 * time.Second
	DefaultQueryTimeout   = 10 * time.Second
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
	conns  chan struct{} // one token per open TCP connection
	stats  counters

	// base is the parent of every Handler context; cancelled when Shutdown
	// stops waiting.
	base   context.Context
	cancel context.CancelFunc

	// wg counts read loops, accept loops, connections and queries. Every
	// Add happens in Listen before closing or in a goroutine wg counts.
	wg sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	closing bool
	udp     []*net.UDPConn
	tcp     []net.Listener
	active  map[net.Conn]struct{}
}

// New returns a Server that answers through h once Listen is called.
func New(cfg Config, h Handler) *Server {
	cfg = cfg.withDefaults()
	base, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:    cfg,
		h:      h,
		log:    cfg.Logger,
		access: newAccessList(cfg.Access),
		slots:  make(chan struct{}, cfg.MaxInFlight),
		conns:  make(chan struct{}, cfg.MaxTCPConns),
		base:   base,
		cancel: cancel,
		active: map[net.Conn]struct{}{},
	}
}

// ErrServerClosed is returned by Listen after Shutdown.
var ErrServerClosed = errors.New("listener: server closed")

// Listen binds UDP and TCP on addr (host:port) and starts serving them.
// With port 0 both get the same kernel-chosen port. The error wraps the
// socket error (errors.Is works with syscall.EACCES, EADDRINUSE, ...).
// Bind specific addresses: a UDP socket on a wildcard address answers
// from whichever address the kernel routes by, which on a multi-homed
// host may not be the one the client asked.
func (s *Server) Listen(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen on %q: %w", addr, err)
	}
	var lc net.ListenConfig
	for attempt := 0; ; attempt++ {
		pc, ln, err := listenPair(ctx, &lc, host, port)
		if err != nil && port == "0" && attempt < 5 && errors.Is(err, errTCPPortTaken) {
			continue
		}
		if err != nil {
			return err
		}
		return s.start(pc, ln)
	}
}

var errTCPPortTaken = errors.New("tcp port taken")

// listenPair opens the UDP socket, then TCP on the port UDP got.
func listenPair(ctx context.Context, lc *net.ListenConfig, host, port string) (*net.UDPConn, net.Listener, error) {
	pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, nil, err
	}
	udp := pc.(*net.UDPConn)
	got := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, got))
	if err != nil {
		udp.Close()
		if port == "0" {
			return nil, nil, fmt.Errorf("%w: %w", errTCPPortTaken, err)
		}
		return nil, nil, err
	}
	return udp, ln, nil
}

func (s *Server) start(pc *net.UDPConn, ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		pc.Close()
		ln.Close()
		return ErrServerClosed
	}
	s.udp = append(s.udp, pc)
	s.tcp = append(s.tcp, ln)
	s.wg.Add(2)
	go s.serveUDP(pc)
	go s.serveTCP(ln)
	return nil
}

// Addrs returns the bound addresses, one per Listen call (UDP and TCP share
// each).
func (s *Server) Addrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(s.udp))
	for _, pc := range s.udp {
		out = append(out, pc.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	return out
}

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
