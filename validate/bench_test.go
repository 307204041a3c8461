package validate

import (
	"context"
	"testing"

	"github.com/miekg/dns"
)

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []uint8{dns.RSASHA256, dns.ECDSAP256SHA256, dns.ED25519, dns.ED448} {
		b.Run(dns.AlgorithmToString[alg], func(b *testing.B) {
			k := newKey(b, "example.test.", alg, false)
			set := rrs(b, "www.example.test. 3600 IN A 192.0.2.1", "www.example.test. 3600 IN A 192.0.2.2")
			sig := k.sign(b, set, "example.test.", goodWindow)
			v := newValidator(b, nil, nil)
			b.ReportAllocs()
			for b.Loop() {
				// The key is decoded in the loop, as miekg's Verify did.
				if err := v.verifySig(sig, newZoneKey(k.rr), set); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkColdChain validates one answer from an empty key cache: the
// root, test. and example.test. DNSKEYs, two DS sets and the answer.
func BenchmarkColdChain(b *testing.B) {
	w, anchors := buildWorld(b, worldOpts{})
	r := w.reply("www.example.test.", dns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		v := newValidator(b, anchors, nil)
		if got := v.Validate(context.Background(), w, r); got.Verifications != 6 {
			b.Fatalf("%+v", got)
		}
	}
}

func BenchmarkWarmAnswer(b *testing.B) {
	w, anchors := buildWorld(b, worldOpts{})
	r := w.reply("www.example.test.", dns.TypeA)
	v := newValidator(b, anchors, nil)
	v.Validate(context.Background(), w, r)
	b.ReportAllocs()
	for b.Loop() {
		v.Validate(context.Background(), w, r)
	}
}
