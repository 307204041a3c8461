package cache

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/miekg/dns"
)

// benchSet is a warm working set: signed A RRsets under distinct names,
// the common shape of a validating resolver's hits.
func benchSet(b *testing.B, n int) ([]Key, []Entry) {
	b.Helper()
	keys := make([]Key, n)
	entries := make([]Entry, n)
	for i := range n {
		name := fmt.Sprintf("host%d.example.com.", i)
		keys[i] = NewKey(name, dns.TypeA, dns.ClassINET)
		entries[i] = aEntry(b, name, 3600)
		entries[i].Sigs = []dns.RR{testSig(name, dns.TypeA, 3600, uint32(t0.Unix())+86400)}
	}
	return keys, entries
}

func warmCache(b *testing.B, n int) (*Cache, []Key) {
	b.Helper()
	keys, entries := benchSet(b, n)
	c := New(Config{})
	for i := range keys {
		if !c.Put(keys[i], entries[i], t0) {
			b.Fatalf("warm-up Put %v refused", keys[i])
		}
	}
	return c, keys
}

func BenchmarkGetHit(b *testing.B) {
	c, keys := warmCache(b, 4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := c.Get(keys[i&4095], t0); !ok {
			b.Fatal("miss on a warm key")
		}
		i++
	}
}

func BenchmarkGetMiss(b *testing.B) {
	c, _ := warmCache(b, 4096)
	k := NewKey("absent.example.com.", dns.TypeA, dns.ClassINET)
	b.ReportAllocs()
	for b.Loop() {
		c.Get(k, t0)
	}
}

func BenchmarkPut(b *testing.B) {
	keys, entries := benchSet(b, 4096)
	c := New(Config{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Put(keys[i&4095], entries[i&4095], t0)
		i++
	}
}

// BenchmarkGetHitParallel runs Get from exactly 1, 2, 4 and 8 goroutines:
// GOMAXPROCS is lowered to the goroutine count when that is smaller, and
// SetParallelism multiplies up to it otherwise.
func BenchmarkGetHitParallel(b *testing.B) {
	c, keys := warmCache(b, 4096)
	procs := runtime.GOMAXPROCS(0)
	for _, g := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			p := min(g, procs)
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(p))
			b.SetParallelism(g / p)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				// A random start keeps goroutines off each other's shard.
				i := rand.IntN(4096)
				for pb.Next() {
					c.Get(keys[i&4095], t0)
					i += 7
				}
			})
		})
	}
}
