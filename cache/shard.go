package cache

import (
	"math"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// shard is one lock's share of a cache: an LRU bounded by the bytes its
// values hold, not by their count, so that a few huge answers cannot hide
// behind a small entry count.
type shard[K comparable, V any] struct {
	mu     sync.Mutex
	lru    *simplelru.LRU[K, V] // guarded by mu
	bytes  int64                // guarded by mu; sum of held values' size
	budget int64                // read-only
	// Keeps neighbouring shards' mutexes off one cache line.
	_ [64]byte
}

// shardSet is every shard of one cache; a key's hash picks its shard.
type shardSet[K comparable, V any] []shard[K, V]

// newShardSet returns n shards sharing maxBytes; size is a value's cost.
func newShardSet[K comparable, V any](n int, maxBytes int64, size func(V) int64) shardSet[K, V] {
	ss := make(shardSet[K, V], n)
	for i := range ss {
		s := &ss[i]
		s.budget = maxBytes / int64(n)
		// The count bound is never reached: bytes bound the shard. The
		// callback is the one place bytes go down, so Remove, RemoveOldest
		// and Purge all keep the account right.
		s.lru, _ = simplelru.NewLRU(math.MaxInt, func(_ K, v V) { s.bytes -= size(v) })
	}
	return ss
}

// addLocked stores v under k, replacing what was there, and evicts the
// least recently used values until the shard is within its budget. The
// caller holds s.mu and has checked that size fits the budget.
func (s *shard[K, V]) addLocked(k K, v V, size int64) {
	s.lru.Remove(k)
	s.lru.Add(k, v)
	s.bytes += size
	for s.bytes > s.budget {
		s.lru.RemoveOldest()
	}
}

func (ss shardSet[K, V]) len() int {
	n := 0
	for i := range ss {
		s := &ss[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

func (ss shardSet[K, V]) bytes() int64 {
	var n int64
	for i := range ss {
		s := &ss[i]
		s.mu.Lock()
		n += s.bytes
		s.mu.Unlock()
	}
	return n
}

func (ss shardSet[K, V]) flush() {
	for i := range ss {
		s := &ss[i]
		s.mu.Lock()
		s.lru.Purge()
		s.mu.Unlock()
	}
}
