package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// TestWildcardAnswersAreSynthesisedFromTheRememberedExpansion asks one
// name under each wildcard of the leaf, then others: with NSEC the span
// that proved the first expansion covers the others too, so their answers
// come from the remembered wildcard RRset without upstream traffic (RFC
// 8198 §5.3.3); with NSEC3 that depends on the hashes, and the answer must
// be the same either way. A CNAME expanded from a wildcard is followed.
func TestWildcardAnswersAreSynthesisedFromTheRememberedExpansion(t *testing.T) {
	cases := []struct {
		name, first, qname string
		qtype              uint16
		answer             string
	}{
		{"SiblingName", "x.wild.example.test.", "y.wild.example.test.", dns.TypeA, "y.wild.example.test. A 192.0.2.7"},
		{"DeeperName", "x.wild.example.test.", "a.b.wild.example.test.", dns.TypeA, "a.b.wild.example.test. A 192.0.2.7"},
		{"CNAMEIsFollowed", "x.cn.example.test.", "y.cn.example.test.", dns.TypeAAAA,
			"y.cn.example.test. CNAME www.example.test.; www.example.test. AAAA 2001:db8::1"},
	}
	for _, mode := range signModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			w := buildE2E(t, leafSpec{signer: "go", alg: dns.ECDSAP256SHA256, mode: mode, win: validWindow})
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					e := w.resolver(t)
					e.ask(t, c.first, c.qtype, askFlags{do: true})
					before := upstreamQueries(w.h)
					m := e.ask(t, c.qname, c.qtype, askFlags{do: true})
					if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || answerData(m) != c.answer {
						t.Fatalf("%s AD=%v %q, want NOERROR AD %q", dns.RcodeToString[m.Rcode], m.AuthenticatedData, answerData(m), c.answer)
					}
					if !hasType(m.Ns, dns.TypeNSEC) && !hasType(m.Ns, dns.TypeNSEC3) {
						t.Errorf("no proof of the expansion for the DO client: %v", m.Ns)
					}
					if n := upstreamQueries(w.h) - before; !mode.nsec3 && n != 0 {
						t.Errorf("%d upstream queries, want 0: the remembered span proves the expansion", n)
					}
				})
			}
		})
	}
}
