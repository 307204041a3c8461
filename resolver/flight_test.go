package resolver

import (
	"context"
	"testing"
	"time"
)

// TestFlightTellsTheCallerWhetherItsValueWasShared: the caller that made a
// call nobody joined may modify the value in place; once another caller
// joined, both learn that the value is shared.
func TestFlightTellsTheCallerWhetherItsValueWasShared(t *testing.T) {
	var g flightGroup[string, *int]
	ctx := context.Background()
	if _, _, joined, shared := g.do(ctx, "k", func() (*int, error) { return new(int), nil }); joined || shared {
		t.Fatalf("lone call: joined %v, shared %v", joined, shared)
	}
	release := make(chan struct{})
	type outcome struct {
		v              *int
		joined, shared bool
	}
	made := make(chan outcome, 1)
	go func() {
		v, _, joined, shared := g.do(ctx, "k", func() (*int, error) { <-release; return new(int), nil })
		made <- outcome{v, joined, shared}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !g.inFlight("k") {
		if time.Now().After(deadline) {
			t.Fatal("the first call never started")
		}
		time.Sleep(time.Millisecond)
	}
	joinedOut := make(chan outcome, 1)
	go func() {
		v, _, joined, shared := g.do(ctx, "k", func() (*int, error) { t.Error("a second call ran"); return nil, nil })
		joinedOut <- outcome{v, joined, shared}
	}()
	for !g.joined("k") {
		if time.Now().After(deadline) {
			t.Fatal("the second caller never joined")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	first, second := <-made, <-joinedOut
	if first.joined || !first.shared || !second.joined || !second.shared || first.v != second.v {
		t.Fatalf("maker %+v, joiner %+v; want the maker told the value is shared and the joiner joined", first, second)
	}
}

func (g *flightGroup[K, V]) inFlight(k K) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.calls[k]
	return ok
}

func (g *flightGroup[K, V]) joined(k K) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[k] != nil
}
