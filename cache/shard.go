package cache

import "sync"

// shard is one lock's share of a cache: an LRU bounded by the bytes its
// values hold, not by their count, so that a few huge answers cannot hide
// behind a small entry count.
//
// The LRU is intrusive: each value embeds its own links, and the map is
// keyed by the seeded 64-bit hash of the value's key, which the caller
// compares in full. A generic LRU would add a list element (about 80 B)
// and a copy of the key per entry, which with 100,000 names cached was a
// quarter of what each name cost.
type shard[T any, P lruValue[T]] struct {
	mu     sync.Mutex
	m      map[uint64]P // guarded by mu
	newest P            // guarded by mu; head of the recency list
	oldest P            // guarded by mu; its tail, evicted first
	bytes  int64        // guarded by mu; sum of held values' cost
	budget int64        // read-only
	// Keeps neighbouring shards' mutexes off one cache line.
	_ [64]byte
}

// links is a value's place in its shard: its neighbours in the recency
// list and its map key. Only the shard touches it, under the shard's lock.
type links[T any] struct {
	newer, older *T
	hash         uint64
}

// lruValue is what a shard holds: a pointer to a struct that embeds links
// and knows what it costs in bytes. The cost must not change while held.
type lruValue[T any] interface {
	*T
	lruLinks() *links[T]
	cost() int64
}

// shardSet is every shard of one cache; a key's hash picks its shard.
type shardSet[T any, P lruValue[T]] []shard[T, P]

// newShardSet returns n shards sharing maxBytes.
func newShardSet[T any, P lruValue[T]](n int, maxBytes int64) shardSet[T, P] {
	ss := make(shardSet[T, P], n)
	for i := range ss {
		ss[i].budget = maxBytes / int64(n)
		ss[i].m = map[uint64]P{}
	}
	return ss
}

// get returns the value under h and marks it most recently used.
func (s *shard[T, P]) get(h uint64) (P, bool) {
	v, ok := s.m[h]
	if ok && v != s.newest {
		s.unlink(v)
		s.pushNewest(v)
	}
	return v, ok
}

// peek returns the value under h without touching its recency.
func (s *shard[T, P]) peek(h uint64) (P, bool) {
	v, ok := s.m[h]
	return v, ok
}

// remove drops the value under h, if any.
func (s *shard[T, P]) remove(h uint64) {
	if v, ok := s.m[h]; ok {
		s.drop(v)
	}
}

// addLocked stores v under h, replacing what was there, and evicts the
// least recently used values until the shard is within its budget. The
// caller holds s.mu and has checked that v's cost fits the budget.
func (s *shard[T, P]) addLocked(h uint64, v P) {
	s.remove(h)
	v.lruLinks().hash = h
	s.m[h] = v
	s.pushNewest(v)
	s.bytes += v.cost()
	for s.bytes > s.budget {
		s.drop(s.oldest)
	}
}

// drop is the one place values leave, so the byte account stays right.
func (s *shard[T, P]) drop(v P) {
	s.unlink(v)
	delete(s.m, v.lruLinks().hash)
	s.bytes -= v.cost()
}

func (s *shard[T, P]) unlink(v P) {
	l := v.lruLinks()
	if l.newer != nil {
		P(l.newer).lruLinks().older = l.older
	} else {
		s.newest = l.older
	}
	if l.older != nil {
		P(l.older).lruLinks().newer = l.newer
	} else {
		s.oldest = l.newer
	}
	l.newer, l.older = nil, nil
}

func (s *shard[T, P]) pushNewest(v P) {
	l := v.lruLinks()
	l.older = s.newest
	if s.newest != nil {
		s.newest.lruLinks().newer = v
	} else {
		s.oldest = v
	}
	s.newest = v
}

func (ss shardSet[T, P]) len() int {
	n := 0
	for i := range ss {
		s := &ss[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (ss shardSet[T, P]) bytes() int64 {
	var n int64
	for i := range ss {
		s := &ss[i]
		s.mu.Lock()
		n += s.bytes
		s.mu.Unlock()
	}
	return n
}

// flush empties every shard. A new map, not deletes: a Go map never
// shrinks, and a flush should give its memory back.
func (ss shardSet[T, P]) flush() {
	for i := range ss {
		s := &ss[i]
		s.mu.Lock()
		s.m = map[uint64]P{}
		s.newest, s.oldest, s.bytes = nil, nil, 0
		s.mu.Unlock()
	}
}
