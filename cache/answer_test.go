package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// packedAnswer is NAME A with ttl, packed as the listener would send it,
// with an OPT record when edns is set.
func packedAnswer(tb testing.TB, name string, ttl uint32, edns bool) []byte {
	tb.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response, m.RecursionAvailable = true, true
	m.Answer = []dns.RR{mustRR(tb, fmt.Sprintf("%s %d IN A 192.0.2.1", name, ttl))}
	m.Ns = []dns.RR{mustRR(tb, fmt.Sprintf("example. %d IN NS ns.example.", ttl*2))}
	if edns {
		m.SetEdns0(1232, true)
	}
	b, err := m.Pack()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func wireName(tb testing.TB, name string) []byte {
	tb.Helper()
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		tb.Fatal(err)
	}
	return buf[:n]
}

func answerKey(tb testing.TB, name string, flags uint8) []byte {
	return AppendAnswerKey(nil, wireName(tb, name), dns.TypeA, dns.ClassINET, flags)
}

func unpackTTLs(t *testing.T, b []byte) []uint32 {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	var out []uint32
	for _, rr := range append(m.Answer, m.Ns...) {
		out = append(out, rr.Header().Ttl)
	}
	return out
}

func TestAnswerTTLsCountDownFromTheStoreTime(t *testing.T) {
	c := NewAnswerCache(AnswerConfig{AdmitFirst: true})
	key := answerKey(t, "a.example.", KeyEDNS)
	if err := c.Put(key, packedAnswer(t, "a.example.", 300, true), AnswerMeta{}, t0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		after time.Duration
		want  []uint32 // nil: miss
	}{
		{name: "AtOnce", after: 0, want: []uint32{300, 600}},
		{name: "AfterASecondAndAHalf", after: 1500 * time.Millisecond, want: []uint32{299, 599}},
		{name: "InTheLastSecond", after: 299*time.Second + 500*time.Millisecond, want: []uint32{1, 301}},
		{name: "AtTheMinimumTTLItIsGone", after: 300 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := c.Get(key, t0.Add(tc.after))
			if tc.want == nil {
				if ok {
					t.Fatal("hit past the lifetime without serve-stale")
				}
				return
			}
			if !ok {
				t.Fatal("miss")
			}
			buf := make([]byte, a.Len())
			got := unpackTTLs(t, buf[:a.CopyTo(buf, t0.Add(tc.after), 30)])
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("TTLs %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStaleAnswersCarryTheStaleTTLUntilMaxStale(t *testing.T) {
	c := NewAnswerCache(AnswerConfig{MaxStale: time.Hour, AdmitFirst: true})
	key := answerKey(t, "a.example.", 0)
	if err := c.Put(key, packedAnswer(t, "a.example.", 60, false), AnswerMeta{}, t0); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(10 * time.Minute)
	a, ok := c.Get(key, now)
	if !ok || !a.Stale(now) {
		t.Fatalf("got %v stale=%v, want a stale hit", ok, ok && a.Stale(now))
	}
	buf := make([]byte, a.Len())
	if got := unpackTTLs(t, buf[:a.CopyTo(buf, now, 30)]); fmt.Sprint(got) != "[30 30]" {
		t.Errorf("stale TTLs %v, want 30", got)
	}
	if _, ok := c.Get(key, t0.Add(time.Minute+time.Hour)); ok {
		t.Error("hit past MaxStale")
	}
}

func TestAnswerKeyIgnoresLetterCaseButNotFlags(t *testing.T) {
	c := NewAnswerCache(AnswerConfig{AdmitFirst: true})
	if err := c.Put(answerKey(t, "A.Example.", KeyEDNS|KeyDO), packedAnswer(t, "a.example.", 60, true), AnswerMeta{}, t0); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(answerKey(t, "a.EXAMPLE.", KeyEDNS|KeyDO), t0); !ok {
		t.Error("other letter case missed")
	}
	if _, ok := c.Get(answerKey(t, "a.example.", KeyEDNS), t0); ok {
		t.Error("DO=0 query hit the DO=1 answer")
	}
}

func TestUncacheableAnswersAreRefused(t *testing.T) {
	noRecords := new(dns.Msg)
	noRecords.SetQuestion("a.example.", dns.TypeA)
	empty, _ := noRecords.Pack()
	tests := []struct {
		name string
		msg  []byte
	}{
		{name: "ZeroTTL", msg: packedAnswer(t, "a.example.", 0, false)},
		{name: "NoRecords", msg: empty},
		{name: "Truncated", msg: packedAnswer(t, "a.example.", 60, false)[:40]},
		{name: "ShorterThanAHeader", msg: []byte{1, 2, 3}},
	}
	c := NewAnswerCache(AnswerConfig{AdmitFirst: true})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Put(answerKey(t, "a.example.", 0), tc.msg, AnswerMeta{}, t0); !errors.Is(err, ErrNotCacheable) {
				t.Errorf("Put: %v, want ErrNotCacheable", err)
			}
		})
	}
}

func TestAnswerCacheStaysWithinItsByteBound(t *testing.T) {
	const limit = 64 << 10
	c := NewAnswerCache(AnswerConfig{MaxBytes: limit, AdmitFirst: true})
	for i := range 2000 {
		name := fmt.Sprintf("host%d.example.", i)
		if err := c.Put(answerKey(t, name, 0), packedAnswer(t, name, 60, false), AnswerMeta{}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if c.Bytes() > limit || c.Len() == 0 || c.Len() >= 2000 {
		t.Errorf("%d bytes in %d answers, bound %d", c.Bytes(), c.Len(), limit)
	}
}

func TestPrefetchWindowAndRefreshClaim(t *testing.T) {
	c := NewAnswerCache(AnswerConfig{AdmitFirst: true})
	key := answerKey(t, "a.example.", 0)
	if err := c.Put(key, packedAnswer(t, "a.example.", 100, false), AnswerMeta{}, t0); err != nil {
		t.Fatal(err)
	}
	a, _ := c.Get(key, t0)
	if a.InLastTenth(t0.Add(89*time.Second)) || !a.InLastTenth(t0.Add(90*time.Second)) {
		t.Error("prefetch window is not the last 10 s of 100")
	}
	if !a.ClaimRefresh() || a.ClaimRefresh() {
		t.Error("second claim succeeded")
	}
	a.ReleaseRefresh()
	if !a.ClaimRefresh() {
		t.Error("claim after release failed")
	}
}

func TestTTLOffsetsPointAtEveryTTLButTheOPTs(t *testing.T) {
	msg := packedAnswer(t, "a.example.", 77, true)
	offs, minTTL, err := ttlOffsets(msg, nil)
	if err != nil || minTTL != 77 || len(offs) != 2 {
		t.Fatalf("offsets %v min %d err %v", offs, minTTL, err)
	}
	for _, o := range offs {
		if v := binary.BigEndian.Uint32(msg[o:]); v != 77 && v != 154 {
			t.Errorf("offset %d holds %d, not a TTL", o, v)
		}
	}
}

func FuzzTTLOffsets(f *testing.F) {
	f.Add(packedAnswer(f, "a.example.", 60, true))
	f.Add([]byte{0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xC0, 12})
	f.Fuzz(func(t *testing.T, msg []byte) {
		offs, _, err := ttlOffsets(msg, nil)
		if err != nil {
			return
		}
		for _, o := range offs {
			if int(o)+4 > len(msg) {
				t.Fatalf("offset %d past the %d-byte message", o, len(msg))
			}
		}
	})
}

func warmAnswers(b *testing.B, n int) (*AnswerCache, [][]byte) {
	b.Helper()
	c := NewAnswerCache(AnswerConfig{AdmitFirst: true})
	keys := make([][]byte, n)
	for i := range n {
		name := fmt.Sprintf("host%d.example.com.", i)
		keys[i] = answerKey(b, name, 0)
		if err := c.Put(keys[i], packedAnswer(b, name, 3600, false), AnswerMeta{}, t0); err != nil {
			b.Fatal(err)
		}
	}
	return c, keys
}

func BenchmarkAnswerHitCopy(b *testing.B) {
	c, keys := warmAnswers(b, 4096)
	buf := make([]byte, 1232)
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a, ok := c.Get(keys[i&4095], now)
		if !ok {
			b.Fatal("miss on a warm key")
		}
		a.CopyTo(buf, now, 30)
		i++
	}
}

// parallelRuns runs body from exactly 1, 2, 4 and 8 goroutines, as
// BenchmarkGetHitParallel does.
func parallelRuns(b *testing.B, body func(pb *testing.PB)) {
	procs := runtime.GOMAXPROCS(0)
	for _, g := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			p := min(g, procs)
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(p))
			b.SetParallelism(max(g/p, 1))
			b.ReportAllocs()
			b.RunParallel(body)
		})
	}
}

func BenchmarkAnswerGetParallel(b *testing.B) {
	c, keys := warmAnswers(b, 4096)
	now := t0.Add(time.Minute)
	parallelRuns(b, func(pb *testing.PB) {
		buf := make([]byte, 1232)
		i := rand.IntN(4096)
		for pb.Next() {
			if a, ok := c.Get(keys[i&4095], now); ok {
				a.CopyTo(buf, now, 30)
			}
			i += 7
		}
	})
}

func BenchmarkAnswerPutParallel(b *testing.B) {
	c, keys := warmAnswers(b, 4096)
	msg := packedAnswer(b, "host1.example.com.", 3600, false)
	parallelRuns(b, func(pb *testing.PB) {
		i := rand.IntN(4096)
		for pb.Next() {
			c.Put(keys[i&4095], msg, AnswerMeta{}, t0)
			i += 7
		}
	})
}

func BenchmarkPutParallel(b *testing.B) {
	keys, entries := benchSet(b, 4096)
	c := New(Config{})
	parallelRuns(b, func(pb *testing.PB) {
		i := rand.IntN(4096)
		for pb.Next() {
			c.Put(keys[i&4095], entries[i&4095], t0)
			i += 7
		}
	})
}
