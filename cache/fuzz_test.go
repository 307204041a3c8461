package cache

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzPutGet feeds records unpacked from arbitrary wire bytes (what an
// upstream could send) through Put and Get and checks the invariants the
// resolver relies on: no panic, the byte bound holds, and a hit never
// reports a TTL longer than the lifetime Put granted.
func FuzzPutGet(f *testing.F) {
	for _, s := range []string{
		"a.example. 300 IN A 192.0.2.1",
		"example. 3600 IN SOA ns.example. host.example. 1 7200 900 1209600 300",
		"a.example. 4294967295 IN TXT \"top bit set\"",
	} {
		m := new(dns.Msg)
		m.SetQuestion("a.example.", dns.TypeA)
		rr, err := dns.NewRR(s)
		if err != nil {
			f.Fatal(err)
		}
		m.Answer = []dns.RR{rr}
		m.Ns = []dns.RR{rr}
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire, uint8(RankAnswerAA), uint8(Secure), uint16(5))
	}
	f.Fuzz(func(t *testing.T, wire []byte, rank, sec uint8, later uint16) {
		m := new(dns.Msg)
		if m.Unpack(wire) != nil || len(m.Question) == 0 {
			return
		}
		c := New(Config{Shards: 2, MaxBytes: 40 << 10, MinTTL: time.Second})
		k := NewKey(m.Question[0].Name, m.Question[0].Qtype, m.Question[0].Qclass)
		e := Entry{RRs: m.Answer, Sigs: m.Extra, Ns: m.Ns, Rank: Rank(rank), Security: Security(sec)}
		life := c.Lifetime(&e, t0)
		if c.Put(k, e, t0) && life <= 0 {
			t.Fatalf("Put stored an entry with lifetime %v", life)
		}
		if c.Bytes() > c.cfg.MaxBytes {
			t.Fatalf("Bytes %d over MaxBytes %d", c.Bytes(), c.cfg.MaxBytes)
		}
		now := t0.Add(time.Duration(later) * time.Second)
		got, ok := c.Get(k, now)
		if !ok {
			return
		}
		left := life - time.Duration(later)*time.Second
		for _, set := range [][]dns.RR{got.RRs, got.Sigs, got.Ns} {
			for _, rr := range set {
				if ttl := time.Duration(rr.Header().Ttl) * time.Second; ttl > left {
					t.Fatalf("TTL %v after %ds exceeds the %v left", ttl, later, left)
				}
			}
		}
	})
}
