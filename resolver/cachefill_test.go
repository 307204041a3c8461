package resolver

import (
	"slices"
	"testing"

	"github.com/miekg/dns"
)

func TestSplitRRsetsGroupsAsInAnyOrder(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
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
