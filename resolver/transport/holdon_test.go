package transport

import (
	"context"
	"errors"
	"fmt"
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

// earlyRTT is the expected RTT of the fake-network tests that need the
// first reply judged early: it is early when read within half of it. The
// fake answers in microseconds, but under -race on a loaded 2-core machine
// the read can come 100-500 ms after the send (an RTT of 100 ms left 50 ms
// of that). It costs no time: the window ends as soon as the fake has no
// reply left.
const earlyRTT = 2 * time.Second

func TestHoldOnEarlyReplyThenConflictReAsksOverTCP(t *testing.T) {
	c := NewExchanger(injected(), Config{}, nil)
	defer c.Close()
	r, err := ask(t, c, "www.example.com.", func(q *Query) { q.RTT = earlyRTT })
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
		// The fastest is a fifth of the RTT, as 20 ms of 100 ms were, but
		// large enough that "faster than half of it" (1 s) holds on a
		// loaded machine: with 20 ms the fake's reply had to be read
		// within 10 ms of the send.
		{name: "FasterThanHalfTheFastestWaits", fastest: earlyRTT, wantWait: true},
		{name: "SlowerThanHalfTheFastestGoesAtOnce", fastest: time.Nanosecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewExchanger(injected(), Config{}, nil)
			defer c.Close()
			if tc.fastest > 0 {
				c.noteRTT(&Query{Server: testServer}, tc.fastest, tc.fastest)
			}
			r, err := ask(t, c, "www.example.com.", func(q *Query) { q.RTT = 5 * earlyRTT })
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

// TestHoldOnSocketErrorDoesNotEndTheWindow: an injector that follows its
// early forgery with an ICMP port unreachable (a refused read) must not end
// the window before the genuine reply, whether the exchange waits it out
// or Next reads it.
func TestHoldOnSocketErrorDoesNotEndTheWindow(t *testing.T) {
	refused := fakeReply{err: fmt.Errorf("%w: icmp port unreachable", ErrRefused)}
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		if tcp {
			return one(answer(q, "192.0.2.1"))
		}
		return []fakeReply{one(answer(q, "6.6.6.6"))[0], refused, one(answer(q, "192.0.2.1"))[0]}
	}}
	for _, rtt := range []time.Duration{100 * time.Millisecond, 0} {
		c := NewExchanger(fn, Config{}, nil)
		r, err := ask(t, c, "www.example.com.", func(q *Query) { q.RTT = rtt })
		if err == nil && !r.TCP && r.Next != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r, err = r.Next(ctx)
			cancel()
		}
		if err != nil || firstA(t, r) != "192.0.2.1" || c.Stats().InjectionsDetected != 1 {
			t.Fatalf("rtt %v: err %v, reply %+v, stats %+v", rtt, err, r, c.Stats())
		}
		c.Close()
	}
}

func TestHoldOnDuplicateReplyIsNoConflict(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		a := answer(q, "192.0.2.1")
		return one(a, a)
	}}
	c := NewExchanger(fn, Config{}, nil)
	defer c.Close()
	r, err := ask(t, c, "www.example.com.", func(q *Query) { q.RTT = earlyRTT })
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
	// microseconds, so an RTT of 1 µs makes it plausible. The time bound
	// is the default HoldOnMax: a window waited out would reach it, a
	// scheduler stall of a loaded machine (100-500 ms; the bound was
	// 50 ms) does not.
	begin := time.Now()
	r, err := ask(t, c, "www.example.com.", func(q *Query) { q.RTT = time.Microsecond })
	if err != nil || r.TCP || time.Since(begin) >= time.Second {
		t.Fatalf("err %v, reply %+v after %v", err, r, time.Since(begin))
	}
	if s := c.Stats(); s.HoldOnWaits != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestHoldOnConflictOnRealSocketsEndsTheWaitEarly: over loopback, a forged
// reply followed by the genuine one, both early for a 4 s RTT, makes the
// exchange wait on its own socket and move to TCP as soon as the second
// arrives, long before the 6 s window would end. (With 400 ms the forgery
// had to be read within 200 ms to count as early, and the exchange to end
// within 500 ms: scheduler stalls of a loaded machine break both.)
func TestHoldOnConflictOnRealSocketsEndsTheWaitEarly(t *testing.T) {
	srv := startServer(t, "ipv4", "127.0.0.1", func(w dns.ResponseWriter, q *dns.Msg) {
		if w.RemoteAddr().Network() == "udp" {
			_ = w.WriteMsg(answer(q, "6.6.6.6"))
		}
		_ = w.WriteMsg(answer(q, "192.0.2.1"))
	})
	c := NewExchanger(NewSocketNetwork(SocketConfig{}), Config{Timeout: 10 * time.Second, HoldOnMax: 10 * time.Second}, nil)
	t.Cleanup(c.Close)
	start := time.Now()
	r, err := c.Exchange(context.Background(), Query{Server: srv.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET, RTT: 4 * time.Second})
	if err != nil || !r.TCP || firstA(t, r) != "192.0.2.1" {
		t.Fatalf("err %v, reply %+v", err, r)
	}
	if el := time.Since(start); el > 3*time.Second {
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
		c.noteRTT(q, st.rtt, st.rtt)
		if got := fast(); got != st.want {
			t.Fatalf("%s: fastRTT %v, want %v", st.name, got, st.want)
		}
	}
}

// waitFor polls cond for up to two seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitWindowsEnded waits until the sweeper has ended every window it held
// and stopped: the event a sleep of "the window plus a margin" stood for.
func waitWindowsEnded(t *testing.T, c *Client) {
	t.Helper()
	waitFor(t, "the windows ended", func() bool {
		c.sweeper.mu.Lock()
		defer c.sweeper.mu.Unlock()
		return !c.sweeper.running
	})
}

// sweptServer answers every UDP query twice on the same association,
// first then second after gap, and TCP with the genuine 192.0.2.1.
func sweptServer(t *testing.T, first, second string, gap time.Duration) *localServer {
	return startServer(t, "ipv4", "127.0.0.1", func(w dns.ResponseWriter, q *dns.Msg) {
		if w.RemoteAddr().Network() != "udp" {
			_ = w.WriteMsg(answer(q, "192.0.2.1"))
			return
		}
		_ = w.WriteMsg(answer(q, first))
		time.Sleep(gap)
		_ = w.WriteMsg(answer(q, second))
	})
}

// socketClient is a Client over real sockets whose Hold-On windows last
// at most window, closed when the test ends.
func socketClient(t *testing.T, window time.Duration) *Client {
	c := NewExchanger(NewSocketNetwork(SocketConfig{}), Config{HoldOnMax: window}, nil)
	t.Cleanup(c.Close)
	return c
}

func askSocket(t *testing.T, c *Client, srv *localServer) *Response {
	t.Helper()
	r, err := c.Exchange(context.Background(), Query{Server: srv.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET})
	if err != nil || r.TCP {
		t.Fatalf("err %v, reply %+v", err, r)
	}
	return r
}

// TestHoldOnSweeperSeesALateInjectionAsItArrives: the genuine reply goes
// back at once (no RTT history); a forgery on the same socket, right
// behind it (queued before the sweeper takes the socket) or 20 ms later,
// is reported to the sweeper when it arrives, long before the 2 s window
// ends, and makes the server suspect for the queries after it.
func TestHoldOnSweeperSeesALateInjectionAsItArrives(t *testing.T) {
	for _, gap := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run(gap.String(), func(t *testing.T) {
			srv := sweptServer(t, "192.0.2.1", "6.6.6.6", gap)
			c := socketClient(t, 2*time.Second)
			if r := askSocket(t, c, srv); firstA(t, r) != "192.0.2.1" {
				t.Fatalf("first reply %+v", r)
			}
			start := time.Now()
			waitFor(t, "the late injection seen", func() bool { return c.Stats().InjectionsDetected == 1 })
			if took := time.Since(start); took > time.Second {
				t.Fatalf("seen after %v: at the window's end, not on arrival", took)
			}
			if !c.cfg.Clock.Now().Before(c.servers.get(srv.addr).suspectUntil) {
				t.Fatal("server not suspect after the conflict")
			}
			if s := c.Stats(); s.LateReplies != 1 || s.HoldOnWaits != 0 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// TestHoldOnSweptWindowKeepsTheLaterReplyForNext: the forgery first, the
// genuine reply 5 ms later; when Next is asked only after the window
// ended, the reply the sweeper kept is handed over, and then no other.
// The window is 1 s: in 50 ms a loaded machine may not deliver the
// genuine reply before it ends.
func TestHoldOnSweptWindowKeepsTheLaterReplyForNext(t *testing.T) {
	srv := sweptServer(t, "6.6.6.6", "192.0.2.1", 5*time.Millisecond)
	c := socketClient(t, time.Second)
	r := askSocket(t, c, srv)
	waitFor(t, "the genuine reply read", func() bool { return c.Stats().InjectionsDetected == 1 })
	waitWindowsEnded(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r2, err := r.Next(ctx)
	if err != nil || firstA(t, r2) != "192.0.2.1" {
		t.Fatalf("next after the window: err %v, reply %+v", err, r2)
	}
	if _, err := r2.Next(ctx); !errors.Is(err, ErrTimeout) {
		t.Fatalf("third reply: %v", err)
	}
}

// TestHoldOnNextBeforeTheLateReplyTakesTheWindowFromTheSweeper: Next asked
// while the window is open and empty waits for the genuine reply itself.
func TestHoldOnNextBeforeTheLateReplyTakesTheWindowFromTheSweeper(t *testing.T) {
	srv := sweptServer(t, "6.6.6.6", "192.0.2.1", 50*time.Millisecond)
	c := socketClient(t, time.Second)
	r := askSocket(t, c, srv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if r2, err := r.Next(ctx); err != nil || firstA(t, r2) != "192.0.2.1" {
		t.Fatalf("next: err %v, reply %+v", err, r2)
	}
	if s := c.Stats(); s.InjectionsDetected != 1 || s.LateReplies != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestHoldOnCloseEndsTheSweptWindows: Close ends open windows at once and
// leaves no goroutine (TestMain's goleak) and no socket behind. Each query
// goes to a server of its own, without RTT history, so each gets the whole
// 10 s window.
func TestHoldOnCloseEndsTheSweptWindows(t *testing.T) {
	c := NewExchanger(NewSocketNetwork(SocketConfig{}), Config{HoldOnMax: 10 * time.Second}, nil)
	for range 5 {
		askSocket(t, c, sweptServer(t, "192.0.2.1", "192.0.2.1", 0))
	}
	c.sweeper.mu.Lock()
	swept := len(c.sweeper.holds)
	c.sweeper.mu.Unlock()
	if swept != 5 {
		t.Fatalf("%d of 5 windows with the sweeper", swept)
	}
	start := time.Now()
	c.Close()
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Close took %v with 10 s windows open", took)
	}
	c.sweeper.mu.Lock()
	defer c.sweeper.mu.Unlock()
	if len(c.sweeper.holds) != 0 || c.sweeper.running {
		t.Fatalf("after Close: %d windows, sweeper running %v", len(c.sweeper.holds), c.sweeper.running)
	}
}

// TestHoldOnFloodedWindowReadsAtMostMaxWatchReads: a window flooded with
// copies of its reply reads maxWatchReads datagrams in all, whether the
// sweeper keeps it to its end or Next hands it to a watcher after the
// sweeper has read its share.
func TestHoldOnFloodedWindowReadsAtMostMaxWatchReads(t *testing.T) {
	for _, next := range []bool{false, true} {
		t.Run(fmt.Sprintf("next=%v", next), func(t *testing.T) {
			srv := startServer(t, "ipv4", "127.0.0.1", func(w dns.ResponseWriter, q *dns.Msg) {
				for range 1 + 2*maxWatchReads {
					_ = w.WriteMsg(answer(q, "192.0.2.1"))
				}
			})
			// 1 s: the sweeper must read its share within the window,
			// and a scheduler stall can take 300 ms of it.
			c := socketClient(t, time.Second)
			r := askSocket(t, c, srv)
			waitFor(t, "the sweeper's share read", func() bool { return c.Stats().LateReplies >= maxWatchReads })
			if next {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				if _, err := r.Next(ctx); !errors.Is(err, ErrTimeout) {
					t.Fatalf("next: %v", err)
				}
			}
			waitWindowsEnded(t, c)
			if got := c.Stats().LateReplies; got != maxWatchReads {
				t.Fatalf("read %d late datagrams, want %d", got, maxWatchReads)
			}
		})
	}
}

// TestHoldOnWindowRefusedWhileClosingStartsNoWatcher: a window that reaches
// a sweeper already closing (Close has begun but this exchange passed its
// check of the Client's life) is closed at once, without Next, rather than
// given a watcher that Close's wait might miss.
func TestHoldOnWindowRefusedWhileClosingStartsNoWatcher(t *testing.T) {
	srv := sweptServer(t, "192.0.2.1", "192.0.2.1", 0)
	c := NewExchanger(NewSocketNetwork(SocketConfig{}), Config{HoldOnMax: 10 * time.Second}, nil)
	defer c.Close()
	c.sweeper.shut()
	r := askSocket(t, c, srv)
	if r.Next != nil || firstA(t, r) != "192.0.2.1" {
		t.Fatalf("reply %+v", r)
	}
}
