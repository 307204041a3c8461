package listener

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestQueryContextEndsAtItsDeadline(t *testing.T) {
	ctx := newQueryContext(context.Background(), 20*time.Millisecond)
	defer ctx.end()
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

func TestQueryContextEndsWithItsBase(t *testing.T) {
	base, stop := context.WithCancel(context.Background())
	unused := newQueryContext(base, time.Minute)
	waited := newQueryContext(base, time.Minute)
	done := waited.Done()
	stop()
	<-done
	for _, ctx := range []*queryContext{unused, waited} {
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("err %v, want canceled", ctx.Err())
		}
		ctx.end()
	}
}

func TestQueryContextIsCancelledWhenTheCallReturns(t *testing.T) {
	for _, waited := range []bool{false, true} {
		ctx := newQueryContext(context.Background(), time.Minute)
		if waited {
			ctx.Done()
		}
		ctx.end()
		select {
		case <-ctx.Done():
		default:
			t.Fatalf("waited %v: not done after end", waited)
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("waited %v: err %v, want canceled", waited, ctx.Err())
		}
	}
}

// A Handler that detaches its work from the call, as the resolver's
// shared resolution does, must not make the timer (issue #6).
func TestQueryContextDetachedCostsNoTimer(t *testing.T) {
	ctx := newQueryContext(context.Background(), time.Minute)
	defer ctx.end()
	flight, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	exchange, cancelExchange := context.WithCancel(flight)
	stop := context.AfterFunc(exchange, func() {})
	defer stop()
	cancelExchange()
	<-exchange.Done()
	if ctx.timed != nil {
		t.Error("a detached context made the Handler context's timer")
	}
}
