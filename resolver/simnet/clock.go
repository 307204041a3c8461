package simnet

import (
	"sync"
	"time"
)

// Clock is virtual time for a simulated world: it moves only when the test
// (or a replay scenario's TIME_PASSES) advances it, and serves as the
// resolver's, the validator's, the transport's and the listener's clock.
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
