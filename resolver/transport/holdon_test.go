package transport

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// injected plays an on-path injector: its forgery, then the genuine reply,
// on the same association; TCP gets the genuine reply only.
func injected() *fakeNet {
	return &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		if tcp {
			return one(answer(q, "192.0.2.1"))
		}
		return one(answer(q, "6.6.6.6"), answer(q, "192.0.2.1"))
	}}
}

func TestHoldOnEarlyReplyThenConflictReAsksOverTCP(t *testing.T) {
	c := NewExchanger(injected(), Config{}, nil)
	defer c.Close()
	r, err := ask(t, c, "www.example.com.", func(q *Query) { q.RTT = 100 * time.Millisecond })
	if err != nil || !r.TCP || firstA(t, r) != "192.0.2.1" {
		t.Fatalf("err %v, reply %+v", err, r)
	}
	s := c.Stats()
	if s.InjectionsDetected != 1 || s.ConflictingReplies != 1 || s.HoldOnWaits != 1 {
		t.Fatalf("stats %+v", s)
	}
	// The server is now suspect: even without an RTT every reply is held.
	if r, err := ask(t, c, "www.example.com."); err != nil || !r.TCP {
		t.Fatalf("second ask: err %v, reply %+v", err, r)
	}
}

func TestHoldOnWithoutRTTReturnsFirstAndNextGivesTheOther(t *testing.T) {
	c := NewExchanger(injected(), Config{}, nil)
	defer c.Close()
	r, err := ask(t, c, "www.example.com.")
	if err != nil || r.TCP || firstA(t, r) != "6.6.6.6" || r.Next == nil {
		t.Fatalf("err %v, reply %+v", err, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r2, err := r.Next(ctx)
	if err != nil || firstA(t, r2) != "192.0.2.1" {
		t.Fatalf("next: err %v, reply %+v", err, r2)
	}
	if _, err := r2.Next(ctx); !errors.Is(err, ErrTimeout) {
		t.Fatalf("third reply: %v", err)
	}
	if s := c.Stats(); s.InjectionsDetected != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestHoldOnEarlinessIsJudgedAgainstTheFastestReplies: a reply before half
// the expected RTT is held only while it is also faster than half the
// server's fastest replies. Under load the expected RTT sits at queueing
// spikes; a reply from a server known to answer in a nanosecond is not
// early whatever the spikes, so it goes back at once, and an injection is
// still caught behind it by the watcher and Next.
func TestHoldOnEarlinessIsJudgedAgainstTheFastestReplies(t *testing.T) {
	tests := []struct {
		name     string
		fastest  time.Duration // 0: no history
		wantWait bool
	}{
		{name: "NoHistoryWaits", wantWait: true},
		{name: "FasterThanHalfTheFastestWaits", fastest: 20 * time.Millisecond, wantWait: true},
		{name: "SlowerThanHalfTheFastestGoesAtOnce", fastest: time.Nanosecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewExchanger(injected(), Config{}, nil)
			defer c.Close()
			if tc.fastest > 0 {
				c.noteRTT(&Query{Server: testServer}, tc.fastest)
			}
			r, err := ask(t, c, "www.example.com.", func(q *Query) { q.RTT = 100 * time.Millisecond })
			if err != nil {
				t.Fatal(err)
			}
			if waited := c.Stats().HoldOnWaits == 1; waited != tc.wantWait || r.TCP != tc.wantWait {
				t.Fatalf("waited %v, TCP %v; want %v: %+v", waited, r.TCP, tc.wantWait, c.Stats())
			}
			if tc.wantWait {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if r2, err := r.Next(ctx); err != nil || firstA(t, r2) != "192.0.2.1" {
				t.Fatalf("the genuine reply behind the forgery: %v, %+v", err, r2)
			}
		})
	}
}

func TestHoldOnDuplicateReplyIsNoConflict(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		a := answer(q, "192.0.2.1")
		return one(a, a)
	}}
	c := NewExchanger(fn, Config{}, nil)
	defer c.Close()
	r, err := ask(t, c, "www.example.com.", func(q *Query) { q.RTT = 40 * time.Millisecond })
	if err != nil || r.TCP {
		t.Fatalf("err %v, reply %+v", err, r)
	}
	if s := c.Stats(); s.InjectionsDetected != 0 || s.DuplicateReplies != 1 || s.HoldOnWaits != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestHoldOnDisabledFirstReplyWins(t *testing.T) {
	c := NewExchanger(injected(), Config{DisableHoldOn: true}, nil)
	r, err := ask(t, c, "www.example.com.", func(q *Query) { q.RTT = 100 * time.Millisecond })
	if err != nil || firstA(t, r) != "6.6.6.6" || r.Next != nil {
		t.Fatalf("err %v, reply %+v", err, r)
	}
}

func TestHoldOnPlausibleReplyReturnedAtOnce(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply { return one(answer(q, "192.0.2.1")) }}
	c := NewExchanger(fn, Config{}, nil)
	defer c.Close()
	// A reply is "early" only against a known RTT; the fake answers in
	// microseconds, so an RTT of 1 µs makes it plausible.
	begin := time.Now()
	r, err := ask(t, c, "www.example.com.", func(q *Query) { q.RTT = time.Microsecond })
	if err != nil || r.TCP || time.Since(begin) > 50*time.Millisecond {
		t.Fatalf("err %v, reply %+v after %v", err, r, time.Since(begin))
	}
	if s := c.Stats(); s.HoldOnWaits != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestHoldOnConflictOnRealSocketsEndsTheWaitEarly: over loopback, a forged
// reply followed by the genuine one, both early for a 400 ms RTT, makes the
// exchange wait on its own socket and move to TCP as soon as the second
// arrives, long before the 600 ms window would end.
func TestHoldOnConflictOnRealSocketsEndsTheWaitEarly(t *testing.T) {
	srv := startServer(t, "ipv4", "127.0.0.1", func(w dns.ResponseWriter, q *dns.Msg) {
		if w.RemoteAddr().Network() == "udp" {
			_ = w.WriteMsg(answer(q, "6.6.6.6"))
		}
		_ = w.WriteMsg(answer(q, "192.0.2.1"))
	})
	c := NewExchanger(NewSocketNetwork(SocketConfig{}), Config{}, nil)
	t.Cleanup(c.Close)
	start := time.Now()
	r, err := c.Exchange(context.Background(), Query{Server: srv.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET, RTT: 400 * time.Millisecond})
	if err != nil || !r.TCP || firstA(t, r) != "192.0.2.1" {
		t.Fatalf("err %v, reply %+v", err, r)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Fatalf("answered after %v: the wait did not end at the conflict", el)
	}
	if s := c.Stats(); s.HoldOnWaits != 1 || s.InjectionsDetected != 1 {
		t.Fatalf("stats %+v", s)
	}
}

type manualClock struct{ t time.Time }

func (m *manualClock) Now() time.Time { return m.t }

// TestFastRTTFallsSlowlyAndRestartsAfterItsWindow: a faster reply pulls
// fastRTT an eighth of the way down, slower ones leave it alone however
// many they are, and only a window without a faster reply lets a slower
// path's time replace it.
func TestFastRTTFallsSlowlyAndRestartsAfterItsWindow(t *testing.T) {
	clk := &manualClock{t: time.Unix(1e9, 0)}
	c := NewExchanger(&fakeNet{}, Config{Clock: clk}, nil)
	defer c.Close()
	q := &Query{Server: testServer}
	fast := func() time.Duration { return c.servers.get(testServer).fastRTT }
	steps := []struct {
		name    string
		advance time.Duration
		rtt     time.Duration
		want    time.Duration
	}{
		{name: "FirstSampleSetsIt", rtt: 800 * time.Microsecond, want: 800 * time.Microsecond},
		{name: "FasterFallsAnEighth", rtt: 160 * time.Microsecond, want: 720 * time.Microsecond},
		{name: "QueueingSpikeLeavesIt", advance: time.Second, rtt: 20 * time.Millisecond, want: 720 * time.Microsecond},
		{name: "AfterTheWindowASlowerPathReplacesIt", advance: fastWindow + time.Second, rtt: 30 * time.Millisecond, want: 30 * time.Millisecond},
	}
	for _, st := range steps {
		clk.t = clk.t.Add(st.advance)
		c.noteRTT(q, st.rtt)
		if got := fast(); got != st.want {
			t.Fatalf("%s: fastRTT %v, want %v", st.name, got, st.want)
		}
	}
}
