package simnet

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/transport"
)

const leaf = "127.53.1.1"

func ednsQuery(name string) *dns.Msg {
	m := query(name, dns.TypeA, false)
	m.SetEdns0(1232, false)
	return m
}

func TestKnobs(t *testing.T) {
	plain := func() *dns.Msg { return query("www.example.test.", dns.TypeA, false) }
	edns := func() *dns.Msg { return ednsQuery("www.example.test.") }
	cases := []struct {
		name  string
		knobs Knobs
		msg   func() *dns.Msg
		tcp   bool
		// check gets the reply or the error of the exchange.
		check func(t *testing.T, r *dns.Msg, err error)
	}{
		{"DeadServerIsSilentOnUDP", Knobs{Dead: true}, plain, false, wantTimeout},
		{"DeadServerRefusesTCP", Knobs{Dead: true}, plain, true, wantErr(transport.ErrRefused)},
		{"DeadSilentTCPTimesOut", Knobs{Dead: true, DeadTCPSilent: true}, plain, true, wantTimeout},
		{"LameRefusedAnswersRefused", Knobs{Lame: LameRefused}, plain, false, wantRcode(dns.RcodeRefused)},
		{"LameUpwardRefersToTheRoot", Knobs{Lame: LameUpward}, plain, false, func(t *testing.T, r *dns.Msg, err error) {
			if err != nil || r.Authoritative || summary(r.Ns) != "./NS" || summary(r.Extra) != "ns1.root-servers.test./A" {
				t.Fatalf("reply %v err %v, want an upward referral", r, err)
			}
		}},
		{"TruncateSetsTCOnUDP", Knobs{Truncate: true}, plain, false, func(t *testing.T, r *dns.Msg, err error) {
			if err != nil || !r.Truncated || len(r.Answer) != 0 {
				t.Fatalf("reply %v err %v, want TC with no answer", r, err)
			}
		}},
		{"TruncateLeavesTCPWhole", Knobs{Truncate: true}, plain, true, wantAnswers(1)},
		{"EDNSIntolerantAnswersFormErrWithoutOPT", Knobs{EDNSIntolerant: true}, edns, false, func(t *testing.T, r *dns.Msg, err error) {
			if err != nil || r.Rcode != dns.RcodeFormatError || r.IsEdns0() != nil {
				t.Fatalf("reply %v err %v, want FORMERR without OPT", r, err)
			}
		}},
		{"EDNSIntolerantAnswersPlainQueries", Knobs{EDNSIntolerant: true}, plain, false, wantAnswers(1)},
		{"EDNSDropIgnoresOPTQueries", Knobs{EDNSDrop: true}, edns, false, wantTimeout},
		{"EDNSDropAnswersPlainQueries", Knobs{EDNSDrop: true}, plain, false, wantAnswers(1)},
		{"TCPOnlyIsSilentOnUDP", Knobs{TCPOnly: true}, plain, false, wantTimeout},
		{"TCPOnlyAnswersTCP", Knobs{TCPOnly: true}, plain, true, wantAnswers(1)},
		{"MangleCaseLowersTheQuestion", Knobs{MangleCase: true}, func() *dns.Msg { return query("WWW.Example.TEST.", dns.TypeA, false) }, false,
			func(t *testing.T, r *dns.Msg, err error) {
				if err != nil || r.Question[0].Name != "www.example.test." {
					t.Fatalf("reply %v err %v, want the question lower-cased", r, err)
				}
			}},
		{"HandlerOverridesTheAnswer", Knobs{Handler: func(q *dns.Msg, _ bool) *dns.Msg {
			return new(dns.Msg).SetRcode(q, dns.RcodeServerFailure)
		}}, plain, false, wantRcode(dns.RcodeServerFailure)},
		{"HandlerReturningNilDrops", Knobs{Handler: func(*dns.Msg, bool) *dns.Msg { return nil }}, plain, false, wantTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := testHierarchy(t)
			h.Server(leaf).SetKnobs(c.knobs)
			r, err := tryExchange(h.Net, leaf, c.msg(), c.tcp)
			c.check(t, r, err)
		})
	}
}

func wantTimeout(t *testing.T, r *dns.Msg, err error) {
	t.Helper()
	if !errors.Is(err, transport.ErrTimeout) {
		t.Fatalf("reply %v err %v, want a timeout", r, err)
	}
}

func wantErr(target error) func(*testing.T, *dns.Msg, error) {
	return func(t *testing.T, r *dns.Msg, err error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Fatalf("reply %v err %v, want %v", r, err, target)
		}
	}
}

func wantRcode(rcode int) func(*testing.T, *dns.Msg, error) {
	return func(t *testing.T, r *dns.Msg, err error) {
		t.Helper()
		if err != nil || r.Rcode != rcode {
			t.Fatalf("reply %v err %v, want %s", r, err, dns.RcodeToString[rcode])
		}
	}
}

func wantAnswers(n int) func(*testing.T, *dns.Msg, error) {
	return func(t *testing.T, r *dns.Msg, err error) {
		t.Helper()
		if err != nil || len(r.Answer) != n || r.Truncated {
			t.Fatalf("reply %v err %v, want %d answers", r, err, n)
		}
	}
}

func TestDropFirstAndDropEveryAreDeterministic(t *testing.T) {
	cases := []struct {
		name  string
		knobs Knobs
		want  string // per query: a = answered, d = dropped
	}{
		{"DropFirstTwo", Knobs{DropFirst: 2}, "ddaaaa"},
		{"DropEveryThird", Knobs{DropEvery: 3}, "aadaad"},
		{"Both", Knobs{DropFirst: 1, DropEvery: 2}, "ddadad"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := testHierarchy(t)
			h.Server(leaf).SetKnobs(c.knobs)
			got := ""
			for range len(c.want) {
				if _, err := tryExchange(h.Net, leaf, query("www.example.test.", dns.TypeA, false), false); err != nil {
					got += "d"
				} else {
					got += "a"
				}
			}
			if got != c.want {
				t.Fatalf("pattern %s, want %s", got, c.want)
			}
			if _, err := tryExchange(h.Net, leaf, query("www.example.test.", dns.TypeA, false), true); err != nil {
				t.Fatalf("TCP must not be dropped: %v", err)
			}
		})
	}
}

func TestLatencyDelaysTheReplyAndRespectsTheContext(t *testing.T) {
	h := testHierarchy(t)
	srv := h.Server(leaf)
	srv.Update(func(k *Knobs) { k.Latency = 30 * time.Millisecond })
	ap := netip.AddrPortFrom(netip.MustParseAddr(leaf), 53)
	wire, _ := query("www.example.test.", dns.TypeA, false).Pack()

	c, _ := h.Net.DialUDP(context.Background(), ap)
	defer c.Close()
	_ = c.Write(wire)
	short, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := c.Read(short); !errors.Is(err, transport.ErrTimeout) {
		t.Fatalf("read before the latency: %v, want timeout", err)
	}
	long, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if d, err := c.Read(long); err != nil || len(d.Data) == 0 {
		t.Fatalf("read after the latency: %v", err)
	}
}

func TestUnknownAddressTimesOutOrRefuses(t *testing.T) {
	for _, instant := range []bool{true, false} {
		var n *Network
		if instant {
			n = New(InstantTimeouts())
		} else {
			n = New()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		ap := netip.MustParseAddrPort("127.53.9.9:53")
		c, _ := n.DialUDP(ctx, ap)
		_ = c.Write([]byte{1, 2, 3})
		if _, err := c.Read(ctx); !errors.Is(err, transport.ErrTimeout) {
			t.Errorf("instant=%v: UDP read %v, want timeout", instant, err)
		}
		if instant && ctx.Err() != nil {
			t.Errorf("instant timeout waited for the context")
		}
		if _, err := n.DialTCP(ctx, ap); !errors.Is(err, transport.ErrRefused) {
			t.Errorf("instant=%v: TCP dial %v, want refused", instant, err)
		}
		cancel()
	}
}

func TestQueryLogRecordsQueriesAsSent(t *testing.T) {
	h := testHierarchy(t)
	srv := h.Server(leaf)
	m := query("WwW.example.TEST.", dns.TypeA, true)
	m.Id = 4242
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	r := exchange(t, h.Net, leaf, m, false)
	exchange(t, h.Net, leaf, query("www.example.test.", dns.TypeMX, false), true)

	if srv.QueryCount() != 2 {
		t.Fatalf("count %d, want 2", srv.QueryCount())
	}
	q := srv.Queries()
	first := q[0]
	if first.ID != 4242 || first.Name != "WwW.example.TEST." || first.Type != dns.TypeA || first.TCP ||
		!first.EDNS || first.UDPSize != 1232 || !first.DO || string(first.Cookie) != "\x01\x02\x03\x04\x05\x06\x07\x08" {
		t.Errorf("first record %+v", first)
	}
	if !q[1].TCP || q[1].EDNS || q[1].Type != dns.TypeMX {
		t.Errorf("second record %+v", q[1])
	}
	if c, ok := r.IsEdns0().Option[0].(*dns.EDNS0_COOKIE); !ok || len(c.Cookie) != 32 || c.Cookie[:16] != "0102030405060708" {
		t.Errorf("reply cookie %v, want client cookie plus server cookie", r.IsEdns0().Option)
	}
	srv.Reset()
	if srv.QueryCount() != 0 || len(srv.Queries()) != 0 {
		t.Fatal("Reset kept the log")
	}
}

func TestKnobsAndZonesMayChangeWhileServing(t *testing.T) {
	h := testHierarchy(t)
	srv := h.Server(leaf)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			srv.Update(func(k *Knobs) { k.MangleCase = i%2 == 0 })
			rr, _ := dns.NewRR("new.example.test. 300 IN A 192.0.2.99")
			_ = h.ZoneAt("example.test.").Add(rr)
			h.ZoneAt("example.test.").Remove("new.example.test.", dns.TypeA)
		}
	}()
	for range 200 {
		if _, err := tryExchange(h.Net, leaf, query("www.example.test.", dns.TypeA, false), false); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if srv.QueryCount() != 200 {
		t.Fatalf("count %d, want 200", srv.QueryCount())
	}
}

func TestHonestAnswersFromTheZonesPastHandlerAndFaults(t *testing.T) {
	h := testHierarchy(t)
	s := h.Server("127.53.1.1")
	s.SetKnobs(Knobs{Lame: LameRefused, Handler: func(*dns.Msg, bool) *dns.Msg { return nil }})
	got := s.Honest(query("www.example.test.", dns.TypeA, false), false)
	if got.Rcode != dns.RcodeSuccess || summary(got.Answer) != "www.example.test./A" {
		t.Fatalf("honest reply %v, want the zone's A record", got)
	}
	got.Answer[0].(*dns.A).A[3]++
	again := s.Honest(query("www.example.test.", dns.TypeA, false), false)
	if again.Answer[0].String() == got.Answer[0].String() {
		t.Fatalf("editing one honest reply changed the zone: %v", again.Answer[0])
	}
}
