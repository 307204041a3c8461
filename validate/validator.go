package validate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// Config tunes a Validator. The zero value of every field but Clock means
// the default documented on it.
type Config struct {
	// Clock gives the time signature windows and key-cache lifetimes run
	// on. Required: the package never reads the wall clock.
	Clock Clock
	// SignatureClock, when set, gives the time signature validity windows
	// are checked against instead of Clock, while cached keys keep aging on
	// Clock. Only the replay runner sets it, for Unbound's val-override-date,
	// which freezes signature time but not the cache.
	SignatureClock Clock
	// IgnoreSignatureDates skips the validity window check, as Unbound's
	// val-override-date: -1 does for its recorded test data. Only the
	// replay runner sets it.
	IgnoreSignatureDates bool

	// Anchors are the trust anchors, DS or DNSKEY records at any name.
	// Default: RootAnchors (KSK-2017 and KSK-2024).
	Anchors []dns.RR
	// NegativeAnchors are names at and under which every answer is
	// Insecure (RFC 7646), for zones known to be broken.
	NegativeAnchors []string

	// NSEC3MaxIterations is the highest NSEC3 iteration count accepted;
	// above it a denial is Insecure with EDE 27 (RFC 9276 §3.2). Default
	// 50, as Knot, PowerDNS and BIND since 2024: Unbound's 150 allows 3x
	// the SHA-1 work per hashed name for no deployed benefit.
	NSEC3MaxIterations int

	// MaxVerifyFailures caps the signature verifications per Validate
	// call, key-chain work included, that fail: KeyTrap (CVE-2023-50387)
	// makes a resolver pay for many keys that share a tag times many
	// RRSIGs, and every one of those tries but the last fails. Default 16
	// (BIND max-validations-per-fetch; PowerDNS max-signature-validations-
	// per-query 30): an honest reply fails at most one try per key
	// rollover or two.
	MaxVerifyFailures int
	// MaxVerifications caps all signature verifications per Validate call,
	// successful ones included. Validation stops at the first good RRSIG of
	// each RRset, so a success costs the sender one signed RRset in the
	// reply; the cap only bounds what a 64 KB answer can ask for. Default
	// 160: an ANY answer of 40 RRsets plus a cold chain with CNAMEs.
	MaxVerifications int
	// MaxKeysPerTag caps the DNSKEYs tried for one RRSIG key tag or DS.
	// Default 4: a legitimate collision of two tags is already rare.
	MaxKeysPerTag int
	// MaxSigsPerRRset caps the RRSIGs considered for one RRset. Default 8
	// (Unbound iter-scrub-rrsig).
	MaxSigsPerRRset int
	// MaxNSEC3Records caps the NSEC3 records one reply may carry; more is
	// Bogus. Default 8 (Knot, Unbound).
	MaxNSEC3Records int
	// MaxNSEC3Hashes caps the SHA-1 computations of NSEC3 hashing per
	// Validate call, each name costing iterations+1 (CVE-2023-50868).
	// Default 600 (PowerDNS max-nsec3-hash-computations-per-query).
	MaxNSEC3Hashes int

	// AggressiveNSEC lets Synthesize answer from remembered Secure NSEC
	// and NSEC3 records (RFC 8198). The zero value is off; the daemon
	// turns it on by default, as Unbound (aggressive-nsec: yes since
	// 1.16), Knot and BIND do. DS lookups use the remembered records
	// either way.
	AggressiveNSEC bool
	// DenialZones and DenialsPerZone bound the remembered denial records:
	// zones (least recently used dropped first) and records per zone
	// (soonest expiring dropped first). Defaults 256 and 128, about 13 MB
	// at most.
	DenialZones, DenialsPerZone int

	// KeyCacheSize bounds the zones whose key status is kept. Default 1024.
	KeyCacheSize int
	// BogusTTL is how long a zone whose keys failed stays Bogus before it
	// is tried again. Default 60 s (Unbound's bogus-ttl).
	BogusTTL time.Duration
	// MaxKeyTTL caps how long validated keys are trusted without a fresh
	// look. Default 1 day.
	MaxKeyTTL time.Duration

	// HardenAlgoDowngrade requires every supported algorithm that a
	// zone's DS set (or anchor) lists to sign its DNSKEY RRset and each of
	// its RRsets: Unbound's harden-algo-downgrade: yes. The zero value
	// accepts any one listed algorithm (RFC 6840 §5.11), so that
	// algorithm rollovers do not fail.
	HardenAlgoDowngrade bool

	// AllowStripped makes a zone whose DNSKEY RRset cannot be fetched
	// Insecure instead of Bogus: Unbound's harden-dnssec-stripped: no, for
	// networks whose middleboxes drop DNSKEY answers. The zero value keeps
	// the hardening (an attacker who can drop packets could otherwise turn
	// any signed zone Insecure).
	AllowStripped bool

	// FakeSHA1 and FakeDSA exist only for the replay runner, whose recorded
	// scenarios carry signatures that cannot verify today (as Unbound's
	// test build fakes them): they skip the signature crypto of RSASHA1
	// (5), RSASHA1-NSEC3-SHA1 (7) and DSA (3, 6) while still checking key
	// tag, signer and dates. DSA hashes with SHA-1, so either switch
	// covers it, as in Unbound's test build; without them DSA is
	// unsupported.
	FakeSHA1, FakeDSA bool
}

func (c *Config) setDefaults() {
	def := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	def(&c.NSEC3MaxIterations, 50)
	def(&c.MaxVerifyFailures, 16)
	def(&c.MaxVerifications, 160)
	def(&c.MaxKeysPerTag, 4)
	def(&c.MaxSigsPerRRset, 8)
	def(&c.MaxNSEC3Records, 8)
	def(&c.MaxNSEC3Hashes, 600)
	def(&c.KeyCacheSize, 1024)
	def(&c.DenialZones, 256)
	def(&c.DenialsPerZone, 128)
	if c.BogusTTL <= 0 {
		c.BogusTTL = time.Minute
	}
	if c.MaxKeyTTL <= 0 {
		c.MaxKeyTTL = 24 * time.Hour
	}
}

// Validator checks replies against the chain of trust. It is safe for
// concurrent use.
type Validator struct {
	cfg     Config
	anchors map[string][]dns.RR // by lower-case owner
	nta     []string
	keys    *lru.Cache[string, *keyEntry]
	flights keyFlights
	denials *denialStore
	// pending holds the unvalidated no-DS proofs of referrals
	// (KeepReferralProof), one per child zone.
	pending *lru.Cache[string, *pendingProof]
	stats   counters
}

// New checks cfg and returns a Validator.
func New(cfg Config) (*Validator, error) {
	if cfg.Clock == nil {
		return nil, errors.New("validate: no clock")
	}
	cfg.setDefaults()
	if cfg.Anchors == nil {
		cfg.Anchors = RootAnchors()
	}
	v := &Validator{cfg: cfg, anchors: map[string][]dns.RR{}}
	for _, rr := range cfg.Anchors {
		switch rr.(type) {
		case *dns.DS, *dns.DNSKEY:
		default:
			return nil, fmt.Errorf("validate: trust anchor %q is not DS or DNSKEY", rr.String())
		}
		name := canonical(rr.Header().Name)
		v.anchors[name] = append(v.anchors[name], rr)
	}
	for _, n := range cfg.NegativeAnchors {
		v.nta = append(v.nta, canonical(n))
	}
	keys, err := lru.New[string, *keyEntry](cfg.KeyCacheSize)
	if err != nil {
		return nil, fmt.Errorf("validate: key cache: %w", err)
	}
	v.keys = keys
	if v.pending, err = lru.New[string, *pendingProof](cfg.KeyCacheSize); err != nil {
		return nil, fmt.Errorf("validate: referral proofs: %w", err)
	}
	v.denials = newDenialStore(cfg.DenialZones, cfg.DenialsPerZone)
	return v, nil
}

// Validate returns the security status of r. The TTLs of the RRsets it
// proves Secure are lowered in place, in r.Msg, to the RRSIG original TTL
// and to the time left before the signature expires (RFC 4035 §5.3.3), so
// the cache never keeps them past their proof.
//
// The status covers the answer section and the denial records (SOA, NSEC,
// NSEC3) of the authority section; a referral's NS and glue are never
// signed and are not covered. An NXDOMAIN whose own NSEC or NSEC3 proves
// the name exists (an empty non-terminal) is validated as the NODATA it
// proves and its rcode set to NOERROR in r.Msg, as Unbound does: callers
// that classified the reply before must look at the rcode again.
//
// Secure NSEC, NSEC3 and negative-answer SOA records are remembered for
// DS lookups and Synthesize.
func (v *Validator) Validate(ctx context.Context, f Fetcher, r Reply) Result {
	w := &work{cfg: &v.cfg}
	o := v.validateReply(ctx, f, r, w)
	v.stats.record(w, o.sec)
	return Result{Security: o.sec, EDE: o.ede, Reason: o.reason,
		Verifications: w.verifications, NSEC3Hashes: w.hashes}
}

// negativeAnchored reports whether name is at or under a negative trust
// anchor.
func (v *Validator) negativeAnchored(name string) bool {
	for _, n := range v.nta {
		if isSubDomain(n, name) {
			return true
		}
	}
	return false
}

// closestAnchor returns the deepest trust anchor at or above name.
// ClosestAnchor returns the deepest trust anchor at or above name: a zone
// apex whose data must validate. The resolver uses it to name the zone of
// a forwarded reply that names none itself.
func (v *Validator) ClosestAnchor(name string) (string, bool) {
	return v.closestAnchor(canonical(name))
}

func (v *Validator) closestAnchor(name string) (string, bool) {
	for n := name; ; {
		if _, ok := v.anchors[n]; ok {
			return n, true
		}
		if n == "." {
			return "", false
		}
		n = parentName(n)
	}
}

func (v *Validator) now() time.Time { return v.cfg.Clock.Now() }

// sigNow is the time signature validity windows are checked against.
func (v *Validator) sigNow() time.Time {
	if v.cfg.SignatureClock != nil {
		return v.cfg.SignatureClock.Now()
	}
	return v.now()
}

// canonical lower-cases and fully qualifies a name.
func canonical(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// parentName strips the leftmost label; the root is its own parent.
func parentName(name string) string {
	if off, end := dns.NextLabel(name, 0); !end {
		return name[off:]
	}
	return "."
}

// Stats are cumulative counters of a Validator's work.
type Stats struct {
	Validations   uint64 // Validate calls
	Secure        uint64
	Insecure      uint64 // Insecure and Indeterminate
	Bogus         uint64
	Verifications uint64 // signature verifications (crypto) attempted
	NSEC3Hashes   uint64 // SHA-1 computations of NSEC3 hashing
	CapHits       uint64 // Validate calls ended by a work cap
}

type counters struct {
	validations, secure, insecure, bogus, verifications, hashes, capHits atomic.Uint64
}

func (c *counters) record(w *work, s cache.Security) {
	c.validations.Add(1)
	switch s {
	case cache.Secure:
		c.secure.Add(1)
	case cache.Bogus:
		c.bogus.Add(1)
	default:
		c.insecure.Add(1)
	}
	c.verifications.Add(uint64(w.verifications))
	c.hashes.Add(uint64(w.hashes))
	if w.capHit {
		c.capHits.Add(1)
	}
}

// Stats returns a snapshot of the counters.
func (v *Validator) Stats() Stats {
	c := &v.stats
	return Stats{
		Validations: c.validations.Load(), Secure: c.secure.Load(),
		Insecure: c.insecure.Load(), Bogus: c.bogus.Load(),
		Verifications: c.verifications.Load(), NSEC3Hashes: c.hashes.Load(),
		CapHits: c.capHits.Load(),
	}
}
