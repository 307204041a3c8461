// Package cache owns Bulwark's record cache: RRsets and negative answers
// keyed by (name, type, class), each with its RFC 2181 rank and DNSSEC
// status, in N shards with an LRU inside each, bounded in bytes, with TTLs
// counted down from the time the caller passes in.
//
// A shard is a simplelru.LRU behind the shard's own mutex, chosen by a
// per-Cache seeded hash of the key so that an attacker who picks names
// cannot pile them onto one shard. Entries are immutable once stored: Put
// stores a deep copy, Get hands out a deep copy whose TTLs are the seconds
// left, so neither side can reach into the other's records.
//
// It must not read the wall clock, start goroutines or know anything of
// resolution or validation: callers decide what is worth caching and at
// what rank; the cache only enforces that lower-ranked data never displaces
// live higher-ranked data (RFC 2181 §5.4.1).
package cache

import (
	"hash/maphash"
	"math"
	"math/bits"
	"time"

	"github.com/miekg/dns"
)

// Defaults for the zero Config.
const (
	defaultShards         = 64
	defaultMaxBytes       = 64 << 20
	defaultMaxTTL         = 24 * time.Hour
	defaultMaxNegativeTTL = time.Hour
	// defaultBogusTTL keeps a failed validation long enough that a storm of
	// clients asking for a broken name does not re-run it for each of them,
	// short enough that a fixed zone recovers within a minute (Unbound's
	// val-bogus-ttl is also 60 s).
	defaultBogusTTL = 60 * time.Second
	// minShardBytes stops a small MaxBytes from being cut into shards too
	// small to hold a large RRset: shards are halved until each gets this.
	minShardBytes = 16 << 10
	// maxShards is far beyond any useful lock spread; it only keeps the
	// rounding to a power of two from overflowing.
	maxShards = 1 << 16
	// maxWireTTL is the largest TTL RFC 2181 §8 allows; larger values are
	// read as zero.
	maxWireTTL = math.MaxInt32
)

// Config sizes a Cache. The zero value of each field means its default.
type Config struct {
	// Shards is the number of independently locked LRUs; rounded up to a
	// power of two, then halved while a shard would get less than 16 KiB.
	// Default 64.
	Shards int
	// MaxBytes bounds the cache's memory by the estimate in size.go, split
	// evenly over the shards. Default 64 MiB.
	MaxBytes int64
	// MaxTTL caps the lifetime of positive entries. Default 24 h.
	MaxTTL time.Duration
	// MinTTL raises short positive TTLs (not zero ones, not negative
	// entries). Default 0.
	MinTTL time.Duration
	// MaxNegativeTTL caps negative entries (RFC 2308 §5). Default 1 h.
	MaxNegativeTTL time.Duration
	// BogusTTL is the lifetime of Security==Bogus entries, further capped by
	// the data's own TTL. Default 60 s.
	BogusTTL time.Duration
}

func (cfg Config) withDefaults() Config {
	if cfg.Shards <= 0 {
		cfg.Shards = defaultShards
	}
	cfg.Shards = min(cfg.Shards, maxShards)
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = defaultMaxBytes
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = defaultMaxTTL
	}
	cfg.MaxTTL = min(cfg.MaxTTL, maxWireTTL*time.Second)
	cfg.MinTTL = max(cfg.MinTTL, 0)
	if cfg.MaxNegativeTTL <= 0 {
		cfg.MaxNegativeTTL = defaultMaxNegativeTTL
	}
	if cfg.BogusTTL <= 0 {
		cfg.BogusTTL = defaultBogusTTL
	}
	cfg.Shards = 1 << bits.Len(uint(cfg.Shards-1))
	for cfg.Shards > 1 && cfg.MaxBytes/int64(cfg.Shards) < minShardBytes {
		cfg.Shards /= 2
	}
	return cfg
}

// Cache is the sharded record cache. It is safe for concurrent use.
type Cache struct {
	cfg    Config // defaults applied; read-only after New
	seed   maphash.Seed
	mask   uint64
	shards shardSet[Key, *item]
}

// item is what a shard stores. It is never modified after Put inserts it,
// which is why Get may copy it after releasing the shard's lock.
type item struct {
	e    Entry
	size int64 // entrySize at insertion
}

// New returns an empty Cache sized by cfg.
func New(cfg Config) *Cache {
	cfg = cfg.withDefaults()
	c := &Cache{
		cfg:    cfg,
		seed:   maphash.MakeSeed(),
		mask:   uint64(cfg.Shards - 1),
		shards: newShardSet[Key](cfg.Shards, cfg.MaxBytes, func(it *item) int64 { return it.size }),
	}
	return c
}

func (c *Cache) shard(k Key) *shard[Key, *item] {
	h := maphash.String(c.seed, k.Name)
	h ^= (uint64(k.Side)<<32 | uint64(k.Type)<<16 | uint64(k.Class)) * 0x9e3779b97f4a7c15
	return &c.shards[h&c.mask]
}

// Get returns the live entry under k. Its RRs, Sigs and Ns are fresh copies
// whose TTL is the whole seconds left before Expires, rounded down, so a
// record in its last second carries TTL 0; at Expires the entry is gone.
// An entry living on its Grace carries TTL 0 throughout.
// RRSIG Original TTL fields are left as signed.
func (c *Cache) Get(k Key, now time.Time) (Entry, bool) {
	it, ttl, ok := c.live(k, now)
	if !ok {
		return Entry{}, false
	}
	return cloneEntry(&it.e, ttl, true), true
}

// Read calls f with the live entry under k and the TTL Get would give its
// records, and reports whether there was one. The entry is the cache's
// own, never modified once stored: f must neither modify it nor keep it,
// its slices or its records, and its records carry their TTLs as stored.
// It spares a caller that only reads the copies Get makes (issue #6).
func (c *Cache) Read(k Key, now time.Time, f func(e *Entry, ttl uint32)) bool {
	it, ttl, ok := c.live(k, now)
	if ok {
		f(&it.e, ttl)
	}
	return ok
}

// live returns the live item under k, dropping it when it has expired, and
// the whole seconds left before it expires, rounded down; an entry living
// on its Grace has 0 throughout.
func (c *Cache) live(k Key, now time.Time) (*item, uint32, bool) {
	s := c.shard(k)
	s.mu.Lock()
	it, ok := s.lru.Get(k)
	if ok && !now.Before(it.e.Expires) {
		s.lru.Remove(k)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return nil, 0, false
	}
	if it.e.Grace > 0 {
		return it, 0, true // the owner asked for TTL 0; the grace is ours
	}
	return it, uint32(it.e.Expires.Sub(now) / time.Second), true
}

// Put stores a copy of e under k and returns true, unless it refuses:
// the data's lifetime (see Lifetime) is zero, the entry alone exceeds a
// shard's byte budget, or a live entry under k outranks it (see replaces).
// The stored copy's Expires is now plus the lifetime; e.Expires is ignored.
// Least recently used entries of the shard are evicted to make room.
func (c *Cache) Put(k Key, e Entry, now time.Time) bool {
	life := c.Lifetime(&e, now)
	if life <= 0 {
		return false
	}
	size := entrySize(k, &e)
	s := c.shard(k)
	if size > s.budget {
		return false
	}
	it := &item{e: cloneEntry(&e, 0, false), size: size}
	it.e.Expires = now.Add(life)
	if minTTL(maxWireTTL, e.RRs, e.Sigs) != 0 || len(e.RRs) == 0 {
		it.e.Grace = 0 // only a TTL-0 entry lives on grace
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.lru.Peek(k); ok {
		if !replaces(&old.e, &it.e, now) {
			return false
		}
	}
	s.addLocked(k, it, size)
	return true
}

// replaces reports whether next may overwrite old. Expired data is always
// replaceable. Otherwise rank decides (RFC 2181 §5.4.1: equal or higher
// replaces), and at equal rank live Secure data is only replaced by Secure
// data: a forged or broken reply, which validates as Bogus or arrives
// unsigned, must not push out an answer whose signatures checked.
func replaces(old, next *Entry, now time.Time) bool {
	if !now.Before(old.Expires) {
		return true
	}
	if next.Rank != old.Rank {
		return next.Rank > old.Rank
	}
	return old.Security != Secure || next.Security == Secure
}

// Delete removes the entry under k, if any.
func (c *Cache) Delete(k Key) {
	s := c.shard(k)
	s.mu.Lock()
	s.lru.Remove(k)
	s.mu.Unlock()
}

// Len returns the number of entries held, counting expired ones that no Get
// or eviction has removed yet.
func (c *Cache) Len() int { return c.shards.len() }

// Bytes returns the estimated memory held by the entries (see size.go); it
// never exceeds Config.MaxBytes.
func (c *Cache) Bytes() int64 { return c.shards.bytes() }

// Flush removes every entry.
func (c *Cache) Flush() { c.shards.flush() }

// cloneEntry deep-copies e. With setTTL, every record's TTL becomes ttl.
// The three record slices share one backing array, capped so that a
// caller's append to one cannot overwrite another.
func cloneEntry(e *Entry, ttl uint32, setTTL bool) Entry {
	out := *e
	n1, n2 := len(e.RRs), len(e.RRs)+len(e.Sigs)
	all := make([]dns.RR, n2+len(e.Ns))
	out.RRs = copyRRs(all[0:n1:n1], e.RRs, ttl, setTTL)
	out.Sigs = copyRRs(all[n1:n2:n2], e.Sigs, ttl, setTTL)
	out.Ns = copyRRs(all[n2:], e.Ns, ttl, setTTL)
	return out
}

func copyRRs(dst, src []dns.RR, ttl uint32, setTTL bool) []dns.RR {
	if src == nil {
		return nil
	}
	for i, rr := range src {
		dst[i] = dns.Copy(rr)
		if setTTL {
			dst[i].Header().Ttl = ttl
		}
	}
	return dst
}
