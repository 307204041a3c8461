package listener

import (
	"context"
	"sync"
	"time"
)

// queryContext is a Handler call's context: context.WithDeadline(base,
// deadline), made when first used for anything but its deadline, and
// cancelled when the call returns. Until then it costs neither a timer nor
// a place among base's children, a map all miss workers share under one
// mutex. The resolver never uses it for a question it resolves itself: the
// shared resolution runs on its own deadline, detached from the caller's,
// so the listener's timer was a second one per cold name that never fired
// (issue #6). A client that joins another's resolution waits on Done and
// pays for the timer then.
type queryContext struct {
	base     context.Context
	deadline time.Time

	mu       sync.Mutex // guards the fields below
	timed    context.Context
	cancel   context.CancelFunc
	returned bool // the Handler call is over: a later use finds it cancelled
}

func newQueryContext(base context.Context, timeout time.Duration) *queryContext {
	return &queryContext{base: base, deadline: time.Now().Add(timeout)}
}

func (c *queryContext) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *queryContext) Done() <-chan struct{}       { return c.made().Done() }
func (c *queryContext) Err() error                  { return c.made().Err() }
func (c *queryContext) Value(key any) any           { return c.made().Value(key) }

// made returns the context this one stands for, making it first if need
// be. A context derived from this one finds it through Value and
// registers with it, as with any context the context package made.
func (c *queryContext) made() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timed == nil {
		c.timed, c.cancel = context.WithDeadline(c.base, c.deadline)
		if c.returned {
			c.cancel()
		}
	}
	return c.timed
}

// end cancels the context, as the Handler call has returned.
func (c *queryContext) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.returned = true
	if c.cancel != nil {
		c.cancel()
	}
}
