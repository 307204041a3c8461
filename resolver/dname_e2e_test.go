package resolver

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
)

// TestDNAMEAnswersThroughTheResolver follows the signed DNAMEs of the e2e
// leaf (old and zero, both to other.test.) through the validating
// resolver. Each step asks one question, at a time after the previous
// step, with the leaf's server honest, lying or dead.
func TestDNAMEAnswersThroughTheResolver(t *testing.T) {
	type step struct {
		after  time.Duration
		leaf   string // "honest", "wrong-cname" or "dead"
		qname  string
		qtype  uint16
		rcode  int
		ad     bool
		answer string
	}
	const chain = "old.example.test. DNAME other.test.; www.old.example.test. CNAME www.other.test."
	const zeroChain = "zero.example.test. DNAME other.test.; www.zero.example.test. CNAME www.other.test."
	tests := []struct {
		name  string
		steps []step
	}{
		{"DNAMEChainIsSecureColdAndFromTheCache", []step{
			{0, "honest", "www.old.example.test.", dns.TypeA, dns.RcodeSuccess, true, chain + "; www.other.test. A 192.0.2.2"},
			{0, "dead", "www.old.example.test.", dns.TypeA, dns.RcodeSuccess, true, chain + "; www.other.test. A 192.0.2.2"},
		}},
		{"CNAMEQuestionUnderDNAMEGetsTheDNAMEColdAndFromTheCache", []step{
			{0, "honest", "www.old.example.test.", dns.TypeCNAME, dns.RcodeSuccess, true, chain},
			{0, "dead", "www.old.example.test.", dns.TypeCNAME, dns.RcodeSuccess, true, chain},
		}},
		{"CNAMEContradictingTheDNAMEIsBogusButTheDNAMEIsKept", []step{
			{0, "wrong-cname", "www.old.example.test.", dns.TypeA, dns.RcodeServerFailure, false, ""},
			{0, "wrong-cname", "www.old.example.test.", dns.TypeCNAME, dns.RcodeSuccess, true, chain},
		}},
		{"ZeroTTLDNAMEIsReusedOnlyWithinItsGrace", []step{
			{0, "honest", "www.zero.example.test.", dns.TypeA, dns.RcodeSuccess, true, zeroChain + "; www.other.test. A 192.0.2.2"},
			{time.Second, "dead", "www.zero.example.test.", dns.TypeCNAME, dns.RcodeSuccess, true, zeroChain},
			{2 * time.Second, "dead", "www.zero.example.test.", dns.TypeCNAME, dns.RcodeServerFailure, false, ""},
		}},
	}
	w := buildE2E(t, leafSpec{signer: "go", alg: dns.ECDSAP256SHA256, mode: signModes[0], win: validWindow})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := w.resolver(t)
			defer setLeaf(t, w, "honest")
			for i, s := range tc.steps {
				e.clock.Advance(s.after)
				setLeaf(t, w, s.leaf)
				m := e.ask(t, s.qname, s.qtype, askFlags{do: true})
				if m.Rcode != s.rcode || m.AuthenticatedData != s.ad || answerData(m) != s.answer {
					t.Fatalf("step %d: %s AD=%v %q (EDE %v), want %s AD=%v %q", i, dns.RcodeToString[m.Rcode],
						m.AuthenticatedData, answerData(m), edeOf(m), dns.RcodeToString[s.rcode], s.ad, s.answer)
				}
				if strings.Contains(s.answer, "zero.") && s.rcode == dns.RcodeSuccess && m.Answer[0].Header().Ttl != 0 {
					t.Errorf("step %d: TTL-0 DNAME served with TTL %d", i, m.Answer[0].Header().Ttl)
				}
			}
		})
	}
}

// setLeaf makes the leaf's server honest, dead, or one that answers every
// name under a DNAME with a CNAME to elsewhere beside the genuine DNAME.
func setLeaf(t testing.TB, w *e2eWorld, mode string) {
	t.Helper()
	srv := w.h.Server(e2eLeafAddr)
	switch mode {
	case "honest":
		srv.Update(func(k *simnet.Knobs) { k.Handler, k.Dead = nil, false })
	case "dead":
		srv.Update(func(k *simnet.Knobs) { k.Handler, k.Dead = nil, true })
	case "wrong-cname":
		tamper(t, w.h, e2eLeafAddr, func(q *dns.Msg, honest func(*dns.Msg) *dns.Msg) *dns.Msg {
			m := honest(q)
			for _, rr := range m.Answer {
				if c, ok := rr.(*dns.CNAME); ok {
					c.Target = "www.evil.test."
				}
			}
			return m
		})
	default:
		t.Fatalf("unknown leaf mode %q", mode)
	}
}
