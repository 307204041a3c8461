package listener

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeHandler answers NAME A with 192.0.2.1, and behaves on a few names:
// big. gets 100 A records, panic. panics, nil. gets nil, slow. waits for
// release (or its context), deadline. reports whether it had a deadline.
type fakeHandler struct {
	release chan struct{}
	calls   chan string
}

func newFakeHandler() *fakeHandler {
	return &fakeHandler{release: make(chan struct{}), calls: make(chan string, 100)}
}

func (h *fakeHandler) Answer(ctx context.Context, req *dns.Msg) *dns.Msg {
	name := req.Question[0].Name
	select {
	case h.calls <- name:
	default:
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	switch name {
	case "panic.":
		panic("handler bug")
	case "nil.":
		return nil
	case "slow.":
		select {
		case <-h.release:
		case <-ctx.Done():
		}
	case "deadline.":
		if _, ok := ctx.Deadline(); !ok {
			resp.Rcode = dns.RcodeRefused
		}
	}
	n := 1
	if name == "big." {
		n = 100
	}
	for i := range n {
		resp.Answer = append(resp.Answer, mustRR(fmt.Sprintf("%s 300 IN A 192.0.2.%d", name, i%250+1)))
	}
	return resp
}

func mustRR(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func pack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack: %v", err)
	}
	return b
}

// startServer serves h on 127.0.0.1 with a free port and shuts it down at
// the end of the test.
func startServer(t *testing.T, cfg Config, h Handler) (*Server, string) {
	t.Helper()
	s := New(cfg, h)
	// Not 127.0.0.1: the attack suite, run in parallel by go test, floods
	// random ports there with forged replies, which this server would count.
	if err := s.Listen(context.Background(), "127.0.0.99:0"); err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, s.Addrs()[0].String()
}

func exchange(t *testing.T, netw, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s exchange %s: %v", netw, m.Question[0].Name, err)
	}
	return r
}

// sendRaw writes raw over UDP and returns the reply, or nil when none came
// within wait.
func sendRaw(t *testing.T, addr string, raw []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

var loopback = netip.MustParseAddrPort("127.0.0.1:40000")
