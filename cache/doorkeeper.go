package cache

import (
	"sync"
	"sync/atomic"
)

// The answer cache only speeds up questions that are asked again: a
// question asked once is answered from the record cache, which keeps its
// records whether or not the answer cache does, and most names a
// resolver's clients ask are asked once. Admitting every answer spends
// memory on answers no one will ask for, and evicts the ones they will.
// So, as TinyLFU's doorkeeper does for its frequency sketch, the answer
// cache admits a new question's answer only at its second Put: the first
// only sets the question's bits in a small Bloom filter.
//
// The filter is fixed in size and two bits per question; once a quarter
// of its bits are set (about 300,000 distinct questions, with a false
// "seen" for at most one question in 16) it is cleared, so "seen" means
// seen within roughly the last 300,000 new questions.
const (
	// doorkeeperIndexBits is log2(doorkeeperBits): each index takes that
	// many bits of the question's hash, above the shard's low bits.
	doorkeeperIndexBits = 21
	doorkeeperBits      = 1 << doorkeeperIndexBits // 256 KiB
	doorkeeperClearAt   = doorkeeperBits / 4
)

// doorkeeper is the filter. It is safe for concurrent use without a lock
// but for clearing, which is rare; a question whose bits are set while a
// clear runs may need one Put more to be admitted.
type doorkeeper struct {
	words   []atomic.Uint64
	set     atomic.Int64 // bits set since the last clear
	clearMu sync.Mutex   // one clear at a time
}

func newDoorkeeper() *doorkeeper {
	return &doorkeeper{words: make([]atomic.Uint64, doorkeeperBits/64)}
}

// indexes are the question's two bits, from hash bits the shard choice
// (the low bits) does not use, so a shard's questions spread over the
// whole filter.
func doorkeeperIndexes(h uint64) (uint64, uint64) {
	return h >> (64 - doorkeeperIndexBits), (h >> 24) & (doorkeeperBits - 1)
}

// admit reports whether the question hashed to h was seen since the last
// clear, and marks it seen.
func (d *doorkeeper) admit(h uint64) bool {
	i, j := doorkeeperIndexes(h)
	seen := d.mark(i)
	seen = d.mark(j) && seen
	if d.set.Load() >= doorkeeperClearAt {
		d.clear()
	}
	return seen
}

// mark sets bit i and reports whether it was set already.
func (d *doorkeeper) mark(i uint64) bool {
	bit := uint64(1) << (i % 64)
	if d.words[i/64].Or(bit)&bit != 0 {
		return true
	}
	d.set.Add(1)
	return false
}

// clear forgets every question seen. A clear already running is enough.
func (d *doorkeeper) clear() {
	if !d.clearMu.TryLock() {
		return
	}
	defer d.clearMu.Unlock()
	for i := range d.words {
		d.words[i].Store(0)
	}
	d.set.Store(0)
}
