package listener

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver/simnet"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// countingHandler answers NAME A with TTL 100 and counts its calls.
// secure. is validated data (AD for clients that ask), fail. is SERVFAIL,
// big. has 60 A records.
type countingHandler struct {
	answers, refreshes atomic.Int32
	// hold, when set, keeps Refresh from returning until it is closed.
	hold chan struct{}
}

func (h *countingHandler) reply(req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	name := req.Question[0].Name
	if name == "fail." {
		resp.Rcode = dns.RcodeServerFailure
		return resp
	}
	n := 1
	if name == "big." {
		n = 60
	}
	for i := range n {
		resp.Answer = append(resp.Answer, mustRR(fmt.Sprintf("%s 100 IN A 192.0.2.%d", name, i+1)))
	}
	do := req.IsEdns0() != nil && req.IsEdns0().Do()
	resp.AuthenticatedData = name == "secure." && (do || req.AuthenticatedData) && !req.CheckingDisabled
	return resp
}

func (h *countingHandler) Answer(_ context.Context, req *dns.Msg) *dns.Msg {
	h.answers.Add(1)
	return h.reply(req)
}

func (h *countingHandler) Refresh(_ context.Context, req *dns.Msg) *dns.Msg {
	h.refreshes.Add(1)
	if h.hold != nil {
		<-h.hold
	}
	return h.reply(req)
}

// newCachingServer's answer cache, unless cfg brings one, stores an answer
// at its first fill, so that a test of the hit path asks once;
// TestAnswerIsCachedWhenItsQuestionIsAskedAgain covers the doorkeeper.
func newCachingServer(t testing.TB, cfg Config, h Handler) (*Server, *simnet.Clock) {
	clock := simnet.NewClock(t0)
	if cfg.Answers == nil {
		cfg.Answers = cache.NewAnswerCache(cache.AnswerConfig{AdmitFirst: true})
	}
	cfg.Clock = clock
	s := New(cfg, h)
	// Refresh goroutines are counted by wg; waiting keeps goleak quiet.
	if tt, ok := t.(*testing.T); ok {
		tt.Cleanup(func() { s.wg.Wait() })
	}
	return s, clock
}

// hit answers raw from the cache only and unpacks the reply, or nil.
func hit(t *testing.T, s *Server, raw []byte, udp bool) *dns.Msg {
	t.Helper()
	out := make([]byte, 4096)
	n, ok := s.serveHit(raw, loopback, out, udp)
	if !ok {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(out[:n]); err != nil {
		t.Fatalf("hit reply does not unpack: %v", err)
	}
	return m
}

func TestHitPatchesIDLetterCaseAndTTL(t *testing.T) {
	h := &countingHandler{}
	s, clock := newCachingServer(t, Config{}, h)
	s.process(pack(t, query("www.example.", dns.TypeA)), loopback, true)
	clock.Advance(30 * time.Second)
	q := query("WwW.ExAmple.", dns.TypeA)
	q.Id = 4242
	r := hit(t, s, pack(t, q), true)
	switch {
	case r == nil:
		t.Fatal("miss after the slow path answered")
	case r.Id != 4242 || !r.Response || !r.RecursionDesired || !r.RecursionAvailable:
		t.Errorf("header %v", r.MsgHdr)
	case r.Question[0].Name != "WwW.ExAmple.":
		t.Errorf("question %q, want the client's case", r.Question[0].Name)
	case r.Answer[0].Header().Ttl != 70:
		t.Errorf("TTL %d, want 70", r.Answer[0].Header().Ttl)
	case h.answers.Load() != 1:
		t.Errorf("handler called %d times", h.answers.Load())
	}
	if st := s.Stats(); st.Queries != 2 || st.Rcodes["NOERROR"] != 2 {
		t.Errorf("stats %+v", st)
	}
	clock.Advance(70 * time.Second)
	if hit(t, s, pack(t, q), true) != nil {
		t.Error("hit past the TTL without serve-stale")
	}
}

func TestUnusualQueriesTakeTheSlowPath(t *testing.T) {
	cookie := withEDNS(query("www.example.", dns.TypeA), 1232, 0)
	cookie.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}}
	noRD := query("www.example.", dns.TypeA)
	noRD.RecursionDesired = false
	twoQ := query("www.example.", dns.TypeA)
	twoQ.Question = append(twoQ.Question, twoQ.Question[0])
	chaos := query("www.example.", dns.TypeA)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	plain := pack(t, query("www.example.", dns.TypeA))
	tests := []struct {
		name string
		raw  []byte
	}{
		{name: "EDNSOption", raw: pack(t, cookie)},
		{name: "RecursionNotDesired", raw: pack(t, noRD)},
		{name: "TwoQuestions", raw: pack(t, twoQ)},
		{name: "ClassCHAOS", raw: pack(t, chaos)},
		{name: "EDNSVersion1", raw: pack(t, withEDNS(query("www.example.", dns.TypeA), 1232, 1))},
		{name: "OpcodeNotify", raw: pack(t, withOpcode(query("www.example.", dns.TypeA), dns.OpcodeNotify))},
		{name: "TrailingByte", raw: append(append([]byte(nil), plain...), 0)},
		{name: "CompressedName", raw: append(append([]byte(nil), plain[:12]...), 0xC0, 12, 0, 1, 0, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newCachingServer(t, Config{}, &countingHandler{})
			s.process(plain, loopback, true)
			s.process(tc.raw, loopback, true)
			if r := hit(t, s, tc.raw, true); r != nil {
				t.Errorf("answered from the cache: %v", r)
			}
		})
	}
}

func TestADFollowsTheRequestAndTheDataSecurity(t *testing.T) {
	s, _ := newCachingServer(t, Config{}, &countingHandler{})
	withAD := query("secure.", dns.TypeA)
	withAD.AuthenticatedData = true
	if hit(t, s, pack(t, withAD), true) != nil {
		t.Fatal("hit on an empty cache")
	}
	s.process(pack(t, query("secure.", dns.TypeA)), loopback, true)
	if hit(t, s, pack(t, withAD), true) != nil {
		t.Error("AD query answered from an answer that does not know its security")
	}
	s.process(pack(t, withAD), loopback, true)
	r := hit(t, s, pack(t, withAD), true)
	if r == nil || !r.AuthenticatedData {
		t.Fatalf("AD query: %v, want a hit with AD", r)
	}
	if r := hit(t, s, pack(t, query("secure.", dns.TypeA)), true); r == nil || r.AuthenticatedData {
		t.Errorf("plain query: %v, want a hit without AD", r)
	}
	cd := query("secure.", dns.TypeA)
	cd.CheckingDisabled = true
	if hit(t, s, pack(t, cd), true) != nil {
		t.Error("CD query answered from the CD=0 answer")
	}
}

func TestAnswerTooLargeForTheClientGoesToTheSlowPath(t *testing.T) {
	s, _ := newCachingServer(t, Config{}, &countingHandler{})
	big := pack(t, withEDNS(query("big.", dns.TypeA), 4096, 0))
	s.process(big, loopback, false)
	if r := hit(t, s, big, true); r == nil || len(r.Answer) != 60 {
		t.Fatalf("EDNS 4096 client: %v, want the 60 records from the cache", r)
	}
	small := pack(t, query("big.", dns.TypeA))
	if hit(t, s, small, true) != nil {
		t.Error("plain UDP client answered with more than 512 bytes")
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(s.process(small, loopback, true)); err != nil || !resp.Truncated {
		t.Errorf("slow path: %v %v, want TC", resp.MsgHdr, err)
	}
}

func TestServFailIsNotCached(t *testing.T) {
	h := &countingHandler{}
	s, _ := newCachingServer(t, Config{}, h)
	raw := pack(t, query("fail.", dns.TypeA))
	s.process(raw, loopback, true)
	if hit(t, s, raw, true) != nil {
		t.Error("SERVFAIL answered from the cache")
	}
}

func TestAnswerIsCachedWhenItsQuestionIsAskedAgain(t *testing.T) {
	h := &countingHandler{}
	answers := cache.NewAnswerCache(cache.AnswerConfig{})
	s, _ := newCachingServer(t, Config{Answers: answers}, h)
	raw := pack(t, query("www.example.", dns.TypeA))
	s.process(raw, loopback, true)
	if hit(t, s, raw, true) != nil {
		t.Fatal("a question asked once was answered from the answer cache")
	}
	s.process(raw, loopback, true)
	if hit(t, s, raw, true) == nil {
		t.Fatal("a question asked twice was not answered from the answer cache")
	}
	if n := h.answers.Load(); n != 2 {
		t.Errorf("handler called %d times, want 2", n)
	}
}

func TestStaleHitAnswersWithTTL30AndRefreshesOnce(t *testing.T) {
	h := &countingHandler{hold: make(chan struct{})}
	release := sync.OnceFunc(func() { close(h.hold) })
	defer release()
	answers := cache.NewAnswerCache(cache.AnswerConfig{MaxStale: time.Hour, AdmitFirst: true})
	s, clock := newCachingServer(t, Config{Answers: answers}, h)
	raw := pack(t, query("www.example.", dns.TypeA))
	s.process(raw, loopback, true)
	clock.Advance(10 * time.Minute)
	for range 3 {
		r := hit(t, s, raw, true)
		if r == nil || r.Answer[0].Header().Ttl != staleTTL {
			t.Fatalf("stale hit %v, want TTL %d", r, staleTTL)
		}
	}
	release()
	s.wg.Wait()
	if n := h.refreshes.Load(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	if r := hit(t, s, raw, true); r == nil || r.Answer[0].Header().Ttl != 100 {
		t.Errorf("after the refresh: %v, want a fresh TTL 100", r)
	}
}

func TestPrefetchRefreshesInTheLastTenthOnlyWhenOn(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("prefetch=%v", on), func(t *testing.T) {
			h := &countingHandler{}
			s, clock := newCachingServer(t, Config{Prefetch: on}, h)
			raw := pack(t, query("www.example.", dns.TypeA))
			s.process(raw, loopback, true)
			clock.Advance(80 * time.Second)
			hit(t, s, raw, true)
			s.wg.Wait()
			if h.refreshes.Load() != 0 {
				t.Fatal("refreshed before the last tenth")
			}
			clock.Advance(15 * time.Second)
			hit(t, s, raw, true)
			hit(t, s, raw, true)
			s.wg.Wait()
			want := map[bool]int32{true: 1}[on]
			if got := h.refreshes.Load(); got != want {
				t.Errorf("%d refreshes, want %d", got, want)
			}
		})
	}
}

func TestCachedAnswerIsServedOverUDPAndTCPWithoutTheHandler(t *testing.T) {
	h := &countingHandler{}
	answers := cache.NewAnswerCache(cache.AnswerConfig{AdmitFirst: true})
	_, addr := startServer(t, Config{Answers: answers, Clock: simnet.NewClock(t0), Workers: 2}, h)
	for _, netw := range []string{"udp", "udp", "tcp", "udp"} {
		r := exchange(t, netw, addr, query("www.example.", dns.TypeA))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%s: %v", netw, r)
		}
	}
	if n := h.answers.Load(); n != 1 {
		t.Errorf("handler called %d times, want once", n)
	}
}

func FuzzParsePlainQuery(f *testing.F) {
	f.Add(pack(f, query("www.example.", dns.TypeA)))
	f.Add(pack(f, withEDNS(query("www.example.", dns.TypeA), 1232, 0)))
	f.Add([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var kb [cache.MaxAnswerKey]byte
		q, key, ok := parsePlainQuery(raw, kb[:0])
		if !ok {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(raw); err != nil || len(m.Question) != 1 || !m.RecursionDesired || m.Opcode != dns.OpcodeQuery {
			t.Fatalf("fast path took %x, which the slow path reads as %v (%v)", raw, m, err)
		}
		if checkQuery(raw, m) != nil {
			t.Fatalf("fast path took %x, which the slow path rejects", raw)
		}
		if len(key) > cache.MaxAnswerKey || q.nameEnd > len(raw) {
			t.Fatalf("key %d bytes, name end %d", len(key), q.nameEnd)
		}
	})
}

// BenchmarkHitPath is the whole cache-hit path in process: the client's
// bytes in, the reply's bytes out, as the UDP read loop runs it, with the
// answer cache as the daemon makes it (doorkeeper on).
func BenchmarkHitPath(b *testing.B) {
	answers := cache.NewAnswerCache(cache.AnswerConfig{})
	s, _ := newCachingServer(b, Config{Answers: answers}, &countingHandler{})
	raw := pack(b, withEDNS(query("www.example.", dns.TypeA), 1232, 0))
	s.process(raw, loopback, true)
	s.process(raw, loopback, true)
	out := make([]byte, ednsBufferSize)
	client := netip.MustParseAddrPort("127.0.0.1:40000")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.serveHit(raw, client, out, true); !ok {
			b.Fatal("miss")
		}
	}
}
