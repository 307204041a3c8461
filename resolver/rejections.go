package resolver

import (
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// rejections remembers, for one client query, which server answered each
// key lookup and which servers sent keys that failed validation, so that
// those are not asked again within the query.
type rejections struct {
	mu sync.Mutex
	// The maps stay nil until written: most queries never look up a key,
	// and each map costs allocations per query (issue #6).
	last  map[string]netip.Addr // "name/type" -> server of the last answer; guarded by mu
	avoid map[netip.Addr]bool   // guarded by mu
}

func rejectKey(name string, qtype uint16) string {
	return strings.ToLower(name) + "/" + dns.TypeToString[qtype]
}

// answered records the server that gave the answer to name/qtype; an
// answer from the cache has none.
func (rj *rejections) answered(name string, qtype uint16, server netip.Addr) {
	rj.mu.Lock()
	defer rj.mu.Unlock()
	if rj.last == nil {
		rj.last = map[string]netip.Addr{}
	}
	rj.last[rejectKey(name, qtype)] = server
}

// reject marks the server of the last answer to name/qtype to be avoided.
func (rj *rejections) reject(name string, qtype uint16) (netip.Addr, bool) {
	rj.mu.Lock()
	defer rj.mu.Unlock()
	srv, ok := rj.last[rejectKey(name, qtype)]
	if ok && srv.IsValid() {
		if rj.avoid == nil {
			rj.avoid = map[netip.Addr]bool{}
		}
		rj.avoid[srv] = true
	}
	return srv, ok
}

func (rj *rejections) avoided(a netip.Addr) bool {
	rj.mu.Lock()
	defer rj.mu.Unlock()
	return rj.avoid[a]
}
