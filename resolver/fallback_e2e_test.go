package resolver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// TestRejectedKeyServerLeadsToTheOtherAddressFamily: the leaf's only NS
// name has IPv4 glue and an IPv6 address known only inside the leaf. When
// the IPv4 server's key reply fails validation and is rejected, the
// resolver looks up the name's IPv6 address (asking the rejected server
// itself, which may still tell it) and gets the keys there.
func TestRejectedKeyServerLeadsToTheOtherAddressFamily(t *testing.T) {
	const v6 = "fd00:56::1:1"
	cases := []struct {
		name      string
		doIPv6    bool
		rcode     int
		v6Queries bool
	}{
		{"IPv6AddressIsLookedUpAndUsed", true, dns.RcodeSuccess, true},
		{"WithoutIPv6TheRejectionStands", false, dns.RcodeServerFailure, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := buildE2E(t, leafSpec{signer: "go", alg: dns.ECDSAP256SHA256, mode: signModes[0], win: validWindow})
			srv6 := w.h.Net.AddServer(netip.MustParseAddr(v6), w.leaf)
			tamper(t, w.h, e2eLeafAddr, editAnswerSigs("example.test.", dns.TypeDNSKEY, flipSignature))
			e := w.resolverWith(t, func(cfg *Config) { cfg.DoIPv6 = c.doIPv6 })
			m := e.ask(t, "www.example.test.", dns.TypeA, askFlags{do: true})
			if m.Rcode != c.rcode || m.AuthenticatedData != (c.rcode == dns.RcodeSuccess) {
				t.Fatalf("%s AD=%v (EDE %v), want %s", dns.RcodeToString[m.Rcode], m.AuthenticatedData, edeOf(m), dns.RcodeToString[c.rcode])
			}
			if got := srv6.QueryCount() > 0; got != c.v6Queries {
				t.Errorf("IPv6 server asked: %v, want %v", got, c.v6Queries)
			}
		})
	}
}
