package deadline

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestContextEndsAtItsDeadline(t *testing.T) {
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

func TestContextErrNeedsNoTimer(t *testing.T) {
	// The first Err must come before the deadline: with 10 ms, a loaded
	// 2-core machine could stall the test that long between the two
	// lines; 500 ms covers such stalls, at half a second of sleep.
	const timeout = 500 * time.Millisecond
	ctx := New(context.Background(), timeout)
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

func TestContextEndsWithItsParent(t *testing.T) {
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

func TestContextCancelledWhenTheWorkIsDone(t *testing.T) {
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
func TestContextCancelAfterTheDeadlineKeepsItsError(t *testing.T) {
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

// Work detached from the context, as the resolver's shared resolution is
// from a client's, must not make the timer (issue #6).
func TestContextDetachedWorkCostsNoTimer(t *testing.T) {
	type key struct{}
	ctx := New(context.WithValue(context.Background(), key{}, "v"), time.Minute)
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

func TestDetachedContextOutlivesItsParentAndKeepsItsValues(t *testing.T) {
	type key struct{}
	parent, stop := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	ctx := Detached(parent, time.Minute)
	defer ctx.Cancel()
	stop()
	if err := ctx.Err(); err != nil {
		t.Fatalf("err %v after the parent ended, want none", err)
	}
	if ctx.Timed() {
		t.Error("Err made a timer")
	}
	if !ctx.EndsAtDeadline() {
		t.Error("a detached context says it ends before its deadline")
	}
	select {
	case <-ctx.Done():
		t.Fatal("done with its parent")
	default:
	}
	if ctx.Value(key{}) != "v" {
		t.Error("the parent's value is lost")
	}
}

func TestDetachedContextEndsAtItsDeadline(t *testing.T) {
	ctx := Detached(context.Background(), 20*time.Millisecond)
	defer ctx.Cancel()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("outlived the deadline")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("err %v, want deadline exceeded", ctx.Err())
	}
}

func TestAttachedContextDoesNotClaimToEndOnlyAtItsDeadline(t *testing.T) {
	ctx := New(context.Background(), time.Minute)
	defer ctx.Cancel()
	if ctx.EndsAtDeadline() {
		t.Error("a context its parent can end says it ends only at its deadline")
	}
}

func TestWaitUnderADetachedContextMakesNoTimerOfItsContext(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		closeIn time.Duration // 0: never; negative: before the wait
		want    error
	}{
		{"the work ends first", 5 * time.Second, 10 * time.Millisecond, nil},
		{"the deadline comes first", 30 * time.Millisecond, 0, context.DeadlineExceeded},
		{"the deadline has passed", -time.Second, 0, context.DeadlineExceeded},
		{"the work was done before the wait and its deadline", -time.Second, -1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := Detached(context.Background(), tc.timeout)
			defer ctx.Cancel()
			ch := make(chan struct{})
			switch {
			case tc.closeIn < 0:
				close(ch)
			case tc.closeIn > 0:
				time.AfterFunc(tc.closeIn, func() { close(ch) })
			}
			start := time.Now()
			if err := Wait(ctx, ch); !errors.Is(err, tc.want) {
				t.Fatalf("Wait: %v, want %v", err, tc.want)
			}
			if took := time.Since(start); tc.want != nil && tc.timeout > 0 && took < tc.timeout {
				t.Errorf("Wait gave up after %v, before the deadline %v", took, tc.timeout)
			}
			if ctx.Timed() {
				t.Error("Wait made the context's timer")
			}
		})
	}
}

func TestWaitUnderAnAttachedContextEndsWithItsParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx := New(parent, 5*time.Second)
	defer ctx.Cancel()
	time.AfterFunc(10*time.Millisecond, cancel)
	if err := Wait(ctx, make(chan struct{})); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait: %v, want %v", err, context.Canceled)
	}
}

func TestWaitEndIsTheEarlierTimeWhenNothingElseEndsTheWait(t *testing.T) {
	detached := Detached(context.Background(), time.Hour)
	defer detached.Cancel()
	attached := New(context.Background(), time.Hour)
	defer attached.Cancel()
	cancellable, cancel := context.WithCancel(context.Background())
	defer cancel()
	at, _ := detached.Deadline()
	soon, late := time.Now().Add(time.Minute), at.Add(time.Minute)
	tests := []struct {
		name  string
		ctx   context.Context
		end   time.Time
		want  time.Time
		alone bool
	}{
		{"DetachedEndsFirst", detached, late, at, true},
		{"OwnEndFirst", detached, soon, soon, true},
		{"DetachedWithoutOwnEnd", detached, time.Time{}, at, true},
		{"NotCancellable", context.Background(), soon, soon, true},
		{"NotCancellableNeverEnds", context.Background(), time.Time{}, time.Time{}, true},
		{"AttachedContextHasItsParent", attached, soon, soon, false},
		{"CancellableContext", cancellable, soon, soon, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, alone := WaitEnd(tc.ctx, tc.end)
			if !got.Equal(tc.want) || alone != tc.alone {
				t.Fatalf("WaitEnd = %v, %v; want %v, %v", got, alone, tc.want, tc.alone)
			}
		})
	}
	if attached.Timed() {
		t.Error("WaitEnd made the attached context's timer")
	}
}
