package resolver

import (
	"context"
	"sync"
)

// flightGroup runs one call for all concurrent callers with the same key.
// The resolver uses it twice, as Unbound does: identical client questions
// share one resolution (its mesh), and identical queries to one server
// share one exchange (its serviced queries). Both cut upstream traffic and
// defeat the birthday attack (threat model OFF-3).
type flightGroup[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flight[V] // guarded by mu
}

type flight[V any] struct {
	// done is made by the first caller that joins: most calls have none,
	// and the channel would be one more allocation per call (issue #6).
	done    chan struct{} // guarded by the group's mu until closed
	val     V
	err     error
	joiners int // callers that joined; guarded by the group's mu
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
		f.joiners++
		if f.done == nil {
			f.done = make(chan struct{})
		}
		done := f.done
		g.mu.Unlock()
		select {
		case <-done:
			return f.val, f.err, true, true
		case <-ctx.Done():
			return val, ctx.Err(), true, true
		}
	}
	f := &flight[V]{}
	g.calls[k] = f
	g.mu.Unlock()

	// Deferred, so that a panic in fn does not leave the joiners waiting;
	// it sets shared after the return below. Once the call is out of the
	// map nobody can join: the count is final.
	defer func() {
		g.mu.Lock()
		delete(g.calls, k)
		shared = f.joiners > 0
		done := f.done
		g.mu.Unlock()
		if done != nil {
			close(done)
		}
	}()
	f.val, f.err = fn()
	return f.val, f.err, false, false
}

// flightKey identifies a client question for coalescing.
type flightKey struct {
	name          string
	qtype, qclass uint16
	cd            bool
	refresh       bool // a prefetch must not join, nor be joined by, a cache hit
}
