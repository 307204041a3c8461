package resolver

import (
	"errors"
	"fmt"
	"sync"
)

// Errors that end a client query with SERVFAIL. Each names the limit that
// was hit so that logs and the Extended DNS Error say why.
var (
	ErrUpstreamLimit = errors.New("upstream query limit reached")
	ErrReferralLimit = errors.New("referral limit reached")
	ErrCNAMELimit    = errors.New("CNAME chain limit reached")
	ErrNSLookupLimit = errors.New("NS name lookup limit reached")
	ErrDepthLimit    = errors.New("sub-query depth limit reached")
	ErrLoop          = errors.New("dependency loop between name server names")
	ErrNoServers     = errors.New("no usable name server")
)

// budget is the work allowance of one client query, shared by every
// sub-query it spawns (Unbound's target_count, PowerDNS max-qperq).
type budget struct {
	// limits are the Resolver's own: a copy made every client query one
	// size class larger (issue #6).
	limits *Limits

	mu        sync.Mutex
	upstream  int             // guarded by mu
	nsLookups int             // guarded by mu
	active    map[string]bool // sub-queries in progress, nil before the first; guarded by mu
}

// spendUpstream accounts for one query sent upstream.
func (b *budget) spendUpstream() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.upstream >= b.limits.MaxUpstreamQueries {
		return fmt.Errorf("%w (%d)", ErrUpstreamLimit, b.limits.MaxUpstreamQueries)
	}
	b.upstream++
	return nil
}

// spendNSLookup accounts for one NS name resolved because it had no glue.
func (b *budget) spendNSLookup() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nsLookups >= b.limits.MaxNSLookups {
		return fmt.Errorf("%w (%d)", ErrNSLookupLimit, b.limits.MaxNSLookups)
	}
	b.nsLookups++
	return nil
}

// enter marks a sub-query for key as in progress; it fails when the same
// question is already being resolved further up, which is a cycle such as
// a NS ns.b, b NS ns.a without glue (TsuNAME).
func (b *budget) enter(key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active[key] {
		return fmt.Errorf("%w: %s", ErrLoop, key)
	}
	if b.active == nil {
		b.active = map[string]bool{}
	}
	b.active[key] = true
	return nil
}

func (b *budget) leave(key string) {
	b.mu.Lock()
	delete(b.active, key)
	b.mu.Unlock()
}
