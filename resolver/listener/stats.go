package listener

import (
	"sync/atomic"

	"github.com/miekg/dns"
)

// Stats is a snapshot of the Server's counters since New.
type Stats struct {
	// Queries counts every client message read, dropped ones included.
	Queries uint64
	// Dropped counts messages answered with nothing: malformed beyond the
	// header, QR set, a reflection source port, a denied client, no free
	// slot (UDP) or no free TCP connection.
	Dropped uint64
	// Truncated counts UDP replies sent with TC set.
	Truncated uint64
	// Rcodes counts replies sent by their rcode, keyed by its name
	// ("NOERROR", "SERVFAIL", "BADVERS", ...).
	Rcodes map[string]uint64
}

// rcodeSlots covers the rcodes up to BADCOOKIE (23); others share the last.
const rcodeSlots = 24

type counters struct {
	queries, dropped, truncated atomic.Uint64
	rcodes                      [rcodeSlots + 1]atomic.Uint64
}

func (c *counters) countRcode(rcode int) {
	if rcode < 0 || rcode >= rcodeSlots {
		rcode = rcodeSlots
	}
	c.rcodes[rcode].Add(1)
}

// Stats returns the counters now.
func (s *Server) Stats() Stats {
	st := Stats{
		Queries:   s.stats.queries.Load(),
		Dropped:   s.stats.dropped.Load(),
		Truncated: s.stats.truncated.Load(),
		Rcodes:    map[string]uint64{},
	}
	for i := range s.stats.rcodes {
		n := s.stats.rcodes[i].Load()
		if n == 0 {
			continue
		}
		name, ok := dns.RcodeToString[i]
		if !ok || i == rcodeSlots {
			name = "OTHER"
		}
		st.Rcodes[name] += n
	}
	return st
}
