package simnet

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// DefaultTTL is the TTL of the records the Hierarchy makes up (SOA, NS,
// glue). The SOA MINIMUM is NegativeTTL, so negative answers live 300 s.
const (
	DefaultTTL  = 3600
	NegativeTTL = 300
)

// Hierarchy builds a DNS tree on a Network in a few lines. Each zone gets
// servers at its addresses; the builder completes unsigned zones with an
// SOA and apex NS, puts the delegation (NS and required glue) into the
// closest enclosing zone built, and puts the addresses of NS names into the
// zone authoritative for them. Signed zones are served exactly as given and
// never modified, so their parents and NS addresses must be in the texts.
//
// The builder methods panic on malformed input, like regexp.MustCompile:
// they are meant for test set-up.
type Hierarchy struct {
	// Net is the network the servers live on.
	Net *Network

	mu    sync.Mutex
	zones map[string]*built // by origin; guarded by mu
}

type built struct {
	zone   *Zone
	signed bool
	// ns maps the NS names the builder made or was given to their
	// addresses, in the order given.
	ns map[string][]netip.Addr
}

// NewHierarchy returns an empty hierarchy on a new Network.
func NewHierarchy(opts ...Option) *Hierarchy {
	return &Hierarchy{Net: New(opts...), zones: map[string]*built{}}
}

// Zone adds an unsigned zone served at addrs, one NS name per address
// (ns1.<origin>, ns2.<origin> ...; ns1.root-servers.test. ... for the root)
// unless text has its own apex NS.
func (h *Hierarchy) Zone(origin string, addrs []string, text string) *Zone {
	origin = strings.ToLower(dns.Fqdn(origin))
	ns := map[string][]string{}
	for i, a := range addrs {
		name := fmt.Sprintf("ns%d.%s", i+1, origin)
		if origin == "." {
			name = fmt.Sprintf("ns%d.root-servers.test.", i+1)
		}
		ns[name] = []string{a}
	}
	return h.add(origin, ns, text, false)
}

// ZoneWithNS adds an unsigned zone whose NS names and their addresses are
// given. The zone is served at every address. An NS name outside the zone
// gets no glue in the parent (a glueless delegation); its address records
// go into the zone authoritative for it if that zone is built. An NS name
// with no address is listed in NS only (a lame or dangling delegation).
func (h *Hierarchy) ZoneWithNS(origin string, ns map[string][]string, text string) *Zone {
	return h.add(strings.ToLower(dns.Fqdn(origin)), ns, text, false)
}

// SignedZone adds a pre-signed zone (ldns-signzone or dnssec-signzone
// output, or records signed in the test) served at addrs. The zone is
// neither completed nor changed: the DS and delegation must be in the
// parent's text when the parent is signed too.
func (h *Hierarchy) SignedZone(origin string, addrs []string, text string) *Zone {
	return h.add(strings.ToLower(dns.Fqdn(origin)), map[string][]string{"": addrs}, text, true)
}

func (h *Hierarchy) add(origin string, ns map[string][]string, text string, signed bool) *Zone {
	z, err := ParseZone(origin, text)
	if err != nil {
		panic(fmt.Sprintf("simnet: hierarchy: %v", err))
	}
	b := &built{zone: z, signed: signed, ns: map[string][]netip.Addr{}}
	var serveAt []netip.Addr
	for name, addrs := range ns {
		for _, a := range addrs {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				panic(fmt.Sprintf("simnet: hierarchy: zone %s: server address %q: %v", origin, a, err))
			}
			serveAt = append(serveAt, ip.Unmap())
			if name != "" {
				b.ns[strings.ToLower(dns.Fqdn(name))] = append(b.ns[strings.ToLower(dns.Fqdn(name))], ip.Unmap())
			}
		}
		if name != "" && len(addrs) == 0 {
			b.ns[strings.ToLower(dns.Fqdn(name))] = nil
		}
	}
	if !signed {
		complete(z, b.ns)
	}
	h.mu.Lock()
	if _, dup := h.zones[origin]; dup {
		h.mu.Unlock()
		panic(fmt.Sprintf("simnet: hierarchy: zone %s added twice", origin))
	}
	h.zones[origin] = b
	h.mu.Unlock()
	for _, ip := range serveAt {
		h.Net.AddServer(ip, z)
	}
	h.recompute()
	return z
}

// complete adds the SOA and apex NS that zone text usually leaves out.
func complete(z *Zone, ns map[string][]netip.Addr) {
	o := z.origin
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: o, Rrtype: t, Class: dns.ClassINET, Ttl: DefaultTTL}
	}
	names := sortedKeys(ns)
	if !z.hasBase(o, dns.TypeSOA) {
		mname := "ns1." + o
		if len(names) > 0 {
			mname = names[0]
		}
		_ = z.Add(&dns.SOA{Hdr: hdr(dns.TypeSOA), Ns: mname, Mbox: "hostmaster." + strings.TrimPrefix(o, "."),
			Serial: 1, Refresh: 3600, Retry: 900, Expire: 604800, Minttl: NegativeTTL})
	}
	if z.hasBase(o, dns.TypeNS) {
		return
	}
	for _, n := range names {
		_ = z.Add(&dns.NS{Hdr: hdr(dns.TypeNS), Ns: n})
	}
}

// recompute rebuilds every delegation and NS address the builder manages,
// so zones may be added in any order.
func (h *Hierarchy) recompute() {
	h.mu.Lock()
	defer h.mu.Unlock()
	known := h.knownAddrs()
	derived := map[*Zone][]dns.RR{}
	for origin, b := range h.zones {
		if p := h.enclosing(origin, false); p != nil && !p.signed {
			derived[p.zone] = append(derived[p.zone], h.delegation(b.zone, known)...)
		}
		if !b.signed {
			derived[b.zone] = append(derived[b.zone], apexGlue(b.zone, known)...)
		}
	}
	for name, addrs := range known {
		if p := h.enclosing(name, true); p != nil && !p.signed && !p.zone.hasBase(name, dns.TypeA) && !p.zone.hasBase(name, dns.TypeAAAA) {
			derived[p.zone] = append(derived[p.zone], addressRRs(name, addrs)...)
		}
	}
	for _, b := range h.zones {
		b.zone.setDerived(derived[b.zone])
	}
	h.Net.SetRoots(h.rootHintsLocked(known))
}

// knownAddrs collects the addresses of every NS name: those given to the
// builder and those in the zones' own records. The caller holds mu.
func (h *Hierarchy) knownAddrs() map[string][]netip.Addr {
	known := map[string][]netip.Addr{}
	for _, b := range h.zones {
		for name, addrs := range b.ns {
			known[name] = appendNew(known[name], addrs...)
		}
	}
	for _, b := range h.zones {
		for _, rr := range b.zone.baseRecords() {
			if ns, ok := rr.(*dns.NS); ok {
				name := strings.ToLower(ns.Ns)
				known[name] = appendNew(known[name], h.addrsIn(name)...)
			}
		}
	}
	return known
}

// addrsIn reads a name's A/AAAA records from the zones' own records.
func (h *Hierarchy) addrsIn(name string) []netip.Addr {
	var out []netip.Addr
	for _, b := range h.zones {
		for _, rr := range b.zone.baseRecords() {
			if !strings.EqualFold(rr.Header().Name, name) {
				continue
			}
			switch v := rr.(type) {
			case *dns.A:
				ip, _ := netip.AddrFromSlice(v.A.To4())
				out = append(out, ip)
			case *dns.AAAA:
				ip, _ := netip.AddrFromSlice(v.AAAA)
				out = append(out, ip)
			}
		}
	}
	return out
}

func appendNew(list []netip.Addr, addrs ...netip.Addr) []netip.Addr {
	for _, a := range addrs {
		dup := false
		for _, o := range list {
			dup = dup || o == a
		}
		if !dup {
			list = append(list, a)
		}
	}
	return list
}

// enclosing is the deepest built zone holding name: strictly above it, or,
// with self, possibly the zone at name. The caller holds mu.
func (h *Hierarchy) enclosing(name string, self bool) *built {
	n := name
	if !self {
		if n == "." {
			return nil
		}
		n = parent(n)
	}
	for ; ; n = parent(n) {
		if b := h.zones[n]; b != nil {
			return b
		}
		if n == "." {
			return nil
		}
	}
}

// delegation is what the parent holds for child: its apex NS and the glue
// for NS names inside the child (RFC 9471: glue that is required).
func (h *Hierarchy) delegation(child *Zone, known map[string][]netip.Addr) []dns.RR {
	var out []dns.RR
	for _, rr := range child.baseRecords() {
		ns, ok := rr.(*dns.NS)
		if !ok || !strings.EqualFold(ns.Hdr.Name, child.origin) {
			continue
		}
		out = append(out, dns.Copy(ns))
		name := strings.ToLower(ns.Ns)
		if dns.IsSubDomain(child.origin, name) {
			out = append(out, addressRRs(name, known[name])...)
		}
	}
	return out
}

// apexGlue gives a zone the addresses of its own NS names that lie inside
// it, even below a child's cut (as the root holds root-servers.net).
func apexGlue(z *Zone, known map[string][]netip.Addr) []dns.RR {
	var out []dns.RR
	for _, rr := range z.baseRecords() {
		if ns, ok := rr.(*dns.NS); ok && strings.EqualFold(ns.Hdr.Name, z.origin) {
			name := strings.ToLower(ns.Ns)
			if dns.IsSubDomain(z.origin, name) && !z.hasBase(name, dns.TypeA) && !z.hasBase(name, dns.TypeAAAA) {
				out = append(out, addressRRs(name, known[name])...)
			}
		}
	}
	return out
}

func addressRRs(name string, addrs []netip.Addr) []dns.RR {
	var out []dns.RR
	for _, a := range addrs {
		if a.Is4() {
			out = append(out, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: DefaultTTL}, A: a.AsSlice()})
		} else {
			out = append(out, &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: DefaultTTL}, AAAA: a.AsSlice()})
		}
	}
	return out
}

// RootHints returns the root zone's NS records and their addresses, for
// resolver.Config.RootHints. It is nil until a root zone is added.
func (h *Hierarchy) RootHints() []dns.RR {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rootHintsLocked(h.knownAddrs())
}

func (h *Hierarchy) rootHintsLocked(known map[string][]netip.Addr) []dns.RR {
	root := h.zones["."]
	if root == nil {
		return nil
	}
	var ns, addrs []dns.RR
	for _, rr := range root.zone.baseRecords() {
		if v, ok := rr.(*dns.NS); ok && v.Hdr.Name == "." {
			ns = append(ns, dns.Copy(v))
			addrs = append(addrs, addressRRs(strings.ToLower(v.Ns), known[strings.ToLower(v.Ns)])...)
		}
	}
	return append(ns, addrs...)
}

// ZoneAt returns the zone built at origin, or nil.
func (h *Hierarchy) ZoneAt(origin string) *Zone {
	h.mu.Lock()
	defer h.mu.Unlock()
	if b := h.zones[strings.ToLower(dns.Fqdn(origin))]; b != nil {
		return b.zone
	}
	return nil
}

// Server returns the server at addr (as written in the builder calls), or
// nil. It panics on a malformed address.
func (h *Hierarchy) Server(addr string) *Server {
	return h.Net.Server(netip.MustParseAddr(addr))
}

func sortedKeys(m map[string][]netip.Addr) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
