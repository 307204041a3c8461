package cache

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestByteBoundEvictsLeastRecentlyUsed(t *testing.T) {
	names := []string{"a.example.", "b.example.", "c.example.", "d.example."}
	keys := make([]Key, len(names))
	entries := make([]Entry, len(names))
	for i, n := range names {
		keys[i], entries[i] = NewKey(n, dns.TypeA, dns.ClassINET), aEntry(t, n, 300)
	}
	// Room for exactly three of these equal-sized entries.
	c := New(Config{Shards: 1, MaxBytes: 3*entrySize(keys[0], &entries[0]) + 1})
	for i := range 3 {
		c.Put(keys[i], entries[i], t0)
	}
	c.Get(keys[0], t0) // a becomes the most recently used, b the least
	if !c.Put(keys[3], entries[3], t0) {
		t.Fatal("Put of d refused")
	}
	for i, want := range []bool{true, false, true, true} {
		if _, ok := c.Get(keys[i], t0); ok != want {
			t.Errorf("%s present = %v, want %v", names[i], ok, want)
		}
	}
	if c.Bytes() > c.cfg.MaxBytes {
		t.Errorf("Bytes = %d over MaxBytes %d", c.Bytes(), c.cfg.MaxBytes)
	}
}

func TestPutRefusesAnEntryLargerThanAShard(t *testing.T) {
	c := New(Config{Shards: 1, MaxBytes: 2000})
	k := NewKey("big.example.", dns.TypeTXT, dns.ClassINET)
	var rrs []dns.RR
	for i := range 10 {
		rrs = append(rrs, mustRR(t, fmt.Sprintf(`big.example. 300 IN TXT "%0200d"`, i)))
	}
	if c.Put(k, Entry{RRs: rrs, Rank: RankAnswerAA}, t0) {
		t.Error("Put stored an entry larger than the whole cache")
	}
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("Len = %d, Bytes = %d after refusal", c.Len(), c.Bytes())
	}
}

// TestRandomWorkloadNeverExceedsMaxBytes is a property test: whatever mix
// of puts (of random sizes, ranks and TTLs), gets, deletes and passing time
// runs, every shard stays within its budget and its byte account equals
// the sum of the sizes it holds.
func TestRandomWorkloadNeverExceedsMaxBytes(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			c := New(Config{Shards: 4, MaxBytes: 64 << 10})
			now := t0
			for op := range 3000 {
				k := NewKey(fmt.Sprintf("n%d.example.", rng.IntN(300)), uint16(1+rng.IntN(3)), dns.ClassINET)
				switch r := rng.IntN(10); {
				case r < 6:
					c.Put(k, randomEntry(t, rng, k.Name), now)
				case r < 8:
					c.Get(k, now)
				case r < 9:
					c.Delete(k)
				default:
					now = now.Add(time.Duration(rng.IntN(30)) * time.Second)
				}
				checkAccounts(t, c, op)
			}
		})
	}
}

func randomEntry(tb testing.TB, rng *rand.Rand, name string) Entry {
	e := Entry{Rank: Rank(1 + rng.IntN(6)), Security: Security(rng.IntN(5))}
	for range rng.IntN(20) {
		e.RRs = append(e.RRs, &dns.TXT{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: uint32(1 + rng.IntN(120))},
			Txt: []string{strings.Repeat("x", rng.IntN(250))},
		})
	}
	if len(e.RRs) == 0 {
		e.Ns = []dns.RR{mustRR(tb, "example. 60 IN SOA ns.example. host.example. 1 7200 900 1209600 30")}
	}
	return e
}

func checkAccounts(t *testing.T, c *Cache, op int) {
	t.Helper()
	var total int64
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		var sum int64
		for _, it := range s.lru.Values() {
			sum += it.cost()
		}
		bytes := s.bytes
		s.mu.Unlock()
		if sum != bytes || bytes > s.budget {
			t.Fatalf("op %d shard %d: account %d, items sum %d, budget %d", op, i, bytes, sum, s.budget)
		}
		total += bytes
	}
	if total > c.cfg.MaxBytes {
		t.Fatalf("op %d: %d bytes over MaxBytes %d", op, total, c.cfg.MaxBytes)
	}
}

func TestConcurrentUseIsSafe(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := New(Config{Shards: 4, MaxBytes: 256 << 10})
	rrs := make([]Entry, 64)
	for i := range rrs {
		rrs[i] = aEntry(t, fmt.Sprintf("n%d.example.", i), uint32(1+i))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for op := range 2000 {
				i := rng.IntN(len(rrs))
				k := NewKey(rrs[i].RRs[0].Header().Name, dns.TypeA, dns.ClassINET)
				now := t0.Add(time.Duration(op) * 10 * time.Millisecond)
				switch op % 4 {
				case 0, 1:
					if e, ok := c.Get(k, now); ok {
						e.RRs[0].Header().Ttl = 0 // callers may scribble on their copy
					}
				case 2:
					c.Put(k, rrs[i], now)
				default:
					if op%64 == 3 {
						c.Delete(k)
					}
					_ = c.Len()
				}
			}
		})
	}
	wg.Wait()
	checkAccounts(t, c, -1)
}
