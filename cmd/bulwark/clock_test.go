package main

import (
	"testing"
	"time"
)

func TestWallClockKeepsToTheSystemClock(t *testing.T) {
	var c wallClock
	prev := c.Now()
	// Long enough for several reads of the wall clock.
	for end := time.Now().Add(3 * wallResync); time.Now().Before(end); {
		before := time.Now()
		got := c.Now()
		after := time.Now()
		// Between two reads of the wall clock it is extrapolated with the
		// monotonic clock, which runs at the same rate: it stays within
		// what the system clock read on either side of it.
		if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
			t.Fatalf("wallClock read %v between system clock reads %v and %v", got, before, after)
		}
		if got.Before(prev) {
			t.Fatalf("wallClock went back from %v to %v", prev, got)
		}
		prev = got
	}
}

func BenchmarkWallClockNow(b *testing.B) {
	b.Run("wallClock", func(b *testing.B) {
		var c wallClock
		for b.Loop() {
			c.Now()
		}
	})
	b.Run("time.Now", func(b *testing.B) {
		for b.Loop() {
			time.Now()
		}
	})
}
