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

// TestWildcardAnswerWhoseProofMayNotBeCachedIsAskedAgain: a proof with TTL
// 0 cannot be kept with the expansion it proves, so the expansion is not
// answered from the cache, where a DO client would get it without its
// proof; it is asked for again and comes with the proof.
func TestWildcardAnswerWhoseProofMayNotBeCachedIsAskedAgain(t *testing.T) {
	for _, mode := range signModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			w := buildE2E(t, leafSpec{signer: "go", alg: dns.ECDSAP256SHA256, mode: mode, win: validWindow})
			tamper(t, w.h, e2eLeafAddr, func(q *dns.Msg, honest func(*dns.Msg) *dns.Msg) *dns.Msg {
				m := honest(q)
				for _, rr := range m.Ns {
					if t := coveredOrType(rr); t == dns.TypeNSEC || t == dns.TypeNSEC3 {
						rr.Header().Ttl = 0
					}
				}
				return m
			})
			e := w.resolver(t)
			for _, round := range []string{"first", "second"} {
				before := upstreamQueries(w.h)
				m := e.ask(t, "x.wild.example.test.", dns.TypeA, askFlags{do: true})
				if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || answerData(m) != "x.wild.example.test. A 192.0.2.7" {
					t.Fatalf("%s: %s AD=%v %q", round, dns.RcodeToString[m.Rcode], m.AuthenticatedData, answerData(m))
				}
				if !hasType(m.Ns, dns.TypeNSEC) && !hasType(m.Ns, dns.TypeNSEC3) {
					t.Fatalf("%s: the expansion reached the DO client without its proof: %v", round, m.Ns)
				}
				if upstreamQueries(w.h) == before {
					t.Fatalf("%s: answered from the cache", round)
				}
			}
		})
	}
}
