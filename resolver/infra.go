package resolver

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Server selection constants, after Unbound's infra cache.
const (
	// unknownRTT is the estimate for a server never measured: low enough
	// that unmeasured servers get explored, as Unbound's 376 ms.
	unknownRTT = 376 * time.Millisecond
	// selectionBand: every server within this much of the fastest is a
	// candidate, picked at random, so load spreads and estimates stay
	// fresh (Unbound's 400 ms band).
	selectionBand = 400 * time.Millisecond
	// minTimeout and maxTimeout bound one try; the threat model's OFF-8
	// wants no upstream socket open longer than 3 s.
	minTimeout = 100 * time.Millisecond
	// minRTTVarTerm is the least slack a timeout leaves over the RTT.
	minRTTVarTerm = 50 * time.Millisecond
	maxTimeout    = 3 * time.Second
	// deadAfter consecutive timeouts mark a server dead for deadFor,
	// after which one probe is let through.
	deadAfter = 3
	deadFor   = 60 * time.Second
	// lameFor is how long a server stays lame for a zone.
	lameFor = 15 * time.Minute
	// tcpFor is how long a server that answered only over TCP is asked
	// over TCP first; tcpOnlyAfter is how many UDP failures in a row,
	// each answered by the TCP retry, make it so. One is not enough: a
	// busy server drops a datagram now and then, and a UDP query costs a
	// fraction of a TCP connection (measured on bench/run's cold runs, a
	// single lost reply sent two thirds of a zone's queries over TCP).
	tcpFor       = 15 * time.Minute
	tcpOnlyAfter = 3
	// maxLameZones bounds the zones remembered per server.
	maxLameZones = 64
	// infraEntries bounds the number of servers remembered.
	infraEntries = 10000
)

// serverInfo is what the infra cache knows of one server address.
type serverInfo struct {
	srtt, rttvar time.Duration // zero srtt: never measured
	timeouts     int           // consecutive
	deadUntil    time.Time
	tcpUntil     time.Time            // UDP failed where TCP worked: ask over TCP
	tcpWins      int                  // consecutive UDP failures the TCP retry answered
	lame         map[string]time.Time // zone -> until
}

// infraCache remembers per server address its smoothed RTT, its failures
// and the zones for which it is lame. It is safe for concurrent use.
type infraCache struct {
	clock Clock
	mu    sync.Mutex
	lru   *simplelru.LRU[netip.Addr, *serverInfo] // guarded by mu
}

func newInfraCache(c Clock) *infraCache {
	l, err := simplelru.NewLRU[netip.Addr, *serverInfo](infraEntries, nil)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &infraCache{clock: c, lru: l}
}

func (ic *infraCache) get(a netip.Addr) *serverInfo {
	si, ok := ic.lru.Get(a)
	if !ok {
		si = &serverInfo{}
		ic.lru.Add(a, si)
	}
	return si
}

// estimate is the expected RTT of a server, penalised for timeouts.
func (si *serverInfo) estimate() time.Duration {
	e := unknownRTT
	if si.srtt > 0 {
		e = si.srtt
	}
	for i := 0; i < si.timeouts && e < maxTimeout; i++ {
		e *= 2
	}
	return e
}

// timeout is how long one try to the server may wait: RFC 6298's
// srtt + 4·rttvar, doubled for each consecutive timeout. The variance
// term has a floor: on a path of constant delay rttvar decays to nothing,
// and a reply a few milliseconds late (a TCP re-ask after an injection,
// ONP-1) would then time out.
func (si *serverInfo) timeout() time.Duration {
	t := unknownRTT
	if si.srtt > 0 {
		t = si.srtt + max(4*si.rttvar, si.srtt/2, minRTTVarTerm)
	}
	for i := 0; i < si.timeouts && t < maxTimeout; i++ {
		t *= 2
	}
	return min(max(t, minTimeout), maxTimeout)
}

// pick is the server choose picked and what the query to it needs to
// know of it.
type pick struct {
	addr    netip.Addr
	timeout time.Duration // for one try
	srtt    time.Duration // 0 if never measured
	tcp     bool          // known to answer only over TCP
}

// choose picks a server for zone among addrs, skipping those in skip:
// at random among those whose estimate is within selectionBand of the
// best. Lame and dead servers are used only when nothing else is left.
// It reports false when every server is skipped.
func (ic *infraCache) choose(addrs []netip.Addr, zone string, skip func(netip.Addr) bool) (pick, bool) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	now := ic.clock.Now()
	// Each server's entry is looked up once, and what the query needs of
	// the one picked is read under the same lock: choose runs for every
	// upstream query (issue #6).
	var room [16]candidate
	cands, good := room[:0], 0
	for _, a := range addrs {
		if skip(a) {
			continue
		}
		si := ic.get(a)
		c := candidate{a: a, si: si, estimate: si.estimate(),
			good: !now.Before(si.lame[zone]) && !now.Before(si.deadUntil)}
		if c.good {
			good++
		}
		cands = append(cands, c)
	}
	usable := func(c *candidate) bool { return c.good || good == 0 }
	best := time.Duration(math.MaxInt64)
	for i := range cands {
		if usable(&cands[i]) {
			best = min(best, cands[i].estimate)
		}
	}
	// One pass of reservoir sampling draws uniformly from the band.
	var chosen *candidate
	inBand := 0
	for i := range cands {
		if c := &cands[i]; usable(c) && c.estimate <= best+selectionBand {
			if inBand++; rand.IntN(inBand) == 0 {
				chosen = c
			}
		}
	}
	if chosen == nil {
		return pick{}, false
	}
	si := chosen.si
	return pick{addr: chosen.a, timeout: si.timeout(), srtt: si.srtt, tcp: now.Before(si.tcpUntil)}, true
}

// candidate is a server choose may pick.
type candidate struct {
	a        netip.Addr
	si       *serverInfo
	estimate time.Duration
	good     bool // neither lame for the zone nor dead
}

// answerWay is how a server's reply to a query's own exchange came.
type answerWay uint8

const (
	overUDP             answerWay = iota // its UDP works
	overTCP                              // over TCP, asked so from the start
	overTCPAfterLostUDP                  // over TCP after the query's UDP exchange was lost
)

// answered records a server's reply: the round trip it took (RFC 6298
// smoothing) and how it came. The tcpOnlyAfter-th answer in a row over
// TCP after lost UDP has the server asked over TCP first; an answer over
// UDP starts that count again. One lock for all of it: every upstream
// reply passes here (issue #6).
func (ic *infraCache) answered(a netip.Addr, rtt time.Duration, way answerWay) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	si := ic.get(a)
	si.noteRTT(rtt)
	switch way {
	case overUDP:
		si.tcpWins = 0
	case overTCPAfterLostUDP:
		if si.tcpWins++; si.tcpWins >= tcpOnlyAfter {
			si.tcpUntil = ic.clock.Now().Add(tcpFor)
		}
	}
}

// noteRTT takes a measured round trip into the estimate; a server that
// answers is not dead.
func (si *serverInfo) noteRTT(d time.Duration) {
	si.timeouts = 0
	si.deadUntil = time.Time{}
	if si.srtt == 0 {
		si.srtt, si.rttvar = d, d/2
		return
	}
	diff := si.srtt - d
	if diff < 0 {
		diff = -diff
	}
	si.rttvar = (3*si.rttvar + diff) / 4
	si.srtt = (7*si.srtt + d) / 8
}

// srtt returns the smoothed RTT of a server, 0 if never measured.
func (ic *infraCache) srtt(a netip.Addr) time.Duration {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.get(a).srtt
}

// timedOut records a try that got no acceptable reply.
func (ic *infraCache) timedOut(a netip.Addr) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	si := ic.get(a)
	si.timeouts++
	if si.timeouts >= deadAfter {
		si.deadUntil = ic.clock.Now().Add(deadFor)
	}
}

// markLame records that a answers badly for zone (REFUSED, SERVFAIL, an
// upward referral, a reply that is neither answer nor referral).
func (ic *infraCache) markLame(a netip.Addr, zone string) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	si := ic.get(a)
	if si.lame == nil || len(si.lame) >= maxLameZones {
		si.lame = map[string]time.Time{}
	}
	si.lame[zone] = ic.clock.Now().Add(lameFor)
}
