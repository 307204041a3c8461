package resolver

import (
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// delegation is a zone cut: the zone and the servers that answer for it.
type delegation struct {
	zone string
	// servers are the NS names, lower case, at most MaxServersPerZone,
	// with their addresses: a slice, not maps by name, since every cold
	// resolution builds a cut and a map costs allocations (issue #6).
	servers   []nsServer
	looked    map[string]bool // NS names whose addresses were looked up; nil until one is
	fromHints bool
	fromCache bool // built from cached records, not from a referral just received
	// ttl is the seconds the NS set has left (the hints: unbounded). A
	// delegation learnt through this one lives no longer.
	ttl uint32
	// childNSTried and parentGlueTried: the last resorts of a cut whose
	// servers all failed were used (see lastResort); each is used once.
	childNSTried, parentGlueTried bool
	// forward marks a forward zone's cut: its servers are recursive and
	// asked with RD=1, at the ports in ports (53 when absent).
	forward bool
	ports   map[netip.Addr]uint16
}

type nsServer struct {
	name  string
	addrs []netip.Addr
}

// port returns the port to ask a server of the cut on.
func (d *delegation) port(a netip.Addr) uint16 {
	if p, ok := d.ports[a]; ok {
		return p
	}
	return 53
}

// oneServerCut is a cut of a zone with a single NS record, its server
// and the server's first address, allocated as one instead of three:
// every cold name builds its cut (issue #6), and for a larger cut the
// room would cost more bytes than the allocations it saves.
type oneServerCut struct {
	d      delegation
	server [1]nsServer
	addr   [1]netip.Addr
}

func newDelegation(zone string, ns []dns.RR, maxServers int) *delegation {
	var d *delegation
	var room []netip.Addr // for the first server's addresses
	if n := min(len(ns), maxServers); n == 1 {
		one := new(oneServerCut)
		d, room = &one.d, one.addr[:0]
		d.servers = one.server[:0]
	} else {
		d = &delegation{servers: make([]nsServer, 0, n)}
	}
	d.zone, d.ttl = strings.ToLower(zone), math.MaxUint32
	for _, rr := range ns {
		n, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		d.ttl = min(d.ttl, n.Hdr.Ttl)
		if len(d.servers) >= maxServers {
			continue
		}
		if name := strings.ToLower(n.Ns); !d.isNSName(name) {
			d.servers = append(d.servers, nsServer{name: name, addrs: room})
			room = nil
		}
	}
	return d
}

// addNames adds the NS names of ns not yet in the cut, up to maxServers
// names in all, and reports how many it added.
func (d *delegation) addNames(ns []dns.RR, maxServers int) int {
	added := 0
	for _, rr := range ns {
		n, ok := rr.(*dns.NS)
		if !ok || len(d.servers) >= maxServers {
			continue
		}
		if name := strings.ToLower(n.Ns); !d.isNSName(name) {
			d.servers = append(d.servers, nsServer{name: name})
			added++
		}
	}
	return added
}

// addAddrs attaches address records to the NS names they belong to.
func (d *delegation) addAddrs(rrs []dns.RR) {
	for _, rr := range rrs {
		i := d.index(strings.ToLower(rr.Header().Name))
		if a, ok := rrAddr(rr); ok && i >= 0 && !containsAddr(d.servers[i].addrs, a) {
			d.servers[i].addrs = append(d.servers[i].addrs, a)
		}
	}
}

// addAddrsFor attaches the address records at the end of an NS name's
// lookup to that name, also when a CNAME led there (Unbound follows them).
// It reports whether any address was new; ns is one of the cut's names.
func (d *delegation) addAddrsFor(ns string, rrs []dns.RR) bool {
	i := d.index(ns)
	if i < 0 {
		return false
	}
	added := false
	for _, rr := range rrs {
		if a, ok := rrAddr(rr); ok && !containsAddr(d.servers[i].addrs, a) {
			d.servers[i].addrs = append(d.servers[i].addrs, a)
			added = true
		}
	}
	return added
}

// index returns the position of the NS name in servers, or -1.
func (d *delegation) index(name string) int {
	for i := range d.servers {
		if d.servers[i].name == name {
			return i
		}
	}
	return -1
}

func (d *delegation) isNSName(name string) bool { return d.index(name) >= 0 }

// addrsOf returns the addresses known for the NS name.
func (d *delegation) addrsOf(name string) []netip.Addr {
	if i := d.index(name); i >= 0 {
		return d.servers[i].addrs
	}
	return nil
}

// addresses returns every known server address of the cut usable over the
// allowed address families.
func (d *delegation) addresses(v4, v6 bool) []netip.Addr {
	return d.appendAddresses(nil, v4, v6)
}

// appendAddresses appends addresses's result to out, which lets stepSend
// keep them on its stack: it runs once per upstream query (issue #6).
func (d *delegation) appendAddresses(out []netip.Addr, v4, v6 bool) []netip.Addr {
	for _, s := range d.servers {
		for _, a := range s.addrs {
			if (a.Is4() && v4) || (a.Is6() && v6) {
				out = append(out, a)
			}
		}
	}
	return out
}

// unresolved returns NS names without a usable address that were never
// looked up, names outside the zone first: a name inside the zone without
// glue can only be found by asking the zone's own servers.
func (d *delegation) unresolved(v4, v6 bool) []string {
	var out, inside []string
	for _, s := range d.servers {
		n := s.name
		if d.looked[n] || d.usable(n, v4, v6) {
			continue
		}
		if inBailiwick(n, d.zone) {
			inside = append(inside, n)
		} else {
			out = append(out, n)
		}
	}
	return append(out, inside...)
}

// incomplete returns NS names never looked up that have addresses of
// some allowed family but not of all.
func (d *delegation) incomplete(v4, v6 bool) []string {
	var out []string
	for _, s := range d.servers {
		n := s.name
		if !d.looked[n] && d.usable(n, v4, v6) && len(d.lacking(n, v4, v6)) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// lacking returns the address types of the allowed families that the NS
// name has no address of.
func (d *delegation) lacking(name string, v4, v6 bool) []uint16 {
	has4, has6 := false, false
	for _, a := range d.addrsOf(name) {
		has4, has6 = has4 || a.Is4(), has6 || a.Is6()
	}
	var ts []uint16
	if v4 && !has4 {
		ts = append(ts, dns.TypeA)
	}
	if v6 && !has6 {
		ts = append(ts, dns.TypeAAAA)
	}
	return ts
}

// usable reports whether the NS name has an address of an allowed family.
func (d *delegation) usable(name string, v4, v6 bool) bool {
	for _, a := range d.addrsOf(name) {
		if (a.Is4() && v4) || (a.Is6() && v6) {
			return true
		}
	}
	return false
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if a == b {
			return true
		}
	}
	return false
}

// hintsDelegation builds the root cut from the configured hints.
func (r *Resolver) hintsDelegation() *delegation {
	d := newDelegation(".", r.roots, r.cfg.Limits.MaxServersPerZone)
	d.addAddrs(r.roots)
	d.fromHints = true
	d.ttl = math.MaxUint32
	return d
}

// cachedDelegation returns the cut at zone if its NS set is cached,
// with whatever addresses the cache holds for the NS names.
func (r *Resolver) cachedDelegation(zone string, now time.Time) *delegation {
	var d *delegation
	// Read, not Get: the cut only takes names and addresses from the
	// records, and every cold name passes here (issue #6).
	r.cache.Read(cache.NewKey(zone, dns.TypeNS, dns.ClassINET), now, func(e cache.Entry, ttl uint32) {
		if e.Negative() {
			return
		}
		d = newDelegation(zone, e.RRs, r.cfg.Limits.MaxServersPerZone)
		if len(d.servers) > 0 {
			d.ttl = ttl // the stored records carry their TTLs as received
		}
	})
	if d == nil {
		return nil
	}
	d.fromCache = true
	for _, s := range d.servers {
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			r.cache.Read(cache.NewKey(s.name, t, dns.ClassINET), now, func(e cache.Entry, _ uint32) { d.addAddrs(e.RRs) })
		}
	}
	return d
}

// findCut returns the deepest cached cut at or above name, or the root
// hints when nothing is cached.
func (r *Resolver) findCut(name string) *delegation {
	// One reading of the clock for the whole walk, not one per label:
	// every cold name walks several (issue #6).
	now := r.clock.Now()
	for n := strings.ToLower(name); ; n = parentName(n) {
		d := r.cachedDelegation(n, now)
		if n == "." && (d == nil || len(d.addresses(r.cfg.DoIPv4, r.cfg.DoIPv6)) == 0) {
			// A primed root NS set without glue is no use: the hints know
			// where the root servers are.
			return r.hintsDelegation()
		}
		if d != nil {
			return d
		}
	}
}
