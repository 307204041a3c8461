package deadline

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestEndsAtItsDeadline(t *testing.T) {
	ctx := New(context.Background(), 20*time.Millisecond)
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

func TestErrNeedsNoTimer(t *testing.T) {
	ctx := New(context.Background(), 10*time.Millisecond)
	defer ctx.Cancel()
	if err := ctx.Err(); err != nil {
		t.Fatalf("err %v before the deadline", err)
	}
	time.Sleep(20 * time.Millisecond)
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

func TestEndsWithItsParent(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	unused := New(parent, time.Minute)
	waited := New(parent, time.Minute)
	done := waited.Done()
	stop()
	<-done
	for _, ctx := range []*Context{unused, waited} {
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("err %v, want canceled", ctx.Err())
		}
		ctx.Cancel()
	}
	if unused.Timed() {
		t.Error("Err made a timer")
	}
}

func TestDetachedOutlivesItsParent(t *testing.T) {
	type key struct{}
	parent, stop := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	ctx := Detached(parent, time.Minute)
	defer ctx.Cancel()
	stop()
	if err := ctx.Err(); err != nil {
		t.Errorf("err %v after the parent ended", err)
	}
	if ctx.Value(key{}) != "v" {
		t.Error("the parent's value is lost")
	}
	select {
	case <-ctx.Done():
		t.Error("done when the parent ended")
	default:
	}
}

func TestCancelledWhenTheWorkIsDone(t *testing.T) {
	for _, waited := range []bool{false, true} {
		ctx := New(context.Background(), time.Minute)
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
func TestCancelAfterTheDeadlineKeepsItsError(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	ctx := New(parent, time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	ctx.Cancel()
	stop()
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("err %v, want deadline exceeded", ctx.Err())
	}
}

// Work carried on a detached copy of the context, as the resolver hands
// its transport, must not make the timer (issue #6).
func TestCarriedContextCostsNoTimer(t *testing.T) {
	ctx := Detached(context.Background(), time.Minute)
	defer ctx.Cancel()
	carried := context.WithoutCancel(ctx)
	flight, cancel := context.WithTimeout(carried, time.Minute)
	defer cancel()
	stop := context.AfterFunc(flight, func() {})
	defer stop()
	if _, ok := ctx.Deadline(); !ok || ctx.Err() != nil || carried.Err() != nil {
		t.Fatal("context ended early")
	}
	if ctx.Timed() {
		t.Error("carrying the context made its timer")
	}
}
