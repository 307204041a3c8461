// Package deadline provides a context that ends at a deadline but makes
// the timer behind it only when something waits on its Done channel. A
// DNS query's context is mostly carried rather than waited on: its
// deadline is read and its error checked between steps, and a timer per
// query, registered with its parent, was measurable CPU on every cold
// name (issue #6). The package owns that context, and the waits that
// keep its deadline with pooled timers; it must not learn about queries.
package deadline

import (
	"context"
	"sync"
	"time"
)

// Context stands for context.WithDeadline(parent, at) or, detached, for
// context.WithDeadline(context.WithoutCancel(parent), at), and makes that
// context only when first asked for Done or a Value: Deadline and Err
// answer without it. Cancel must be called once the work under it is
// done, as the CancelFunc of the context it stands for would be.
type Context struct {
	parent   context.Context
	at       time.Time
	detached bool

	mu     sync.Mutex // guards the fields below
	made   context.Context
	cancel context.CancelFunc
	ended  error // Err as Cancel found it, while nothing is made
}

// New returns a Context that ends timeout from now, or when parent does.
func New(parent context.Context, timeout time.Duration) *Context {
	return &Context{parent: parent, at: time.Now().Add(timeout)}
}

// Detached returns a Context that ends timeout from now whatever becomes
// of parent, whose values it carries.
func Detached(parent context.Context, timeout time.Duration) *Context {
	return &Context{parent: parent, at: time.Now().Add(timeout), detached: true}
}

func (c *Context) Deadline() (time.Time, bool) { return c.at, true }
func (c *Context) Done() <-chan struct{}       { return c.context().Done() }

// EndsAtDeadline reports whether nothing but the deadline ends the
// context while work under it runs: true when detached, since only the
// work's owner cancels it, once the work is over.
func (c *Context) EndsAtDeadline() bool { return c.detached }

// onlyDeadline returns ctx's deadline when nothing but it ends ctx while
// the work under it runs (a Context that EndsAtDeadline). A wait may then
// keep the deadline with a pooled timer of its own rather than ask for
// Done, which would make the timer this type exists to spare.
func onlyDeadline(ctx context.Context) (time.Time, bool) {
	if c, ok := ctx.(*Context); ok && c.EndsAtDeadline() {
		return c.at, true
	}
	return time.Time{}, false
}

// Value asks the made context, so that a context derived from this one
// finds its cancellation there and registers with it, as with any context
// the context package made.
func (c *Context) Value(key any) any { return c.context().Value(key) }

// Err is the made context's error, or what it would be: the parent's
// error first, as context.WithDeadline reports a parent ended before the
// deadline.
func (c *Context) Err() error {
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

func (c *Context) errNow() error {
	if !c.detached {
		if err := c.parent.Err(); err != nil {
			return err
		}
	}
	// time.Until reads only the monotonic clock, time.Now the wall clock
	// too: Err is asked between every two steps of a query (issue #6).
	if time.Until(c.at) <= 0 {
		return context.DeadlineExceeded
	}
	return nil
}

// Cancel ends the context, and frees its timer if one was made.
func (c *Context) Cancel() {
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

// Timed reports whether the context behind this one, and its timer, were
// made: tests hold a caller that should not wait on it to that.
func (c *Context) Timed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made != nil
}

func (c *Context) context() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.made != nil {
		return c.made
	}
	parent := c.parent
	if c.detached || c.ended != nil {
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

// WaitEnd returns when a wait under ctx that would end at end (zero:
// never) must end, and true, when nothing else can end it: ctx is a
// Context that EndsAtDeadline, or one that cannot be cancelled. The
// caller may then keep that time itself, as resolver/transport's reactor
// keeps its sockets' waits, without asking ctx for Done. It returns end
// and false otherwise.
func WaitEnd(ctx context.Context, end time.Time) (time.Time, bool) {
	if at, ok := onlyDeadline(ctx); ok {
		if end.IsZero() || at.Before(end) {
			end = at
		}
		return end, true
	}
	if _, ok := ctx.(*Context); ok {
		return end, false // asking it for Done would make its timer
	}
	return end, ctx.Done() == nil
}

// Wait blocks until ch is ready or ctx ends, and then returns nil or
// ctx's error: WaitUntil with no end of its own. Waits for another's work,
// such as the joiners of a shared minimised question (one per new zone
// and name asked with it), were 1% of a cold profile's samples when they
// asked a Context for Done (issue #6).
func Wait(ctx context.Context, ch <-chan struct{}) error {
	return WaitUntil(ctx, ch, time.Time{})
}

// WaitUntil blocks until ch is ready (closed, or a value to take), end
// passes (never when zero) or ctx ends. It returns nil when ch was ready,
// context.DeadlineExceeded when end or ctx's deadline came first, or
// ctx's error when something else ended ctx. A Context that ends only at
// its deadline is waited on with a timer from a pool, not its Done
// channel, which would make the context and timer this type spares;
// resolver/transport's socket waits take this path for every exchange.
func WaitUntil(ctx context.Context, ch <-chan struct{}, end time.Time) error {
	select {
	case <-ch:
		return nil // ready already: no timer to arm
	default:
	}
	var done <-chan struct{}
	end, alone := WaitEnd(ctx, end)
	if !alone {
		done = ctx.Done()
	}
	var expired <-chan time.Time
	if !end.IsZero() {
		d := time.Until(end)
		if d <= 0 {
			return context.DeadlineExceeded
		}
		t := timers.Get().(*time.Timer)
		t.Reset(d)
		// Stopped, not left to fire: a stopped timer's channel is empty
		// since Go 1.23, so the next wait cannot meet this expiry.
		defer timers.Put(t)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-ch:
		return nil
	case <-expired:
		return context.DeadlineExceeded
	case <-done:
		return ctx.Err()
	}
}

// timers are the stopped timers of waits that ended, so that a wait costs
// no new timer (issue #6).
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}
