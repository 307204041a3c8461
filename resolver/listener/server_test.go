package listener

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestQueryIsAnsweredOverUDPAndTCPOnOnePort(t *testing.T) {
	_, addr := startServer(t, Config{}, newFakeHandler())
	for _, netw := range []string{"udp", "tcp"} {
		r := exchange(t, netw, addr, query("example.", dns.TypeA))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !r.RecursionAvailable {
			t.Errorf("%s: %v", netw, r)
		}
	}
}

func TestRulesHoldOverLoopbackSockets(t *testing.T) {
	_, addr := startServer(t, Config{}, newFakeHandler())
	refusing := []AccessRule{{Prefix: netip.MustParsePrefix("127.0.0.1/32"), Action: Refuse}}
	_, refusedAddr := startServer(t, Config{Access: refusing}, newFakeHandler())
	tests := []struct {
		name  string
		addr  string
		raw   []byte
		rcode int // -1: no reply
	}{
		{name: "ResponseBitSetGetsNoReply", addr: addr, raw: pack(t, withQR(query("example.", dns.TypeA))), rcode: -1},
		{name: "ShortMessageGetsNoReply", addr: addr, raw: []byte{0, 1, 2}, rcode: -1},
		{name: "UnpackableQueryGetsFormErr", addr: addr, raw: pack(t, query("example.", dns.TypeA))[:14], rcode: dns.RcodeFormatError},
		{name: "NotifyGetsNotImp", addr: addr, raw: pack(t, withOpcode(query("example.", dns.TypeSOA), dns.OpcodeNotify)), rcode: dns.RcodeNotImplemented},
		{name: "EDNSVersion1GetsBadVers", addr: addr, raw: pack(t, withEDNS(query("example.", dns.TypeA), 1232, 1)), rcode: dns.RcodeBadVers},
		{name: "RefusedClientGetsRefused", addr: refusedAddr, raw: pack(t, query("example.", dns.TypeA)), rcode: dns.RcodeRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wait := 2 * time.Second
			if tc.rcode < 0 {
				wait = 200 * time.Millisecond
			}
			out := sendRaw(t, tc.addr, tc.raw, wait)
			if tc.rcode < 0 {
				if out != nil {
					t.Fatalf("want no reply, got %d bytes", len(out))
				}
				return
			}
			r := new(dns.Msg)
			if err := r.Unpack(out); err != nil {
				t.Fatalf("reply %x: %v", out, err)
			}
			if r.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
		})
	}
}

func TestTCPAnswersPipelinedQueriesOutOfOrder(t *testing.T) {
	h := newFakeHandler()
	_, addr := startServer(t, Config{}, h)
	c, err := dns.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	slow, fast := query("slow.", dns.TypeA), query("fast.", dns.TypeA)
	for _, m := range []*dns.Msg{slow, fast} {
		if err := c.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	first, err := c.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if first.Id != fast.Id {
		t.Fatalf("first answer is for %s, want fast. while slow. is pending", first.Question[0].Name)
	}
	close(h.release)
	second, err := c.ReadMsg()
	if err != nil || second.Id != slow.Id {
		t.Fatalf("second answer %v, %v; want slow.", second, err)
	}
}

func TestTruncatedUDPAnswerIsCompleteOverTCP(t *testing.T) {
	s, addr := startServer(t, Config{}, newFakeHandler())
	r := exchange(t, "udp", addr, query("big.", dns.TypeA))
	if !r.Truncated || len(r.Answer) != 0 {
		t.Fatalf("UDP: TC=%v with %d answers, want TC and none", r.Truncated, len(r.Answer))
	}
	r = exchange(t, "tcp", addr, query("big.", dns.TypeA))
	if r.Truncated || len(r.Answer) != 100 {
		t.Fatalf("TCP: TC=%v with %d answers, want all 100", r.Truncated, len(r.Answer))
	}
	if st := s.Stats(); st.Truncated != 1 || st.Rcodes["NOERROR"] != 2 {
		t.Errorf("stats %+v, want 1 truncated and 2 NOERROR", st)
	}
}

func TestFullSlotsDropUDPAndServFailTCP(t *testing.T) {
	h := newFakeHandler()
	s, addr := startServer(t, Config{MaxInFlight: 1}, h)
	defer close(h.release)
	go func() {
		c := &dns.Client{Timeout: 3 * time.Second}
		c.Exchange(query("slow.", dns.TypeA), addr)
	}()
	select {
	case <-h.calls:
	case <-time.After(3 * time.Second):
		t.Fatal("slow query never reached the handler")
	}
	// Counted around the one query, so that nothing else the loaded test
	// machine does to the server's sockets can blur the count.
	before := s.Stats().Dropped
	if out := sendRaw(t, addr, pack(t, query("example.", dns.TypeA)), 200*time.Millisecond); out != nil {
		t.Errorf("UDP query beyond the slots got a reply")
	}
	if d := s.Stats().Dropped - before; d != 1 {
		t.Errorf("dropped %d, want 1", d)
	}
	if r := exchange(t, "tcp", addr, query("example.", dns.TypeA)); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("TCP query beyond the slots: %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
}

func TestIdleTCPConnectionIsClosed(t *testing.T) {
	_, addr := startServer(t, Config{TCPIdleTimeout: 100 * time.Millisecond}, newFakeHandler())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("read on idle connection: %v, want EOF after 100ms", err)
	}
}

func TestTCPConnectionBeyondTheBoundIsClosed(t *testing.T) {
	_, addr := startServer(t, Config{MaxTCPConns: 1}, newFakeHandler())
	first, err := dns.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// An answer on the first proves it holds the only connection slot.
	if err := first.WriteMsg(query("example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	first.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := first.ReadMsg(); err != nil {
		t.Fatal(err)
	}
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("second connection read: %v, want it closed", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestShutdownLetsAnInFlightQueryFinish(t *testing.T) {
	h := newFakeHandler()
	s := New(Config{}, h)
	if err := s.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := s.Addrs()[0].String()
	got := make(chan *dns.Msg, 1)
	go func() {
		c := &dns.Client{Timeout: 3 * time.Second}
		r, _, _ := c.Exchange(query("slow.", dns.TypeA), addr)
		got <- r
	}()
	<-h.calls
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond)
	close(h.release)
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if r := <-got; r == nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("in-flight query got %v, want its answer", r)
	}
	if err := s.Listen(context.Background(), "127.0.0.1:0"); !errors.Is(err, ErrServerClosed) {
		t.Errorf("listen after shutdown: %v, want ErrServerClosed", err)
	}
}

func TestShutdownCancelsHandlersAtItsDeadline(t *testing.T) {
	h := newFakeHandler()
	s := New(Config{}, h)
	if err := s.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c, err := dns.DialTimeout("tcp", s.Addrs()[0].String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMsg(query("slow.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	<-h.calls
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v, want deadline exceeded", err)
	}
}

func TestListenOnABoundPortFails(t *testing.T) {
	_, addr := startServer(t, Config{}, newFakeHandler())
	s := New(Config{}, newFakeHandler())
	defer s.Shutdown(context.Background())
	if err := s.Listen(context.Background(), addr); err == nil {
		t.Fatalf("second listen on %s succeeded", addr)
	}
}
