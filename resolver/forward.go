package resolver

import (
	"math"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// forwarders maps each forward zone (lower case) to its servers.
type forwarders map[string][]netip.AddrPort

func newForwarders(zones []ForwardZone) forwarders {
	f := forwarders{}
	for _, fz := range zones {
		zone := strings.ToLower(dns.Fqdn(fz.Zone))
		f[zone] = append(f[zone], fz.Addrs...)
	}
	return f
}

// forwardZone returns the deepest forward zone at or above name.
func (r *Resolver) forwardZone(name string) (string, bool) {
	if len(r.fwd) == 0 {
		return "", false
	}
	for n := strings.ToLower(name); ; n = parentName(n) {
		if _, ok := r.fwd[n]; ok {
			return n, true
		}
		if n == "." {
			return "", false
		}
	}
}

// forwardDelegation is the cut of a forward zone: its forwarders stand in
// for the zone's servers under the zone's own name, already looked up, so
// nothing is ever resolved to find more of them. It is built from the
// configuration each time and never from the cache: no NS set a forwarder
// sent can become a cut (MaginotDNS, BIND CVE-2021-25220).
func (r *Resolver) forwardDelegation(zone string) *delegation {
	d := &delegation{
		zone:    zone,
		servers: []nsServer{{name: zone}},
		looked:  map[string]bool{zone: true},
		ports:   map[netip.Addr]uint16{},
		forward: true,
		ttl:     math.MaxUint32,
	}
	for _, ap := range r.fwd[zone] {
		a := ap.Addr().Unmap()
		if !containsAddr(d.servers[0].addrs, a) {
			d.servers[0].addrs = append(d.servers[0].addrs, a)
		}
		if ap.Port() != 0 {
			d.ports[a] = ap.Port()
		}
	}
	return d
}

// scrubReply passes a reply through the scrubber that fits the cut.
func (r *Resolver) scrubReply(q *query, m *dns.Msg) scrubbed {
	switch {
	case !q.cut.forward:
		s := scrub(m, q.cut.zone, q.askName, q.askType, q.req.budget.limits.MaxServersPerZone)
		s.zone = q.cut.zone
		return s
	case r.cfg.UnsafeForwardUnscrubbed:
		return scrubbed{msg: m, zone: q.cut.zone}
	}
	s := scrubForwarded(m, q.cut.zone, q.askName, q.askType, q.req.budget.limits.MaxServersPerZone)
	s.zone = r.anchoredZone(s.zone, q.askName, q.askType)
	return s
}

// anchoredZone returns the trust anchor between zone and the name when
// there is one: its data must be signed, so a forwarder that strips the
// signatures of a reply naming no zone gets Bogus, not the Indeterminate
// of a forward zone above every anchor.
func (r *Resolver) anchoredZone(zone, name string, qtype uint16) string {
	if r.deps.Validator == nil {
		return zone
	}
	if qtype == dns.TypeDS && name != "." {
		name = parentName(name) // DS is the parent's data
	}
	if a, ok := r.deps.Validator.ClosestAnchor(name); ok && strictlyBelow(a, zone) {
		return a
	}
	return zone
}

// scrubForwarded is scrub for a forwarder's reply. The forwarder answers
// recursively for every name in the forward zone, so the zone is its
// bailiwick: records for names outside it are dropped like any other
// server's out-of-zone data (the BIND CVE-2021-25220 fix). It names no
// delegation the iterator may follow: its NS records and all its
// additional addresses are dropped, so nothing it says can steer or seed
// iteration (MaginotDNS). The answer keeps the asked RRset or the first
// link of a chain; a target outside the zone is resolved where it lives.
func scrubForwarded(in *dns.Msg, zone, name string, qtype uint16, maxNS int) scrubbed {
	s := scrub(in, zone, name, qtype, maxNS)
	m := s.msg
	m.Ns = rrsOfTypes(m.Ns, dns.TypeSOA, dns.TypeDS, dns.TypeNSEC, dns.TypeNSEC3)
	m.Extra = rrsOfType(m.Extra, dns.TypeOPT)
	// An NS set at or above the forward zone in a reply without data or
	// SOA still marks it lame (s.upward), as Unbound takes it.
	s.zone = forwardedZone(m, zone, name)
	return s
}

// forwardedZone names the zone a forwarded reply speaks from, for the
// validator: the owner of the SOA of a negative answer, else the signer
// of its signatures, when that lies between the forward zone and the name;
// else the forward zone. The chain of trust to that zone is still walked
// from the anchors, so a reply cannot vouch for its own claim.
func forwardedZone(m *dns.Msg, fzone, name string) string {
	fits := func(z string) bool { return inBailiwick(z, fzone) && inBailiwick(name, z) }
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok && fits(soa.Hdr.Name) {
			return strings.ToLower(soa.Hdr.Name)
		}
	}
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			if sig, ok := rr.(*dns.RRSIG); ok && fits(sig.SignerName) {
				return strings.ToLower(sig.SignerName)
			}
		}
	}
	return fzone
}
