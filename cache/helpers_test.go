package cache

import (
	"testing"

	"github.com/miekg/dns"
)

func mustRR(tb testing.TB, s string) dns.RR {
	tb.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		tb.Fatalf("parse %q: %v", s, err)
	}
	return rr
}

// testSig is an RRSIG over (name, covered) with a 64-byte signature that
// expires at the given serial time.
func testSig(name string, covered uint16, ttl, expiration uint32) *dns.RRSIG {
	return &dns.RRSIG{
		Hdr:         dns.RR_Header{Name: name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: ttl},
		TypeCovered: covered, Algorithm: dns.ECDSAP256SHA256, Labels: 3, OrigTtl: ttl,
		Expiration: expiration, Inception: 1, KeyTag: 12345, SignerName: "example.com.",
		Signature: "3Qmh2aJwDq3tpaqlT8hCAnNRkTzTpTm3CmoaSgMAZqP4UfUv7O6ZKQAtfYR7Q3HUSyApEMqGK6CmW4O0AJO7mQ==",
	}
}

// entrySize is the estimate Put counts for e under k.
func entrySize(k Key, e *Entry) int64 { return newItem(k, e, 0).cost() }
