package listener

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Timed reports whether the context behind this one, and its timer, were
// made: the tests hold a caller that should not wait to it.
func (c *queryContext) Timed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made != nil
}

func TestQueryContextEndsAtItsDeadline(t *testing.T) {
	ctx := newQueryContext(context.Background(), 20*time.Millisecond)
	defer ctx.Cancel()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > 20*time.Millisecond {
		t.Fatalf("deadline %v %v", d, ok)
	}
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("derived context outlived the deadline")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Errorf("errors %v, %v; want deadline exceeded", ctx.Err(), child.Err())
	}
}

func TestQueryContextErrNeedsNoTimer(t *testing.T) {
	// The first Err must come before the deadline: with 10 ms, a loaded
	// 2-core machine could stall the test that long between the two
	// lines; 500 ms covers such stalls, at half a second of sleep.
	const timeout = 500 * time.Millisecond
	ctx := newQueryContext(context.Background(), timeout)
	defer ctx.Cancel()
	if err := ctx.Err(); err != nil {
		t.Fatalf("err %v before the deadline", err)
	}
	time.Sleep(timeout + 10*time.Millisecond)
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v after the deadline, want deadline exceeded", err)
	}
	if ctx.Timed() {
		t.Error("Err made a timer")
	}
	select {
	case <-ctx.Done():
	default:
		t.Error("Done not closed after Err reported the deadline")
	}
}

func TestQueryContextEndsWithItsParent(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	unused := newQueryContext(parent, time.Minute)
	waited := newQueryContext(parent, time.Minute)
	done := waited.Done()
	stop()
	<-done
	for _, ctx := range []*queryContext{unused, waited} {
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("err %v, want canceled", ctx.Err())
		}
		ctx.Cancel()
	}
	if unused.Timed() {
		t.Error("Err made a timer")
	}
}

func TestQueryContextCancelledWhenTheWorkIsDone(t *testing.T) {
	for _, waited := range []bool{false, true} {
		ctx := newQueryContext(context.Background(), time.Minute)
		if waited {
			ctx.Done()
		}
		ctx.Cancel()
		select {
		case <-ctx.Done():
		default:
			t.Fatalf("waited %v: not done after Cancel", waited)
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("waited %v: err %v, want canceled", waited, ctx.Err())
		}
	}
}

// A context cancelled after its deadline keeps the deadline's error, as
// one whose timer had fired would.
func TestQueryContextCancelAfterTheDeadlineKeepsItsError(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	ctx := newQueryContext(parent, time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	ctx.Cancel()
	stop()
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("err %v, want deadline exceeded", ctx.Err())
	}
}

// Work detached from the context, as the resolver's shared resolution is
// from a client's, must not make the timer (issue #6).
func TestQueryContextDetachedWorkCostsNoTimer(t *testing.T) {
	type key struct{}
	ctx := newQueryContext(context.WithValue(context.Background(), key{}, "v"), time.Minute)
	defer ctx.Cancel()
	detached := context.WithoutCancel(ctx)
	flight, cancel := context.WithTimeout(detached, time.Minute)
	defer cancel()
	stop := context.AfterFunc(flight, func() {})
	defer stop()
	if _, ok := ctx.Deadline(); !ok || ctx.Err() != nil || flight.Err() != nil {
		t.Fatal("context ended early")
	}
	if ctx.Timed() {
		t.Error("detached work made the timer")
	}
	if flight.Value(key{}) != "v" {
		t.Error("the parent's value is lost")
	}
}
