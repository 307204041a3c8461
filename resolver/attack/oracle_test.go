package attack

import (
	"context"
	"net/netip"
	"time"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
)

// watchQueries is the oracle: it polls an authoritative server's query log
// and calls f with every UDP query after the first seen, which reveals the
// resolver's source port, ID and 0x20 case exactly as an on-path observer
// (or a SAD DNS side channel) would. It returns when ctx ends. The caller
// reads seen before it starts the goroutine: read inside it, queries sent
// before the goroutine first ran would escape the attacker.
func watchQueries(ctx context.Context, s *simnet.Server, seen int, f func(simnet.QueryRecord)) {
	tick := time.NewTicker(500 * time.Microsecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		qs := s.Queries()
		for _, q := range qs[min(seen, len(qs)):] {
			if !q.TCP {
				f(q)
			}
		}
		seen = len(qs)
	}
}

// serverAP is the address the forgeries claim to come from.
func serverAP(s *simnet.Server) netip.AddrPort { return netip.AddrPortFrom(s.Addr(), 53) }
