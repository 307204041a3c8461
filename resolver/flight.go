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
	done chan struct{}
	val  V
	err  error
}

// do runs fn once for all concurrent callers with the same key; joined
// reports whether this caller shared another's call.
func (g *flightGroup[K, V]) do(ctx context.Context, k K, fn func() (V, error)) (val V, err error, joined bool) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[K]*flight[V]{}
	}
	if f, ok := g.calls[k]; ok {
		g.mu.Unlock()
		select {
		case <-f.done:
			return f.val, f.err, true
		case <-ctx.Done():
			return val, ctx.Err(), true
		}
	}
	f := &flight[V]{done: make(chan struct{})}
	g.calls[k] = f
	g.mu.Unlock()

	defer func() {
		g.mu.Lock()
		delete(g.calls, k)
		g.mu.Unlock()
		close(f.done)
	}()
	f.val, f.err = fn()
	return f.val, f.err, false
}

// flightKey identifies a client question for coalescing.
type flightKey struct {
	name          string
	qtype, qclass uint16
	cd            bool
	refresh       bool // a prefetch must not join, nor be joined by, a cache hit
}
