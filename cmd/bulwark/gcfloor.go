package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// gcFloor lets the heap always grow by at least floor bytes between
// collections, on top of gc-percent. GOGC alone scales the allowance with
// the live heap, which is small while the caches fill: a resolver with a
// few MiB live at 50% collects every MiB or two of allocation, and a cold
// resolution allocates tens of KiB, so a cold start spent a fifth of its
// CPU collecting (bench/run's cold runs). A floor costs at most floor
// bytes of extra heap, and nothing once the caches are big enough that
// gc-percent allows more; a ballast (a large never-touched allocation)
// would have added its share of gc-percent at every heap size. Each cycle
// finds the last sentinel unreachable and the runtime runs its cleanup,
// which reads the live heap, sets GOGC to whichever allowance is larger
// and arms the next sentinel.
type gcFloor struct {
	percent int
	floor   uint64
	set     func(int) int // debug.SetGCPercent; tests record instead
	live    func() uint64 // the live heap after the last cycle
	stopped atomic.Bool
	last    int
}

// runtimeHeapMinimum is the runtime's smallest heap goal at GOGC=100,
// which it scales with GOGC: the percent for a heap below it is computed as
// if it were that size, so that the scaled minimum stays at the floor
// instead of growing without bound as the live heap nears zero.
const runtimeHeapMinimum = 4 << 20

// startGCFloor sets GOGC to percent and keeps the floor until stop.
func startGCFloor(percent int, floor uint64) (stop func()) {
	if floor == 0 {
		debug.SetGCPercent(percent)
		return func() {}
	}
	g := &gcFloor{percent: percent, floor: floor, set: debug.SetGCPercent, live: liveHeap}
	g.afterGC()
	return func() { g.stopped.Store(true) }
}

// gcSentinel holds a pointer so that it is not a tiny allocation, which
// the runtime may batch with others and never free on its own.
type gcSentinel struct{ _ *int }

func (g *gcFloor) arm() {
	runtime.AddCleanup(&gcSentinel{}, (*gcFloor).afterGC, g)
}

// afterGC runs on the runtime's cleanup goroutine, one cycle at a time.
func (g *gcFloor) afterGC() {
	if g.stopped.Load() {
		return
	}
	if p := floorPercent(g.percent, g.floor, g.live()); p != g.last {
		g.set(p)
		g.last = p
	}
	g.arm()
}

// floorPercent is the GOGC that lets a heap of live bytes grow by the
// larger of percent of it and floor.
func floorPercent(percent int, floor, live uint64) int {
	need := floor * 100 / max(live, runtimeHeapMinimum)
	return max(percent, int(need))
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
