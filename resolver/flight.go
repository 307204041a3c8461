package resolver

import (
	"context"
	"sync"
)

// flightGroup coalesces identical questions in flight into one resolution
// (Unbound's mesh): n clients asking the same name at once cause one
// upstream query, which defeats the birthday attack (threat model OFF-3).
type flightGroup struct {
	mu    sync.Mutex
	calls map[flightKey]*flight // guarded by mu
}

type flightKey struct {
	name          string
	qtype, qclass uint16
	cd            bool
	refresh       bool // a prefetch must not join, nor be joined by, a cache hit
}

type flight struct {
	done chan struct{}
	res  *result
	err  error
}

// do runs fn once for all concurrent callers with the same key; joined
// reports whether this caller shared another's resolution.
func (g *flightGroup) do(ctx context.Context, k flightKey, fn func() (*result, error)) (res *result, err error, joined bool) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[flightKey]*flight{}
	}
	if f, ok := g.calls[k]; ok {
		g.mu.Unlock()
		select {
		case <-f.done:
			return f.res, f.err, true
		case <-ctx.Done():
			return nil, ctx.Err(), true
		}
	}
	f := &flight{done: make(chan struct{})}
	g.calls[k] = f
	g.mu.Unlock()

	defer func() {
		g.mu.Lock()
		delete(g.calls, k)
		g.mu.Unlock()
		close(f.done)
	}()
	f.res, f.err = fn()
	return f.res, f.err, false
}
