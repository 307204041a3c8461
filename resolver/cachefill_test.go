package resolver

import (
	"slices"
	"testing"

	"github.com/miekg/dns"
)

func TestSplitRRsetsGroupsAsInAnyOrder(t *testing.T) {
	rr := rrOf
	a1, a2 := rr("a.test. 300 A 192.0.2.1"), rr("A.test. 300 A 192.0.2.2")
	aaaa := rr("a.test. 300 AAAA 2001:db8::1")
	b := rr("b.test. 300 A 192.0.2.3")
	sig := rr("a.test. 300 RRSIG A 13 2 300 20300101000000 20200101000000 1 test. AAAA")
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	for _, rrs := range [][]dns.RR{
		nil, {opt}, {a1}, {a1, a2}, {a1, a2, aaaa, b}, {opt, a1, a2, b},
		{a1, opt, a2}, {a1, b, a2}, {a1, aaaa, a2}, {a1, sig, a2, sig}, {b, opt, b, a1},
	} {
		want := groupRRsets(rrs)
		for _, buf := range [][][]dns.RR{nil, make([][]dns.RR, 2), make([][]dns.RR, 4)} {
			if got := splitRRsets(rrs, buf); !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("splitRRsets(%v) with room for %d = %v, want %v", rrs, len(buf), got, want)
			}
		}
		sub, _ := adjacentRRsets(rrs, nil)
		for _, set := range sub {
			if cap(set) != len(set) {
				t.Errorf("splitRRsets(%v): set %v has room to append into its neighbour", rrs, set)
			}
		}
	}
}

func TestAnswerRRsetTakesTheAnswerAndItsSignatures(t *testing.T) {
	rr := rrOf
	a1, a2 := rr("a.test. 300 A 192.0.2.1"), rr("A.test. 300 A 192.0.2.2")
	aaaa := rr("a.test. 300 AAAA 2001:db8::1")
	b := rr("b.test. 300 A 192.0.2.3")
	sigA := rr("a.test. 300 RRSIG A 13 2 300 20300101000000 20200101000000 1 test. AAAA")
	sigAAAA := rr("a.test. 300 RRSIG AAAA 13 2 300 20300101000000 20200101000000 1 test. AAAA")
	cname := rr("a.test. 300 CNAME b.test.")
	tests := []struct {
		answer    []dns.RR
		qtype     uint16
		rrs, sigs []dns.RR
	}{
		{answer: nil, qtype: dns.TypeA},
		{answer: []dns.RR{a1}, qtype: dns.TypeA, rrs: []dns.RR{a1}},
		{answer: []dns.RR{a1, a2, sigA}, qtype: dns.TypeA, rrs: []dns.RR{a1, a2}, sigs: []dns.RR{sigA}},
		{answer: []dns.RR{a1, sigA, a2}, qtype: dns.TypeA, rrs: []dns.RR{a1, a2}, sigs: []dns.RR{sigA}},
		{answer: []dns.RR{a1, b, a2}, qtype: dns.TypeA, rrs: []dns.RR{a1, a2}},
		{answer: []dns.RR{a1, aaaa, sigAAAA, sigA}, qtype: dns.TypeAAAA, rrs: []dns.RR{aaaa}, sigs: []dns.RR{sigAAAA}},
		{answer: []dns.RR{a1, sigA, aaaa, sigAAAA}, qtype: dns.TypeANY, rrs: []dns.RR{a1, aaaa}, sigs: []dns.RR{sigA, sigAAAA}},
		{answer: []dns.RR{sigA, a1, sigAAAA}, qtype: dns.TypeRRSIG, rrs: []dns.RR{sigA, sigAAAA}},
		{answer: []dns.RR{cname, b}, qtype: dns.TypeA},
	}
	for _, tc := range tests {
		rrs, sigs := answerRRset(tc.answer, "a.test.", tc.qtype)
		if !slices.Equal(rrs, tc.rrs) || !slices.Equal(sigs, tc.sigs) {
			t.Errorf("answerRRset(%v, %s) = %v, %v; want %v, %v", tc.answer, dns.TypeToString[tc.qtype], rrs, sigs, tc.rrs, tc.sigs)
		}
		before := slices.Clone(tc.answer)
		if _ = append(rrs, b); !slices.Equal(tc.answer, before) {
			t.Errorf("answerRRset(%v): appending to %v wrote into the answer", tc.answer, rrs)
		}
	}
}
