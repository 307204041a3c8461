package listener

import (
	"context"
	"sync"
	"time"
)

// queryContext is a Handler call's context: it stands for
// context.WithDeadline(parent, at), and makes that context only when
// first asked for Done or a Value; Deadline and Err answer without it.
// The resolver only carries it: it resolves a question nobody else is
// resolving on a deadline of its own, detached from the caller's. A timer
// per query, registered with the base context in a map all miss workers
// share under one mutex, was measurable CPU on every cold name
// (issue #6); a query that joins another's resolution waits on Done and
// makes it then. Cancel must be called when the call returns, as the
// CancelFunc of the context it stands for would be.
type queryContext struct {
	parent context.Context
	at     time.Time

	mu     sync.Mutex // guards the fields below
	made   context.Context
	cancel context.CancelFunc
	ended  error // Err as Cancel found it, while nothing is made
}

// newQueryContext returns a queryContext that ends timeout from now, or
// when parent does.
func newQueryContext(parent context.Context, timeout time.Duration) *queryContext {
	return &queryContext{parent: parent, at: time.Now().Add(timeout)}
}

func (c *queryContext) Deadline() (time.Time, bool) { return c.at, true }
func (c *queryContext) Done() <-chan struct{}       { return c.context().Done() }

// Value asks the made context, so that a context derived from this one
// finds its cancellation there and registers with it, as with any context
// the context package made.
func (c *queryContext) Value(key any) any { return c.context().Value(key) }

// Err is the made context's error, or what it would be: the parent's
// error first, as context.WithDeadline reports a parent ended before the
// deadline.
func (c *queryContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.made != nil:
		return c.made.Err()
	case c.ended != nil:
		return c.ended
	}
	return c.errNow()
}

func (c *queryContext) errNow() error {
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.at) {
		return context.DeadlineExceeded
	}
	return nil
}

// Cancel ends the context, and frees its timer if one was made.
func (c *queryContext) Cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.made != nil:
		c.cancel()
	case c.ended == nil:
		if c.ended = c.errNow(); c.ended == nil {
			c.ended = context.Canceled
		}
	}
}

func (c *queryContext) context() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.made != nil {
		return c.made
	}
	parent := c.parent
	if c.ended != nil {
		// An ended context keeps the error it ended with, whatever its
		// parent does later.
		parent = context.WithoutCancel(parent)
	}
	if c.ended == context.Canceled {
		c.made, c.cancel = context.WithCancel(parent)
	} else {
		c.made, c.cancel = context.WithDeadline(parent, c.at)
	}
	if c.ended != nil {
		c.cancel()
	}
	return c.made
}
