package resolver

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// Config holds the resolver's options. Start from DefaultConfig; every field
// documents its unit and default. Config files and replay scenarios set these
// same fields, so there is no test-only behaviour here, but for the one
// field named Unsafe, which no config key sets.
type Config struct {
	// RootHints are the root NS records and their addresses (named.root
	// format). Default: the IANA root servers.
	RootHints []dns.RR

	// QNameMinimisation sends each server only as much of the name as it
	// needs (RFC 9156, relaxed mode). Default on.
	QNameMinimisation bool

	// PrimeRoot asks the root servers for the current root NS set before
	// first use (RFC 8109) instead of trusting the hints as they are.
	// Default on; off matches Unbound's stub-prime: no.
	PrimeRoot bool

	// DoIPv4 and DoIPv6 allow upstream queries over each address family.
	// Default both on.
	DoIPv4, DoIPv6 bool

	// MaxTTL caps the TTL of cached positive data. Default 1 day.
	MaxTTL time.Duration
	// MinTTL raises short TTLs. Default 0.
	MinTTL time.Duration
	// MaxNegativeTTL caps negative caching (RFC 2308 §5). Default 1 hour.
	MaxNegativeTTL time.Duration

	// Limits bound the work of one client query.
	Limits Limits

	// QueryTimeout is the overall deadline of one client query. Default 8 s
	// (dig's default retry is at 5 s; a SERVFAIL within 10 s is required by
	// the threat model's OFF-8).
	QueryTimeout time.Duration

	// AllowSnoop answers RD=0 queries from the cache; otherwise they are
	// REFUSED, as Unbound's default access-control "allow" does. Default off.
	AllowSnoop bool

	// HardenUnverifiedGlue ignores glue for NS names outside the delegated
	// zone (sibling glue, RFC 9471) and looks those names up instead, so a
	// parent cannot vouch for addresses in a zone it does not serve.
	// Default off, as in Unbound (harden-unverified-glue): it costs a
	// query per sibling name.
	HardenUnverifiedGlue bool

	// MinimalResponses leaves out authority and additional records that the
	// client did not need (Unbound's minimal-responses). Default on.
	MinimalResponses bool

	// NSAnswerAddresses keeps, with minimal responses on, the addresses of
	// the servers an NS answer names in its additional section, as
	// Unbound's minimal responses do (Knot Resolver's leave them out).
	// Default off: a client that wants them asks for them.
	NSAnswerAddresses bool

	// ForwardZones send every query at or below a zone to that zone's
	// forwarders with RD=1 instead of iterating (Unbound's forward-zone).
	// The deepest zone enclosing the name wins; "." forwards everything.
	// Default none.
	ForwardZones []ForwardZone

	// ZonePressure re-validates a zone's delegation over TCP when the
	// exchanges with its servers draw many unwanted replies (see
	// pressure.go).
	ZonePressure ZonePressure

	// UnsafeForwardUnscrubbed takes forwarded replies as they come, whole,
	// as resolvers before the BIND CVE-2021-25220 fix did: whatever a
	// forwarder says about any name is cached. It exists only so that the
	// attack suite can show its MaginotDNS test has teeth (BAIL-4); it makes
	// the resolver poisonable, and no config key sets it.
	UnsafeForwardUnscrubbed bool
}

// ForwardZone is one forward-zone: the zone and the recursive servers
// that answer for everything in it.
type ForwardZone struct {
	// Zone is fully qualified; any case.
	Zone string
	// Addrs are the forwarders, port 53 unless another is given.
	Addrs []netip.AddrPort
}

// ZonePressure is the per-zone half of the spoofing-pressure defense; the
// per-server half (asking a server over TCP) is the transport's.
type ZonePressure struct {
	// Threshold is how many unwanted replies (wrong ID, question or
	// cookie) the exchanges with one zone's servers may draw within
	// Window before the zone's cached delegation is fetched afresh from
	// the parent over TCP. 0 turns the check off. Default 10, as the
	// transport's per-server count (config key unwanted-reply-threshold;
	// Unbound's key of that name counts per thread, is off by default and
	// flushes the whole cache).
	Threshold int
	// Window is the fixed window the count runs in. Default 1 minute.
	Window time.Duration
	// Hold bounds how long a zone past the threshold refuses delegation
	// data from plain UDP while its re-validation has not succeeded.
	// Default 10 minutes (the transport's PressureTCPFor).
	Hold time.Duration
	// MaxZones bounds the zones counted at once; past it the zone counted
	// longest ago is forgotten. Default 10,000.
	MaxZones int
}

// Limits name the bound on every loop that follows the network. Hitting one
// ends the client query with SERVFAIL and a reason.
type Limits struct {
	// MaxReferrals bounds referrals followed for one name. Default 30.
	MaxReferrals int
	// MaxCNAMEs bounds the CNAME/DNAME chain of one answer. Default 11
	// (Unbound and BIND max-query-restarts).
	MaxCNAMEs int
	// MaxNSLookups bounds the NS names without glue resolved for one client
	// query (NXNSAttack). Default 10 (PowerDNS max-ns-address-qperq).
	MaxNSLookups int
	// MaxUpstreamQueries bounds every query sent upstream for one client
	// query, sub-queries included. Default 64: above PowerDNS and BIND (50)
	// so that deep cold chains with DNSSEC still resolve, well below
	// Unbound's 200 global quota.
	MaxUpstreamQueries int
	// MaxDepth bounds the nesting of sub-queries (an NS name's address needs
	// another NS name's address ...). Default 7 (BIND max-recursion-depth).
	MaxDepth int
	// MaxServersPerZone bounds the NS names considered for one zone
	// (RES-6), and the records an NS RRset keeps when a reply is scrubbed.
	// Default 20 (Unbound iter-scrub-ns).
	MaxServersPerZone int
	// MaxRevalidationTries bounds the parent's servers asked over TCP when
	// a zone's delegation is re-validated under spoofing pressure (see
	// pressure.go). Default 3.
	MaxRevalidationTries int
}

// DefaultConfig returns the configuration `bulwark` runs with when nothing
// is configured.
func DefaultConfig() Config {
	return Config{
		RootHints:         IANARootHints(),
		QNameMinimisation: true,
		PrimeRoot:         true,
		DoIPv4:            true,
		DoIPv6:            true,
		MaxTTL:            24 * time.Hour,
		MaxNegativeTTL:    time.Hour,
		QueryTimeout:      8 * time.Second,
		MinimalResponses:  true,
		Limits: Limits{
			MaxReferrals:       30,
			MaxCNAMEs:          11,
			MaxNSLookups:       10,
			MaxUpstreamQueries: 64,
			MaxDepth:           7,
			MaxServersPerZone:  20,

			MaxRevalidationTries: 3,
		},
		ZonePressure: ZonePressure{Threshold: 10, Window: time.Minute, Hold: 10 * time.Minute, MaxZones: 10000},
	}
}

// Validate reports the first option that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if !c.DoIPv4 && !c.DoIPv6 {
		errs = append(errs, errors.New("do-ip4 and do-ip6 are both off: no upstream can be reached"))
	}
	if len(rootServerAddrs(c.RootHints)) == 0 {
		errs = append(errs, errors.New("root hints hold no server address"))
	}
	if c.MaxTTL <= 0 || c.MaxNegativeTTL < 0 || c.MinTTL < 0 || c.MinTTL > c.MaxTTL {
		errs = append(errs, fmt.Errorf("TTL caps out of order: min %v, max %v, negative max %v", c.MinTTL, c.MaxTTL, c.MaxNegativeTTL))
	}
	if c.QueryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("query timeout %v must be positive", c.QueryTimeout))
	}
	errs = append(errs, c.validateForwardZones()...)
	l := c.Limits
	if l.MaxReferrals < 1 || l.MaxCNAMEs < 0 || l.MaxNSLookups < 0 || l.MaxUpstreamQueries < 1 || l.MaxDepth < 1 || l.MaxServersPerZone < 1 || l.MaxRevalidationTries < 1 {
		errs = append(errs, fmt.Errorf("limits must be positive: %+v", l))
	}
	if p := c.ZonePressure; p.Threshold < 0 || p.Threshold > 0 && (p.Window <= 0 || p.Hold <= 0 || p.MaxZones < 1) {
		errs = append(errs, fmt.Errorf("unwanted-reply threshold %d needs a positive window, hold and zone bound: %+v", p.Threshold, p))
	}
	return errors.Join(errs...)
}

// validateForwardZones reports zones that are not names, given twice, or
// without a forwarder reachable over an allowed address family.
func (c *Config) validateForwardZones() []error {
	var errs []error
	seen := map[string]bool{}
	for _, fz := range c.ForwardZones {
		zone := strings.ToLower(dns.Fqdn(fz.Zone))
		if _, ok := dns.IsDomainName(fz.Zone); !ok || fz.Zone == "" {
			errs = append(errs, fmt.Errorf("forward-zone %q is not a domain name", fz.Zone))
			continue
		}
		if seen[zone] {
			errs = append(errs, fmt.Errorf("forward-zone %s is given twice", zone))
		}
		seen[zone] = true
		usable := 0
		for _, a := range fz.Addrs {
			if !a.Addr().IsValid() {
				errs = append(errs, fmt.Errorf("forward-zone %s: forward-addr %v is not an address", zone, a))
				continue
			}
			if a.Addr().Unmap().Is4() && c.DoIPv4 || !a.Addr().Unmap().Is4() && c.DoIPv6 {
				usable++
			}
		}
		if usable == 0 {
			errs = append(errs, fmt.Errorf("forward-zone %s has no forward-addr usable with do-ip4 %v, do-ip6 %v", zone, c.DoIPv4, c.DoIPv6))
		}
	}
	return errs
}

// CacheConfig returns the cache settings that carry this configuration's
// TTL caps, for a cache of maxBytes (0: the cache's default).
func (c *Config) CacheConfig(maxBytes int64) cache.Config {
	return cache.Config{MaxBytes: maxBytes, MaxTTL: c.MaxTTL, MinTTL: c.MinTTL, MaxNegativeTTL: c.MaxNegativeTTL}
}
