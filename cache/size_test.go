package cache

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSizeEstimateTracksHeap fills a cache with typical entries and checks
// the byte estimate against what the heap grew by: under-counting would
// let the cache outgrow MaxBytes, gross over-counting would waste it.
func TestSizeEstimateTracksHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates tens of megabytes")
	}
	shapes := []struct {
		name string
		make func(i int) (Key, Entry)
	}{
		{"A", func(i int) (Key, Entry) {
			name := fmt.Sprintf("host%d.example.com.", i)
			return NewKey(name, dns.TypeA, dns.ClassINET), Entry{RRs: []dns.RR{mustRR(t, name+" 300 IN A 192.0.2.1")}, Rank: RankAnswerAA}
		}},
		{"signed AAAA pair", func(i int) (Key, Entry) {
			name := fmt.Sprintf("host%d.example.com.", i)
			return NewKey(name, dns.TypeAAAA, dns.ClassINET), Entry{
				RRs:  []dns.RR{mustRR(t, name+" 300 IN AAAA 2001:db8::1"), mustRR(t, name+" 300 IN AAAA 2001:db8::2")},
				Sigs: []dns.RR{testSig(name, dns.TypeAAAA, 300, 1<<31)},
				Rank: RankAnswerAA, Security: Secure,
			}
		}},
		{"NODATA with NSEC", func(i int) (Key, Entry) {
			name := fmt.Sprintf("host%d.example.com.", i)
			return NewKey(name, dns.TypeMX, dns.ClassINET), Entry{
				Ns: []dns.RR{
					mustRR(t, "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300"),
					mustRR(t, name+" 300 IN NSEC zz"+name+" A AAAA RRSIG NSEC"),
				},
				Rank: RankAuthorityAA,
			}
		}},
	}
	const n = 20000
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			c := New(Config{MaxBytes: 1 << 30})
			now := time.Unix(1_700_000_000, 0)
			// Entries are built and dropped inside the measured span, as
			// parsed replies are: the cache alone keeps their names alive.
			before := heapInUse()
			for i := range n {
				if k, e := sh.make(i); !c.Put(k, e, now) {
					t.Fatalf("Put %v refused", k)
				}
			}
			grown := heapInUse() - before
			checkEstimate(t, n, "entry", "entries", c.Bytes(), grown)
			runtime.KeepAlive(c)
		})
	}
}

// checkEstimate fails t when est, a cache's estimate for its n items,
// and grown, what the heap grew by while they were stored, are out of
// proportion.
func checkEstimate(t *testing.T, n int, one, many string, est, grown int64) {
	t.Helper()
	ratio := float64(est) / float64(grown)
	t.Logf("%d %s: estimate %d B, heap grew %d B (%.0f vs %.0f B/%s, ratio %.2f)", n, many, est, grown, float64(est)/float64(n), float64(grown)/float64(n), one, ratio)
	if ratio < 0.85 || ratio > 1.3 {
		t.Errorf("estimate/heap ratio %.2f outside [0.85, 1.3]", ratio)
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestAnswerSizeEstimateTracksHeap is TestSizeEstimateTracksHeap for the
// answer cache, with the answers a plain A question gets.
func TestAnswerSizeEstimateTracksHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates tens of megabytes")
	}
	const n = 20000
	c := NewAnswerCache(AnswerConfig{MaxBytes: 1 << 30, AdmitFirst: true})
	now := time.Unix(1_700_000_000, 0)
	before := heapInUse()
	for i := range n {
		name := fmt.Sprintf("host%d.example.com.", i)
		if err := c.Put(answerKey(t, name, 0), packedAnswer(t, name, 300, false), AnswerMeta{}, now); err != nil {
			t.Fatal(err)
		}
	}
	grown := heapInUse() - before
	checkEstimate(t, n, "answer", "answers", c.Bytes(), grown)
	runtime.KeepAlive(c)
}
