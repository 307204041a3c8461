package resolver

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

const (
	// failureTTL is how long a failed resolution is answered from memory
	// (RFC 9520 §3.2: at least 1 s, at most 5 min). 5 s stops clients that
	// retry at once from turning one broken zone into a query storm
	// (TsuNAME) while a fixed zone is seen again quickly.
	failureTTL = 5 * time.Second
	// failureEntries bounds the failures remembered.
	failureEntries = 10000
)

// failureCache remembers questions whose resolution failed (RFC 9520).
type failureCache struct {
	mu  sync.Mutex
	lru *simplelru.LRU[flightKey, failure] // guarded by mu
}

type failure struct {
	err   error
	until time.Time
}

func newFailureCache() *failureCache {
	l, err := simplelru.NewLRU[flightKey, failure](failureEntries, nil)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &failureCache{lru: l}
}

// get returns the error of a recent failure of k.
func (fc *failureCache) get(k flightKey, now time.Time) error {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	f, ok := fc.lru.Get(k)
	if !ok || !now.Before(f.until) {
		return nil
	}
	return f.err
}

func (fc *failureCache) put(k flightKey, err error, now time.Time) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.lru.Add(k, failure{err: err, until: now.Add(failureTTL)})
}
