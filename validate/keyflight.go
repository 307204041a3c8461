package validate

import (
	"context"
	"slices"
	"sync"
)

// keyFlight is one zone's key validation in progress. Validations that
// need the same zone's keys while it runs wait for it instead of fetching
// and verifying the DS and DNSKEY sets again, as Unbound's mesh lets every
// query waiting on a key prime share it: a cold burst of names in one zone
// (dnsperf over a new delegation) costs one chain walk, not one per name.
type keyFlight struct {
	done chan struct{}
	e    *keyEntry // set before done is closed
}

type keyFlights struct {
	mu sync.Mutex
	m  map[string]*keyFlight
}

// join returns the flight for zone and whether the caller leads it, in
// which case it must call land when done.
func (fs *keyFlights) join(zone string) (*keyFlight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fl, ok := fs.m[zone]; ok {
		return fl, false
	}
	if fs.m == nil {
		fs.m = map[string]*keyFlight{}
	}
	fl := &keyFlight{done: make(chan struct{})}
	fs.m[zone] = fl
	return fl, true
}

func (fs *keyFlights) land(zone string, fl *keyFlight, e *keyEntry) {
	fs.mu.Lock()
	delete(fs.m, zone)
	fs.mu.Unlock()
	fl.e = e
	close(fl.done)
}

// sharedZoneKeys is walk run once per zone across concurrent validations.
// A follower whose leader ended transiently (its deadline or its work cap,
// which say nothing of the zone) walks the chain itself on its own budget.
// A validation that re-enters a zone it leads (a DS reply signed by the
// child, say) walks again rather than wait on itself; a follower gives up
// at its own deadline, so two flights that wait on each other end there.
func (v *Validator) sharedZoneKeys(ctx context.Context, zone string, w *work, walk func() *keyEntry) *keyEntry {
	if slices.Contains(w.leading, zone) {
		return walk()
	}
	fl, leader := v.flights.join(zone)
	if leader {
		w.leading = append(w.leading, zone)
		e := walk()
		w.leading = slices.DeleteFunc(w.leading, func(z string) bool { return z == zone })
		v.flights.land(zone, fl, e)
		return e
	}
	select {
	case <-fl.done:
		if !fl.e.transient {
			return fl.e
		}
		return walk()
	case <-ctx.Done():
		vd := bogus(edeDNSKEYMissing, "deadline while another query validated %s's keys: %v", zone, ctx.Err())
		vd.transient = true
		return &keyEntry{verdict: vd}
	}
}
