package validate

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// gatedFetcher holds the first fetch until a second one arrives or hold
// passes, so that validations started meanwhile overlap the first one's
// chain walk; without sharing they would fetch for themselves.
type gatedFetcher struct {
	mu      sync.Mutex
	w       *world
	hold    time.Duration
	fetches atomic.Int32
	second  chan struct{}
}

func (g *gatedFetcher) Fetch(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, error) {
	switch g.fetches.Add(1) {
	case 1:
		select {
		case <-g.second:
		case <-time.After(g.hold):
		}
	case 2:
		close(g.second)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.w.Fetch(ctx, name, qtype)
}

func TestConcurrentValidationsShareOneChainWalk(t *testing.T) {
	w, anchors := buildWorld(t, worldOpts{})
	alone := newValidator(t, anchors, nil)
	if got := alone.Validate(context.Background(), w, w.reply("www.example.test.", dns.TypeA)); got.Security != cache.Secure {
		t.Fatalf("single validation: %+v", got)
	}
	want := w.fetches

	g := &gatedFetcher{w: w, hold: 200 * time.Millisecond, second: make(chan struct{})}
	v := newValidator(t, anchors, nil)
	var wg sync.WaitGroup
	results := make([]Result, 8)
	for i := range results {
		r := w.reply("www.example.test.", dns.TypeA)
		wg.Go(func() { results[i] = v.Validate(context.Background(), g, r) })
	}
	wg.Wait()
	for i, r := range results {
		if r.Security != cache.Secure {
			t.Errorf("validation %d: %+v", i, r)
		}
	}
	if got := int(g.fetches.Load()); got != want {
		t.Errorf("8 concurrent validations fetched %d times, want %d (one chain walk)", got, want)
	}
}

func TestFollowerGivesUpAtItsOwnDeadline(t *testing.T) {
	w, anchors := buildWorld(t, worldOpts{})
	v := newValidator(t, anchors, nil)
	fl, leader := v.flights.join("example.test.")
	if !leader {
		t.Fatal("first join does not lead")
	}
	defer v.flights.land("example.test.", fl, &keyEntry{verdict: bogus(edeBogus, "test over")})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	got := v.Validate(ctx, w, w.reply("www.example.test.", dns.TypeA))
	if got.Security == cache.Secure || got.EDE != edeDNSKEYMissing {
		t.Fatalf("got %+v, want a failure with EDE 9 at the deadline", got)
	}
}
