// Package cache owns Bulwark's record cache: RRsets and negative answers
// keyed by (name, type, class), each with its RFC 2181 rank and DNSSEC
// status, in N shards with an LRU inside each, bounded in bytes, with TTLs
// counted down from the time the caller passes in.
//
// A shard is a golang-lru simplelru LRU (shard.go) behind the shard's own
// mutex, chosen by a per-Cache seeded hash of the key so that an attacker
// who picks names cannot pile them onto one shard. Entries are immutable
// once stored: Put stores a deep copy, Get hands out a deep copy whose
// TTLs are the seconds left, so neither side can reach into the other's
// records; Read lends the stored records to a callback that must neither
// modify nor keep them.
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
	"sync/atomic"
	"time"
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
	shards shardSet[item]
	// stored has a bit for each record type below 256 that some Put has
	// offered since New (see MayHold).
	stored [4]atomic.Uint64
}

// New returns an empty Cache sized by cfg.
func New(cfg Config) *Cache {
	cfg = cfg.withDefaults()
	c := &Cache{
		cfg:    cfg,
		seed:   maphash.MakeSeed(),
		mask:   uint64(cfg.Shards - 1),
		shards: newShardSet[item](cfg.Shards, cfg.MaxBytes),
	}
	return c
}

// hash is k's seeded 64-bit hash: its shard and its map key. The item
// keeps the whole key, which Get compares, so a collision is a miss.
func (c *Cache) hash(k Key) uint64 {
	h := maphash.String(c.seed, k.Name)
	return h ^ (uint64(k.Side)<<32|uint64(k.Type)<<16|uint64(k.Class))*0x9e3779b97f4a7c15
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
	return it.entry(ttl), true
}

// Read calls f with the live entry under k and the TTL Get would give its
// records, and reports whether there was one. The entry's slices and
// records are the cache's own, never modified once stored: f must neither
// modify nor keep them, and the records carry their TTLs as stored. It
// spares a caller that only reads the copies Get makes (issue #6). The
// entry is passed by value: a pointer to it would escape through f and
// cost an allocation per call.
func (c *Cache) Read(k Key, now time.Time, f func(e Entry, ttl uint32)) bool {
	it, ttl, ok := c.live(k, now)
	if ok {
		f(it.view(), ttl)
	}
	return ok
}

// live returns the live item under k, dropping it when it has expired, and
// the whole seconds left before it expires, rounded down; an entry living
// on its Grace has 0 throughout.
func (c *Cache) live(k Key, now time.Time) (item, uint32, bool) {
	h := c.hash(k)
	s := &c.shards[h&c.mask]
	s.mu.Lock()
	it, ok := s.lru.Get(h)
	if ok && now.UnixNano() >= it.expires {
		s.lru.Remove(h)
		ok = false
	}
	s.mu.Unlock()
	if !ok || it.key() != k {
		return item{}, 0, false
	}
	if it.extra != nil && it.extra.grace > 0 {
		return it, 0, true // the owner asked for TTL 0; the grace is ours
	}
	return it, uint32((it.expires - now.UnixNano()) / int64(time.Second)), true
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
	if len(e.RRs)+len(e.Sigs)+len(e.Ns) > math.MaxUint16 {
		return false
	}
	if minTTL(maxWireTTL, e.RRs, e.Sigs) != 0 || len(e.RRs) == 0 {
		e.Grace = 0 // only a TTL-0 entry lives on grace
	}
	it := newItem(k, &e, now.Add(life).UnixNano())
	h := c.hash(k)
	s := &c.shards[h&c.mask]
	cost := it.cost()
	if cost > s.budget {
		return false
	}

	if k.Type < 256 {
		if w, bit := &c.stored[k.Type/64], uint64(1)<<(k.Type%64); w.Load()&bit == 0 {
			w.Or(bit)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.lru.Peek(h); ok && old.key() == k && !replaces(&old, &it, now) {
		return false
	}
	s.addLocked(h, it, cost)
	return true
}

// replaces reports whether next may overwrite old. Expired data is always
// replaceable. Otherwise rank decides (RFC 2181 §5.4.1: equal or higher
// replaces), and at equal rank live Secure data is only replaced by Secure
// data: a forged or broken reply, which validates as Bogus or arrives
// unsigned, must not push out an answer whose signatures checked.
func replaces(old, next *item, now time.Time) bool {
	if now.UnixNano() >= old.expires {
		return true
	}
	if next.rank != old.rank {
		return next.rank > old.rank
	}
	return old.security != Secure || next.security == Secure
}

// MayHold reports whether an entry of record type t may be held: false
// only when no entry of type t below 256 was ever offered to Put. A
// caller that looks up a type most resolvers never cache, as a DNAME at
// each ancestor of every cold name, may skip the lookups (issue #6).
func (c *Cache) MayHold(t uint16) bool {
	return t >= 256 || c.stored[t/64].Load()&(1<<(t%64)) != 0
}

// Delete removes the entry under k, if any.
func (c *Cache) Delete(k Key) {
	h := c.hash(k)
	s := &c.shards[h&c.mask]
	s.mu.Lock()
	if it, ok := s.lru.Peek(h); ok && it.key() == k {
		s.lru.Remove(h)
	}
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
