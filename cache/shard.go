package cache

import (
	"math"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// shard is one lock's share of a cache: an LRU bounded by the bytes its
// values hold, not by their count, so that a few huge answers cannot hide
// behind a small entry count.
//
// The LRU is keyed by the seeded 64-bit hash of the value's key, which the
// caller compares in full, so a collision is a miss: the LRU's list element
// holds eight bytes of key instead of a second copy of the name.
type shard[V costed] struct {
	mu     sync.Mutex
	lru    *simplelru.LRU[uint64, V] // guarded by mu
	bytes  int64                     // guarded by mu; sum of held values' cost
	budget int64                     // read-only
	// Keeps neighbouring shards' mutexes off one cache line.
	_ [64]byte
}

// costed is what a shard holds: a value that knows what it costs in bytes.
// The cost must not change while held.
type costed interface {
	cost() int64
}

// shardSet is every shard of one cache; a key's hash picks its shard.
type shardSet[V costed] []shard[V]

// newShardSet returns n shards sharing maxBytes.
func newShardSet[V costed](n int, maxBytes int64) shardSet[V] {
	ss := make(shardSet[V], n)
	for i := range ss {
		ss[i].budget = maxBytes / int64(n)
		ss[i].reset()
	}
	return ss
}

// reset gives the shard a new, empty LRU. A new one rather than a Purge:
// a Go map never shrinks, and a flush should give its memory back.
func (s *shard[V]) reset() {
	// The count bound is never reached: bytes bound the shard. The
	// callback is the one place bytes go down, so Remove and RemoveOldest
	// both keep the account right.
	s.lru, _ = simplelru.NewLRU(math.MaxInt, func(_ uint64, v V) { s.bytes -= v.cost() })
	s.bytes = 0
}

// addLocked stores v, whose cost is cost, under h, replacing what was
// there, and evicts the least recently used values until the shard is
// within its budget. The caller holds s.mu and has checked that cost fits
// the budget; it passes the cost it checked, which for a record entry
// walks every record.
func (s *shard[V]) addLocked(h uint64, v V, cost int64) {
	// Add over a held key swaps the value without the callback; removing
	// first lets the callback take the old value's bytes off.
	s.lru.Remove(h)
	s.lru.Add(h, v)
	s.bytes += cost
	for s.bytes > s.budget {
		s.lru.RemoveOldest()
	}
}

func (ss shardSet[V]) len() int {
	n := 0
	for i := range ss {
		s := &ss[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

func (ss shardSet[V]) bytes() int64 {
	var n int64
	for i := range ss {
		s := &ss[i]
		s.mu.Lock()
		n += s.bytes
		s.mu.Unlock()
	}
	return n
}

func (ss shardSet[V]) flush() {
	for i := range ss {
		s := &ss[i]
		s.mu.Lock()
		s.reset()
		s.mu.Unlock()
	}
}
