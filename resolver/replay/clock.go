package replay

import (
	"sync"
	"time"
)

// Clock is the scenario's virtual time. It moves only on TIME_PASSES, and
// serves as resolver.Clock, validate.Clock and transport.Clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time // guarded by mu
}

// NewClock returns a clock standing at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the virtual time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// frozenClock is Unbound's val-override-date: the validator's "now" stays
// put while TIME_PASSES ages the caches.
type frozenClock time.Time

func (f frozenClock) Now() time.Time { return time.Time(f) }
