// Package resolver owns recursive resolution: the iterator that walks from
// the root down referrals to an answer, the scrubber through which every
// upstream reply must pass before any of it is cached or followed, server
// selection and the infra cache, and the shaping of the client's answer.
//
// It never opens a socket (upstream bytes go through transport.Exchanger)
// and never reads the wall clock (TTLs run on the injected Clock). The
// client-facing sockets live in resolver/listener, DNSSEC in validate, the
// record cache in cache.
package resolver

import (
	"errors"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver/transport"
	"github.com/bulwark-dns/bulwark/validate"
)

// Clock tells the resolver the time for TTLs and the infra cache.
type Clock interface{ Now() time.Time }

// Deps are the resolver's collaborators; tests swap each of them.
type Deps struct {
	// Exchanger asks upstream servers. Required.
	Exchanger transport.Exchanger
	// Clock tells the time for TTLs and server memory. Required: the daemon
	// passes the wall clock, tests and the replay runner a virtual one.
	Clock Clock
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Cache defaults to a new cache with default settings.
	Cache *cache.Cache
	// Validator is nil when validation is off.
	Validator *validate.Validator
	// QueryLog logs one line per client query (the -query-log flag).
	QueryLog bool
}

// Resolver answers client queries by iterating from the root. It is safe
// for concurrent use.
type Resolver struct {
	cfg       Config
	deps      Deps
	log       *zap.Logger
	clock     Clock
	cache     *cache.Cache
	infra     *infraCache
	roots     []dns.RR
	group     flightGroup[flightKey, *result]
	exchanges flightGroup[exchangeKey, *transport.Response]
	// discoveries shares a minimised question and the handling of its
	// reply (sendMinimised).
	discoveries flightGroup[exchangeKey, struct{}]
	failures    *failureCache
	fwd         forwarders
	pressure    *zonePressure
}

// New checks cfg and returns a Resolver.
func New(cfg Config, deps Deps) (*Resolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Exchanger == nil {
		return nil, errors.New("resolver: no upstream exchanger")
	}
	if deps.Clock == nil {
		return nil, errors.New("resolver: no clock")
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Cache == nil {
		deps.Cache = cache.New(cfg.CacheConfig(0))
	}
	return &Resolver{
		cfg:      cfg,
		deps:     deps,
		log:      deps.Logger,
		clock:    deps.Clock,
		cache:    deps.Cache,
		infra:    newInfraCache(deps.Clock),
		failures: newFailureCache(),
		roots:    cfg.RootHints,
		fwd:      newForwarders(cfg.ForwardZones),
		pressure: newZonePressure(cfg.ZonePressure),
	}, nil
}
