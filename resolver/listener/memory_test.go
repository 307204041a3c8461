package listener

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// TestHeapPerCachedName resolves distinct A names in process, as bench/run's
// rss100k does over sockets (dnsperf's plain queries, one name each, from a
// cold zone), and reports the live heap each name leaves behind, split into
// the answer cache, the record cache and the rest of the resolver. The
// split comes from dropping one owner at a time and collecting: what the
// heap loses is what that owner alone kept alive. AskedOnce is the daemon's
// answer cache, whose doorkeeper keeps names asked once out of it;
// AdmitFirst stores every answer, which is also what each name asked again
// costs.
func TestHeapPerCachedName(t *testing.T) {
	if testing.Short() {
		t.Skip("resolves 20,000 names twice")
	}
	tests := []struct {
		name        string
		admitFirst  bool
		wantAnswers int // at least
		maxPerName  float64
	}{
		// 726 B before the caches were packed (issue #6); 415 B with an
		// intrusive LRU, 528 B with golang-lru's simplelru in each shard.
		{name: "AdmitFirst", admitFirst: true, wantAnswers: 20000, maxPerName: 560},
		{name: "AskedOnce", maxPerName: 320},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			answers := cache.NewAnswerCache(cache.AnswerConfig{MaxBytes: 256 << 20, AdmitFirst: tc.admitFirst})
			heapPerCachedName(t, answers, tc.wantAnswers, tc.maxPerName)
		})
	}
}

func heapPerCachedName(t *testing.T, answers *cache.AnswerCache, wantAnswers int, maxPerName float64) {
	const n = 20000
	h, r, records, clock := bigZone(t, 768<<20)
	s := New(Config{Answers: answers, Clock: clock}, r)
	answers = nil
	t.Cleanup(func() { s.wg.Wait() })
	ask := func(name string) {
		raw := pack(t, query(name, dns.TypeA))
		if out := s.process(raw, loopback, true); len(out) == 0 {
			t.Fatalf("%s: no answer", name)
		}
	}
	ask("warm.big.test.")
	base := liveHeap()
	for i := range n {
		ask("n" + strconv.Itoa(i) + ".big.test.")
	}
	if got := s.answers.Len(); got < wantAnswers {
		t.Fatalf("answer cache holds %d of %d names", got, n)
	}
	held := heapHeld()
	all := liveHeap()
	estA, estR := s.answers.Bytes(), records.Bytes()
	s.answers, s.cfg.Answers = nil, nil
	noAnswers := liveHeap()
	s.h, r = nil, nil
	noResolver := liveHeap()
	runtime.KeepAlive(records)
	records = nil
	empty := liveHeap()
	// The in-process servers remember what they synthesised; they are
	// the test's world, not the resolver, so they stay out of the split.
	runtime.KeepAlive(h)
	per := func(b int64) float64 { return float64(b) / n }
	t.Logf("live heap per name: answer cache %.0f B (estimate %.0f), record cache %.0f B (estimate %.0f), rest of the resolver %.0f B; Bulwark in all %.0f B; the in-process servers %.0f B",
		per(all-noAnswers), per(estA), per(noResolver-empty), per(estR), per(noAnswers-noResolver), per(all-empty), per(empty-base))
	if got := per(all - empty); got > maxPerName {
		t.Errorf("Bulwark keeps %.0f B per cached name, more than %.0f B", got, maxPerName)
	}
	t.Logf("heap held from the OS when the last name was cached: %.0f B per name, %.2f times the live heap (GOGC=%q)", per(held), float64(held)/float64(all), os.Getenv("GOGC"))
}

// heapHeld is the heap memory the process holds from the OS, without
// forcing a collection: what the heap adds to RSS at that moment.
func heapHeld() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapSys - ms.HeapReleased)
}

// liveHeap is the heap held by reachable objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
