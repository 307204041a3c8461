package listener

import "testing"

// parkAll parks n new workers in order and returns them.
func parkAll(t *testing.T, p *missPool, n int) []*missWorker {
	t.Helper()
	ws := make([]*missWorker, n)
	for i := range ws {
		ws[i] = newMissWorker()
		if !p.park(ws[i]) {
			t.Fatalf("park of worker %d refused by an open pool", i)
		}
	}
	return ws
}

// ended reports whether w's channel was closed, which ends the worker.
func ended(w *missWorker) bool {
	select {
	case _, ok := <-w.jobs:
		return !ok
	default:
		return false
	}
}

func TestMissGoesToTheWorkerThatFinishedLast(t *testing.T) {
	var p missPool
	ws := parkAll(t, &p, 3)
	for i := len(ws) - 1; i >= 0; i-- {
		if got := p.take(); got != ws[i] {
			t.Fatalf("take returned worker %p, want the one parked last of those left (%d)", got, i)
		}
	}
	if got := p.take(); got != nil {
		t.Fatalf("take from an empty pool returned %p, want nil", got)
	}
}

func TestSweepEndsOnlyWorkersIdleForAWholePeriod(t *testing.T) {
	var p missPool
	old := parkAll(t, &p, 2)
	p.sweep() // old have been idle for less than a period
	for i, w := range old {
		if ended(w) {
			t.Fatalf("worker %d ended at the first sweep after it parked", i)
		}
	}
	recent := parkAll(t, &p, 1)[0]
	p.sweep()
	for i, w := range old {
		if !ended(w) {
			t.Fatalf("worker %d idle through a whole period was not ended", i)
		}
	}
	if ended(recent) {
		t.Fatal("worker parked since the last sweep was ended")
	}
	if got := p.take(); got != recent {
		t.Fatalf("take after the sweep returned %p, want the one left idle", got)
	}
}

func TestClosedPoolEndsIdleWorkersAndRefusesBusyOnes(t *testing.T) {
	var p missPool
	idle := parkAll(t, &p, 2)
	p.close()
	for i, w := range idle {
		if !ended(w) {
			t.Fatalf("idle worker %d not ended by close", i)
		}
	}
	if p.park(newMissWorker()) {
		t.Fatal("a worker that finished after close was parked, want it told to end")
	}
	if got := p.take(); got != nil {
		t.Fatalf("take from a closed pool returned %p, want nil", got)
	}
}
