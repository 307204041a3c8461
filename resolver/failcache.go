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
	err   *failedError
	until time.Time
}

// failedError is a remembered failure, answered again with the Extended
// DNS Error of the original.
type failedError struct {
	code uint16
	text string
}

func (e *failedError) Error() string { return e.text }

func newFailureCache() *failureCache {
	l, err := simplelru.NewLRU[flightKey, failure](failureEntries, nil)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &failureCache{lru: l}
}

// get returns the error of a recent failure of k, or nil.
func (fc *failureCache) get(k flightKey, now time.Time) error {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	f, ok := fc.lru.Get(k)
	if !ok || !now.Before(f.until) {
		return nil
	}
	return f.err
}

// put remembers that k failed with code and text.
func (fc *failureCache) put(k flightKey, code uint16, text string, now time.Time) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.lru.Add(k, failure{err: &failedError{code: code, text: text}, until: now.Add(failureTTL)})
}
