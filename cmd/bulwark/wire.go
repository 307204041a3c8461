package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver"
	"github.com/bulwark-dns/bulwark/resolver/transport"
	"github.com/bulwark-dns/bulwark/validate"
)

// wallClock is the real time, which only the daemon reads; the packages
// take it as a Clock. It reads the system's wall clock once per
// wallResync and between two such reads adds the monotonic clock's
// progress: time.Now reads both, and on this kind of guest each read of
// the paravirtual clock is dear (time.Now took about 2% of a cold name's
// CPU; docs/performance.md, Twelfth round). A step of the system clock
// shows at the next read of it: TTLs and signature validity count in
// seconds.
type wallClock struct {
	base atomic.Pointer[time.Time] // the last read of the wall clock, with its monotonic reading
}

// wallResync is how often wallClock reads the wall clock.
const wallResync = 100 * time.Millisecond

func (c *wallClock) Now() time.Time {
	if b := c.base.Load(); b != nil {
		// time.Since reads only the monotonic clock, b carrying its own.
		if d := time.Since(*b); d < wallResync {
			return b.Add(d)
		}
	}
	now := time.Now()
	c.base.Store(&now)
	return now
}

// newUpstream is the one place that chooses how Bulwark reaches
// authoritative servers: the defended Exchanger over real sockets that
// never use a port we serve clients on as their source.
func newUpstream(s *settings, log *zap.Logger, clock *wallClock) *transport.Client {
	var avoid []uint16
	for _, a := range s.listen {
		if _, p, err := splitPort(a); err == nil {
			avoid = append(avoid, p)
		}
	}
	nw := transport.NewSocketNetwork(transport.SocketConfig{AvoidPorts: avoid, IOURing: s.ioURing})
	return transport.NewExchanger(nw, transport.Config{Clock: clock}, log.Named("upstream"))
}

// newValidator returns nil when validation is off.
func newValidator(s *settings, log *zap.Logger, clock *wallClock) (*validate.Validator, error) {
	if !s.validate {
		log.Warn("DNSSEC validation is off (-validate=false): answers are not checked against the chain of trust")
		if s.trustAnchor != "" {
			log.Warn("trust anchor ignored while validation is off", zap.String("trust-anchor", s.trustAnchor))
		}
		return nil, nil
	}
	var anchors []dns.RR
	if s.trustAnchor != "" {
		f, err := os.Open(s.trustAnchor)
		if err != nil {
			return nil, fmt.Errorf("trust anchor: %w", err)
		}
		defer f.Close()
		if anchors, err = validate.ParseAnchors(f, s.trustAnchor); err != nil {
			return nil, err
		}
	}
	// RFC 8198 aggressive negative caching is on by default, as in Unbound
	// and Knot Resolver: validated NSEC/NSEC3 answer later questions they
	// cover.
	return validate.New(validate.Config{Clock: clock, Anchors: anchors,
		AggressiveNSEC: s.aggressiveNSEC, NegativeAnchors: s.insecure})
}

// loadRootHints reads -root-hints or takes the built-in hints.
func loadRootHints(s *settings) error {
	if s.rootHints == "" {
		return nil
	}
	f, err := os.Open(s.rootHints)
	if err != nil {
		return fmt.Errorf("root hints: %w", err)
	}
	defer f.Close()
	hints, err := resolver.ParseRootHints(f, s.rootHints)
	if err != nil {
		return err
	}
	s.resolver.RootHints = hints
	return nil
}

// wired is the resolver and the collaborators whose counters the daemon
// logs at shutdown.
type wired struct {
	res *resolver.Resolver
	up  *transport.Client
	val *validate.Validator // nil when validation is off
}

// stats are the counters logged at shutdown.
func (w wired) stats() []zap.Field {
	f := []zap.Field{zap.Any("upstream", w.up.Stats()), zap.Any("resolver", w.res.Stats())}
	if w.val != nil {
		f = append(f, zap.Any("validator", w.val.Stats()))
	}
	return f
}

// newResolver wires the resolver to its collaborators, which all read the
// time from clock.
func newResolver(s *settings, log *zap.Logger, clock *wallClock) (wired, error) {
	if err := loadRootHints(s); err != nil {
		return wired{}, err
	}
	v, err := newValidator(s, log, clock)
	if err != nil {
		return wired{}, err
	}
	records, _ := s.cacheSizes()
	up := newUpstream(s, log, clock)
	res, err := resolver.New(s.resolver, resolver.Deps{
		Exchanger: up,
		Clock:     clock,
		Logger:    log.Named("resolver"),
		Cache:     cache.New(s.resolver.CacheConfig(records)),
		Validator: v,
		QueryLog:  s.queryLog,
	})
	return wired{res: res, up: up, val: v}, err
}

func parseLevel(v string) (zapcore.Level, error) {
	switch v {
	case "debug", "info", "warn", "error":
		return zapcore.ParseLevel(v)
	}
	return 0, fmt.Errorf("log level %q is not debug, info, warn or error", v)
}

// newLogger logs to w with zap's console encoder: a person starting
// `bulwark` in a terminal reads it, and the journal adds its own fields.
func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core), nil
}

func splitPort(addr string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	return host, uint16(p), err
}
