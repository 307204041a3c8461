package resolver

import (
	"context"
	"sync"

	"github.com/bulwark-dns/bulwark/resolver/internal/deadline"
)

// flightGroup runs one call for all concurrent callers with the same key.
// The resolver uses it three times: identical client questions share one
// resolution (Unbound's mesh), identical queries to one server share one
// exchange (its serviced queries), and a minimised question shares the
// exchange and the handling of its reply (sendMinimised). They cut
// upstream traffic and defeat the birthday attack (threat model OFF-3).
type flightGroup[K comparable, V any] struct {
	mu sync.Mutex
	// calls holds nil for a call nobody joined: most calls are never
	// joined, and a flight on the heap would cost an allocation per call
	// (issue #6). The first joiner makes the call's flight.
	calls map[K]*flight[V] // guarded by mu
}

// flight is where the joiners of a call wait for its value.
type flight[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// do runs fn once for all concurrent callers with the same key. joined
// reports whether this caller shared another's call; shared, whether any
// other caller got (or will get) the same value, which tells the caller
// that made the call whether it may modify the value without a copy.
func (g *flightGroup[K, V]) do(ctx context.Context, k K, fn func() (V, error)) (val V, err error, joined, shared bool) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[K]*flight[V]{}
	}
	if f, ok := g.calls[k]; ok {
		if f == nil {
			f = &flight[V]{done: make(chan struct{})}
			g.calls[k] = f
		}
		g.mu.Unlock()
		if err := deadline.Wait(ctx, f.done); err != nil {
			return val, err, true, true
		}
		return f.val, f.err, true, true
	}
	g.calls[k] = nil
	g.mu.Unlock()

	// Deferred, so that a panic in fn does not leave the joiners waiting
	// (they get the zero value); it sets shared after the return below.
	// Once the call is out of the map nobody can join: shared is final.
	defer func() {
		g.mu.Lock()
		f := g.calls[k]
		delete(g.calls, k)
		g.mu.Unlock()
		if shared = f != nil; shared {
			f.val, f.err = val, err
			close(f.done)
		}
	}()
	val, err = fn()
	return val, err, false, false
}

// flightKey identifies a client question for coalescing.
type flightKey struct {
	name          string
	qtype, qclass uint16
	cd            bool
	refresh       bool // a prefetch must not join, nor be joined by, a cache hit
}
