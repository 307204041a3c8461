package resolver

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

func TestChainShowsEachRecordOnce(t *testing.T) {
	dname := "x. 300 DNAME ."
	sig := "x. 300 RRSIG DNAME 8 1 300 20300101000000 20200101000000 1 . AAAA"
	tests := []struct {
		name  string
		links [][]string
		want  string
	}{
		{"DNAMEPassedTwiceIsShownOnce",
			[][]string{{dname, sig, "a.x.x. 300 CNAME a.x."}, {dname, sig, "a.x. 300 CNAME a."}},
			"x./DNAME x./RRSIG a.x.x./CNAME a.x./CNAME"},
		{"DistinctLinksAreAllKept",
			[][]string{{"a.test. 300 CNAME b.test."}, {"b.test. 300 CNAME c.test."}},
			"a.test./CNAME b.test./CNAME"},
		{"AnRRsetIsNotThinnedAgainstItself",
			[][]string{{"a.test. 300 A 192.0.2.1", "a.test. 300 A 192.0.2.2"}},
			"a.test./A a.test./A"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &query{}
			for _, l := range tc.links {
				q.addAnswer(rrs(t, l...), nil, cache.Secure)
			}
			if got := names(q.res.answer); got != tc.want {
				t.Errorf("answer %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDenialRecordsOfAChainGoOutOnlyWithANegativeEnd(t *testing.T) {
	proof := "b.test. 300 NSEC d.test. A RRSIG NSEC"
	tests := []struct {
		name     string
		answer   []string
		negative bool
		want     string
	}{
		{"WildcardExpansionKeepsItsProof",
			[]string{"a.test. 300 CNAME b.test.", "a.test. 300 RRSIG CNAME 8 1 300 20300101000000 20200101000000 1 test. AAAA"},
			false, "b.test./NSEC"},
		{"OtherProofIsDroppedFromAPositiveEnd",
			[]string{"a.test. 300 CNAME b.test.", "a.test. 300 RRSIG CNAME 8 2 300 20300101000000 20200101000000 1 test. AAAA"},
			false, ""},
		{"OtherProofJoinsANegativeEnd",
			[]string{"a.test. 300 CNAME b.test.", "a.test. 300 RRSIG CNAME 8 2 300 20300101000000 20200101000000 1 test. AAAA"},
			true, "b.test./NSEC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &query{}
			q.addProofs(reply(0, true, rrs(t, tc.answer...), rrs(t, proof), nil))
			if tc.negative {
				(&Resolver{}).finishNegative(q, dns.RcodeSuccess, cache.Entry{})
			}
			if got := names(q.res.ns); got != tc.want {
				t.Errorf("authority %q, want %q", got, tc.want)
			}
		})
	}
}
