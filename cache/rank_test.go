package cache

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestPutHonoursRankAndSecurity(t *testing.T) {
	type put struct {
		rank Rank
		sec  Security
		ttl  uint32
	}
	tests := []struct {
		name      string
		old, next put
		later     time.Duration // when next is put, after old
		wantStore bool
	}{
		{"glue does not replace an authoritative answer", put{RankAnswerAA, Unchecked, 300}, put{RankGlue, Unchecked, 300}, 0, false},
		{"additional does not replace referral NS", put{RankAuthorityNonAA, Unchecked, 300}, put{RankAdditional, Unchecked, 300}, 0, false},
		{"authoritative answer replaces glue", put{RankGlue, Unchecked, 300}, put{RankAnswerAA, Unchecked, 300}, 0, true},
		{"equal rank refreshes", put{RankAnswerNonAA, Unchecked, 300}, put{RankAnswerNonAA, Unchecked, 300}, time.Second, true},
		{"expired higher rank is replaceable", put{RankAnswerAA, Unchecked, 10}, put{RankGlue, Unchecked, 300}, 10 * time.Second, true},
		{"secure is kept against insecure of the same rank", put{RankAnswerAA, Secure, 300}, put{RankAnswerAA, Insecure, 300}, 0, false},
		{"secure is kept against bogus of the same rank", put{RankAnswerAA, Secure, 300}, put{RankAnswerAA, Bogus, 300}, 0, false},
		{"secure replaces secure", put{RankAnswerAA, Secure, 300}, put{RankAnswerAA, Secure, 300}, 0, true},
		{"secure replaces unchecked", put{RankAnswerAA, Unchecked, 300}, put{RankAnswerAA, Secure, 300}, 0, true},
		{"higher rank replaces secure", put{RankAuthorityAA, Secure, 300}, put{RankAnswerAA, Insecure, 300}, 0, true},
		{"expired secure is replaceable", put{RankAnswerAA, Secure, 10}, put{RankAnswerAA, Bogus, 300}, 20 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Config{})
			k := NewKey("a.example.", dns.TypeA, dns.ClassINET)
			mk := func(p put) Entry {
				e := aEntry(t, "a.example.", p.ttl)
				e.Rank, e.Security = p.rank, p.sec
				return e
			}
			if !c.Put(k, mk(tt.old), t0) {
				t.Fatal("first Put refused")
			}
			when := t0.Add(tt.later)
			if got := c.Put(k, mk(tt.next), when); got != tt.wantStore {
				t.Fatalf("second Put = %v, want %v", got, tt.wantStore)
			}
			want := tt.old
			if tt.wantStore {
				want = tt.next
			}
			got, ok := c.Get(k, when)
			if !ok || got.Rank != want.rank || got.Security != want.sec {
				t.Errorf("cached %v/%v (found %v), want %v/%v", got.Rank, got.Security, ok, want.rank, want.sec)
			}
			if c.Len() != 1 {
				t.Errorf("Len = %d, want 1", c.Len())
			}
		})
	}
}
