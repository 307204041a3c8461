package simnet

import (
	"crypto"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestRootSignedWithNSEC3HasSingleDotOwners(t *testing.T) {
	z, err := ParseZone(".", ". 3600 SOA a.root. h.root. 1 2 3 4 300\n. 3600 NS a.root.\ntest. 3600 NS ns.test.\n")
	if err != nil {
		t.Fatal(err)
	}
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET}, Flags: 257, Protocol: 3, Algorithm: dns.ED25519}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	if err := Sign(z, key, priv.(crypto.Signer), SignOptions{NSEC3: true, Inception: 1, Expiration: 4000000000}); err != nil {
		t.Fatalf("signing the root with NSEC3: %v", err)
	}
	n := 0
	for _, rr := range z.Records() {
		if rr.Header().Rrtype == dns.TypeNSEC3 {
			n++
			if name := rr.Header().Name; strings.HasSuffix(name, "..") || dns.CountLabel(name) != 1 {
				t.Errorf("NSEC3 owner %q, want one label under the root", name)
			}
		}
	}
	if n == 0 {
		t.Fatal("no NSEC3 records")
	}
}
