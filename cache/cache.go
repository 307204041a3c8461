// Package cache owns Bulwark's record cache: RRsets and negative answers
// keyed by (name, type, class), each with its RFC 2181 rank and DNSSEC
// status, in N shards with an LRU inside each, TTLs counted down from the
// time the caller passes in.
//
// It must not read the wall clock, start goroutines or know anything of
// resolution or validation: callers decide what is worth caching.
package cache

import "time"

// Config sizes a Cache. The zero value means the defaults.
type Config struct{}

// Cache is the sharded record cache. It is safe for concurrent use.
type Cache struct{}

// New returns an empty Cache.
func New(cfg Config) *Cache { return &Cache{} }

// Get returns the live entry under k with TTLs counted down to now.
func (c *Cache) Get(k Key, now time.Time) (Entry, bool) { return Entry{}, false }

// Put stores e under k unless a live entry of higher rank is there.
func (c *Cache) Put(k Key, e Entry, now time.Time) bool { return false }
