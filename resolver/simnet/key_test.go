package simnet

import (
	"testing"

	"github.com/miekg/dns"
)

func TestCachedKeyIsMadeOncePerLabelAndRefusesUnknownAlgorithms(t *testing.T) {
	a, err := CachedKey("t", "example.test.", dns.ED25519)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := CachedKey("t", "example.test.", dns.ED25519)
	c, _ := CachedKey("u", "example.test.", dns.ED25519)
	if a.RR != b.RR || a.RR.PublicKey == c.RR.PublicKey || a.RR.Flags != 257 {
		t.Fatalf("same label gave %v and %v, other label %v", a.RR, b.RR, c.RR)
	}
	if _, err := CachedKey("t", "example.test.", dns.ED448); err == nil {
		t.Fatal("ED448 key made, want an error: simnet knows no key size for it")
	}
}
