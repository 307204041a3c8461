package main

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGCFloorPercentKeepsTheLargerAllowance(t *testing.T) {
	tests := []struct {
		name        string
		percent     int
		floor, live uint64
		want        int
	}{
		{name: "NoFloor", percent: 50, floor: 0, live: 1 << 20, want: 50},
		{name: "SmallHeapGetsTheFloor", percent: 50, floor: 16 << 20, live: 8 << 20, want: 200},
		{name: "BigHeapKeepsThePercent", percent: 50, floor: 16 << 20, live: 64 << 20, want: 50},
		{name: "EqualAllowances", percent: 50, floor: 16 << 20, live: 32 << 20, want: 50},
		// Below the runtime's 4 MiB minimum the percent is computed as
		// if the heap were that size: GOGC scales the minimum too, and an
		// empty heap must not make it unbounded.
		{name: "TinyHeapIsBoundedByTheRuntimeMinimum", percent: 50, floor: 16 << 20, live: 1 << 10, want: 400},
		{name: "BeforeTheFirstCycle", percent: 50, floor: 16 << 20, live: 0, want: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := floorPercent(tc.percent, tc.floor, tc.live); got != tc.want {
				t.Errorf("floorPercent(%d, %d, %d) = %d, want %d", tc.percent, tc.floor, tc.live, got, tc.want)
			}
		})
	}
}

// TestGCFloorRetunesAfterEveryCollectionUntilStopped drives real
// collections and watches what the floor sets as the live heap it is
// shown grows past the floor's share.
func TestGCFloorRetunesAfterEveryCollectionUntilStopped(t *testing.T) {
	var mu sync.Mutex
	var live uint64 = 8 << 20
	var sets []int
	g := &gcFloor{percent: 50, floor: 16 << 20,
		set:  func(p int) int { mu.Lock(); defer mu.Unlock(); sets = append(sets, p); return 0 },
		live: func() uint64 { mu.Lock(); defer mu.Unlock(); return live }}
	g.afterGC()
	waitForSets := func(n int) []int {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			runtime.GC()
			mu.Lock()
			got := append([]int(nil), sets...)
			mu.Unlock()
			if len(got) >= n {
				return got
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("the floor set GOGC %d times, want %d", len(sets), n)
		return nil
	}
	if got := waitForSets(1); got[0] != 200 {
		t.Fatalf("first GOGC %d, want 200 for 8 MiB live", got[0])
	}
	mu.Lock()
	live = 64 << 20
	mu.Unlock()
	if got := waitForSets(2); got[1] != 50 {
		t.Fatalf("GOGC after the heap grew: %d, want 50", got[1])
	}
	g.stopped.Store(true)
	mu.Lock()
	live = 1 << 20
	mu.Unlock()
	for range 3 {
		runtime.GC()
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(sets) != 2 {
		t.Errorf("GOGC set after stop: %v", sets)
	}
}

func TestGCFloorDefaultsToAQuarterOfASmallCache(t *testing.T) {
	tests := []struct {
		name string
		conf string
		want int64
	}{
		{name: "DefaultCache", want: 8 << 20},
		{name: "BigCache", conf: "cache-size: 1g\n", want: 8 << 20},
		{name: "RouterCache", conf: "cache-size: 16m\n", want: 4 << 20},
		{name: "SetExplicitly", conf: "cache-size: 16m\ngc-floor: 32m\n", want: 32 << 20},
		{name: "TurnedOff", conf: "gc-floor: 0\n", want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := defaultSettings()
			if err := parseConfig(strings.NewReader(tc.conf), "c.conf", &s); err != nil {
				t.Fatal(err)
			}
			if got := s.gcFloorBytes(); got != tc.want {
				t.Errorf("gc floor %d, want %d", got, tc.want)
			}
		})
	}
}
