package resolver

import (
	_ "embed"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

//go:embed named.root
var ianaRootHints string

// IANARootHints returns the built-in root hints (InterNIC named.root).
func IANARootHints() []dns.RR {
	rrs, err := ParseRootHints(strings.NewReader(ianaRootHints), "named.root")
	if err != nil {
		panic("embedded root hints: " + err.Error())
	}
	return rrs
}

// ParseRootHints reads root hints in named.root (zone file) format: NS
// records for the root and A/AAAA records for the servers. The error names
// the file and line.
func ParseRootHints(r io.Reader, file string) ([]dns.RR, error) {
	zp := dns.NewZoneParser(r, ".", file)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		switch rr.(type) {
		case *dns.NS, *dns.A, *dns.AAAA:
			rrs = append(rrs, rr)
		default:
			return nil, fmt.Errorf("%s: %s record for %s: root hints hold only NS, A and AAAA", file, dns.TypeToString[rr.Header().Rrtype], rr.Header().Name)
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("root hints: %w", err)
	}
	if len(rootServerAddrs(rrs)) == 0 {
		return nil, fmt.Errorf("%s: no address for any root NS name", file)
	}
	return rrs, nil
}

// rootServerAddrs returns the addresses of the root NS names in hints.
func rootServerAddrs(hints []dns.RR) []netip.Addr {
	names := map[string]bool{}
	for _, rr := range hints {
		if ns, ok := rr.(*dns.NS); ok && ns.Hdr.Name == "." {
			names[strings.ToLower(ns.Ns)] = true
		}
	}
	var addrs []netip.Addr
	for _, rr := range hints {
		if !names[strings.ToLower(rr.Header().Name)] {
			continue
		}
		if a, ok := rrAddr(rr); ok {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// rrAddr returns the address of an A or AAAA record.
func rrAddr(rr dns.RR) (netip.Addr, bool) {
	switch v := rr.(type) {
	case *dns.A:
		a, ok := netip.AddrFromSlice(v.A.To4())
		return a, ok
	case *dns.AAAA:
		a, ok := netip.AddrFromSlice(v.AAAA.To16())
		return a.Unmap(), ok && !a.Is4In6()
	}
	return netip.Addr{}, false
}
