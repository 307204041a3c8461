package transport

import (
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// serverInfo is what the Client remembers about one server's quirks. The
// zero value is a well-behaved server.
type serverInfo struct {
	// caseExemptUntil: the server was seen over TCP to answer with the
	// question's letter case changed, so 0x20 is off for it until then.
	caseExemptUntil time.Time
	// plainUntil: the server rejected or ignored EDNS, but answered plain
	// DNS; queries go without OPT until then.
	plainUntil time.Time
	// ednsTimeouts counts EDNS queries in a row that got no answer from a
	// server never seen to answer EDNS.
	ednsTimeouts uint8
	// ednsSeen: the server once answered a query carrying EDNS.
	ednsSeen bool

	// cookieSeen: the server returned a valid server cookie, so a UDP reply
	// without our client cookie is not from it (RFC 7873 §5.3).
	cookieSeen bool
	// serverCookie is the last server cookie it gave for cookieClient.
	serverCookie []byte
	cookieClient [8]byte

	// unwanted counts replies that failed a check (wrong ID, question or
	// cookie) since unwantedSince; past the threshold the server is asked
	// over TCP until tcpUntil (spoofing pressure).
	unwanted      int
	unwantedSince time.Time
	tcpUntil      time.Time
	// suspectUntil: two different acceptable replies to one query were
	// seen (on-path injection), so every reply is held until then.
	suspectUntil time.Time
	// slowRTT is an RTT estimate that rises at once and falls slowly: an
	// injector can only make replies arrive earlier, so it cannot drag
	// the Hold-On window below the genuine reply's arrival quickly.
	slowRTT time.Duration
	// fastRTT tracks the fastest replies (noteRTT): queueing spikes
	// barely lift it and forgeries drag it down no faster than slowRTT.
	fastRTT time.Duration
	fastAt  time.Time
}

// serverTable is a bounded LRU of serverInfo: a resolver talks to an
// unbounded set of servers, memory must not follow it. Entries are
// pointers, changed in place by update: a copy handed to update's
// function would be allocated on every exchange (issue #6).
type serverTable struct {
	mu  sync.Mutex
	lru *simplelru.LRU[netip.AddrPort, *serverInfo] // guarded by mu
}

func newServerTable(size int) *serverTable {
	lru, err := simplelru.NewLRU[netip.AddrPort, *serverInfo](size, nil)
	if err != nil {
		panic(err) // size is checked positive by Config.withDefaults
	}
	return &serverTable{lru: lru}
}

func (t *serverTable) get(s netip.AddrPort) serverInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	if info, ok := t.lru.Get(s); ok {
		return *info
	}
	return serverInfo{}
}

// update applies f to the server's entry under the lock, so concurrent
// exchanges do not lose each other's observations.
func (t *serverTable) update(s netip.AddrPort, f func(*serverInfo)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	info, ok := t.lru.Get(s)
	if !ok {
		info = new(serverInfo)
		t.lru.Add(s, info)
	}
	f(info)
}
