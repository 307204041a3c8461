package validate

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// TestAnswerOfAnUnanchoredServerIsValidatedUnderTheIslandOfTheName has
// the leaf's replies come from a server of the root, which no anchor
// covers, while an anchor sits at the leaf: a server for both may answer
// with no referral between.
func TestAnswerOfAnUnanchoredServerIsValidatedUnderTheIslandOfTheName(t *testing.T) {
	keys := []*testKey{newKey(t, leafName, dns.ECDSAP256SHA256, true), newKey(t, leafName, dns.ECDSAP256SHA256, false)}
	w, _ := buildWorld(t, worldOpts{leafKeys: keys})
	island, err := dns.NewRR(dsOf(t, keys[0]))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		mutate func(*dns.Msg)
		want   cache.Security
	}{
		{"SignedAnswerIsSecure", "www.example.test.", dns.TypeA, nil, cache.Secure},
		{"BadSignatureIsBogus", "www.example.test.", dns.TypeA, func(m *dns.Msg) { flipSig(m.Answer) }, cache.Bogus},
		{"UnsignedAnswerIsIndeterminate", "www.example.test.", dns.TypeA,
			func(m *dns.Msg) { m.Answer = without(m.Answer, isType(dns.TypeRRSIG)) }, cache.Indeterminate},
		{"DenialIsIndeterminate", "nope.example.test.", dns.TypeA, nil, cache.Indeterminate},
		{"WildcardAnswerIsIndeterminate", "x.wild.example.test.", dns.TypeA, nil, cache.Indeterminate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newValidator(t, []dns.RR{island}, nil)
			r := w.reply(tc.qname, tc.qtype)
			r.Zone = "."
			if tc.mutate != nil {
				tc.mutate(r.Msg)
			}
			if got := v.Validate(context.Background(), w, r); got.Security != tc.want {
				t.Fatalf("got %v (%s), want %v", got.Security, got.Reason, tc.want)
			}
		})
	}
}
