package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// seen is what a local server noticed about one query.
type seen struct {
	port uint16
	id   uint16
	tcp  bool
}

// localServer is a miekg server on loopback answering every query with
// one A record, recording each query's source port and ID.
type localServer struct {
	addr netip.AddrPort
	mu   sync.Mutex
	log  []seen // guarded by mu
}

func (s *localServer) seen() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.log...)
}

func startServer(t *testing.T, network, host string, handle func(w dns.ResponseWriter, q *dns.Msg)) *localServer {
	t.Helper()
	ls, stop, err := newLocalServer(host, handle)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	t.Cleanup(stop)
	return ls
}

// newLocalServer starts UDP and TCP servers on one port of host; stop
// shuts both down.
func newLocalServer(host string, handle func(w dns.ResponseWriter, q *dns.Msg)) (ls *localServer, stop func(), err error) {
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		return nil, nil, err
	}
	ls = &localServer{addr: pc.LocalAddr().(*net.UDPAddr).AddrPort()}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		ap := netip.MustParseAddrPort(w.RemoteAddr().String())
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		ls.mu.Lock()
		ls.log = append(ls.log, seen{port: ap.Port(), id: q.Id, tcp: tcp})
		ls.mu.Unlock()
		handle(w, q)
	})
	servers := []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}}
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
	return ls, func() {
		for _, srv := range servers {
			_ = srv.Shutdown()
		}
	}, nil
}

func answerA(w dns.ResponseWriter, q *dns.Msg) { _ = w.WriteMsg(answer(q, "192.0.2.1")) }

func TestSocketNetworkAnswersOverUDPAndTCP(t *testing.T) {
	for _, fam := range []struct{ network, host string }{{"ipv4", "127.0.0.1"}, {"ipv6", "::1"}} {
		t.Run(fam.network, func(t *testing.T) {
			srv := startServer(t, fam.network, fam.host, answerA)
			c := NewExchanger(NewSocketNetwork(SocketConfig{}), Config{}, nil)
			t.Cleanup(c.Close)
			for _, tcp := range []bool{false, true} {
				q := Query{Server: srv.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET, TCP: tcp}
				r, err := c.Exchange(context.Background(), q)
				if err != nil {
					t.Fatalf("tcp=%v: %v", tcp, err)
				}
				if got := firstA(t, r); got != "192.0.2.1" || r.TCP != tcp || r.RTT <= 0 {
					t.Fatalf("got %s tcp=%v rtt %v", got, r.TCP, r.RTT)
				}
			}
		})
	}
}

// checkConnected is a Network that fails the test when a UDP association
// is not a socket connected to the server.
type checkConnected struct {
	Network
	t *testing.T
}

func (c checkConnected) DialUDP(ctx context.Context, server netip.AddrPort) (PacketConn, error) {
	pc, err := c.Network.DialUDP(ctx, server)
	if err == nil {
		if _, ra, aerr := udpAddrs(pc); aerr != nil || ra != server {
			c.t.Errorf("udp socket not connected to %s: remote %v, %v", server, ra, aerr)
		}
	}
	return pc, err
}

// TestSocketQueriesSpreadOverPortsAndIDs: 2,000 draws from 64,512 ports
// give about 1,969 distinct (sd ≈ 5.5) and from 65,536 IDs about 1,970;
// 1,900 fails only a generator that is not uniform over ≥ ~2^14.5 values.
func TestSocketQueriesSpreadOverPortsAndIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 loopback queries")
	}
	srv := startServer(t, "ipv4", "127.0.0.1", answerA)
	avoid := []uint16{5353, 8080}
	nw := checkConnected{Network: NewSocketNetwork(SocketConfig{AvoidPorts: avoid}), t: t}
	c := NewExchanger(nw, Config{}, nil)
	t.Cleanup(c.Close)
	const n = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		q := Query{Server: srv.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET}
		if _, err := c.Exchange(ctx, q); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	ports, ids := map[uint16]bool{}, map[uint16]bool{}
	for _, s := range srv.seen() {
		if s.port < 1024 || s.port == 5353 || s.port == 8080 {
			t.Fatalf("source port %d outside the allowed range", s.port)
		}
		ports[s.port], ids[s.id] = true, true
	}
	t.Logf("%d queries: %d distinct ports, %d distinct IDs", n, len(ports), len(ids))
	if len(ports) < 1900 || len(ids) < 1900 {
		t.Fatalf("%d distinct ports, %d distinct IDs in %d queries; want ≥ 1900 each", len(ports), len(ids), n)
	}
}

func TestConnectedSocketDropsDatagramsFromOtherSources(t *testing.T) {
	server, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	intruder, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	pc, local := dialLoopback(t, server)
	if _, err := intruder.WriteToUDPAddrPort([]byte("forged"), local); err != nil {
		t.Fatal(err)
	}
	if _, err := server.WriteToUDPAddrPort([]byte("genuine"), local); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d, err := pc.Read(ctx)
	if err != nil || string(d.Data) != "genuine" || d.Reassembled {
		t.Fatalf("read %q reassembled=%v err %v, want the server's datagram", d.Data, d.Reassembled, err)
	}
}

func TestClosedPortGivesErrRefused(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	c := NewExchanger(NewSocketNetwork(SocketConfig{}), Config{}, nil)
	t.Cleanup(c.Close)
	for _, tcp := range []bool{false, true} {
		q := Query{Server: addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET, TCP: tcp}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Exchange(ctx, q)
		cancel()
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("tcp=%v: err %v, want ErrRefused", tcp, err)
		}
	}
}

func TestSocketReadEndsWithTheContext(t *testing.T) {
	srv := startServer(t, "ipv4", "127.0.0.1", func(dns.ResponseWriter, *dns.Msg) {})
	nw := NewSocketNetwork(SocketConfig{})
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"Deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}},
		{"Cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, tcp := range []bool{false, true} {
				ctx, cancel := tt.ctx()
				start := time.Now()
				err := readOnce(ctx, nw, srv.addr, tcp)
				cancel()
				if !errors.Is(err, ErrTimeout) || time.Since(start) > 2*time.Second {
					t.Fatalf("tcp=%v: err %v after %v, want ErrTimeout after about 100ms", tcp, err, time.Since(start))
				}
			}
		})
	}
}

// TestSocketReadUntilEndsAtItsTimeOrWithTheContext: a Hold-On watcher's
// read on a real socket has no context deadline of its own; the time it is
// given ends it, and its context (the Client's life) still cuts it short.
func TestSocketReadUntilEndsAtItsTimeOrWithTheContext(t *testing.T) {
	srv := startServer(t, "ipv4", "127.0.0.1", func(dns.ResponseWriter, *dns.Msg) {})
	pc, err := NewSocketNetwork(SocketConfig{}).DialUDP(context.Background(), srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	wr, ok := pc.(windowReader)
	if !ok {
		t.Fatalf("%T cannot read until a time", pc)
	}
	tests := []struct {
		name        string
		until       time.Duration
		cancelAfter time.Duration // 0: never
		detached    bool          // a context that cannot be cancelled (nil Done)
		want        error
	}{
		{name: "UntilItsTime", until: 100 * time.Millisecond, want: context.DeadlineExceeded},
		{name: "UntilItsTimeWithoutCancellation", until: 100 * time.Millisecond, detached: true, want: context.DeadlineExceeded},
		{name: "ContextEndsFirst", until: 10 * time.Second, cancelAfter: 100 * time.Millisecond, want: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelAfter > 0 {
				time.AfterFunc(tc.cancelAfter, cancel)
			}
			rctx := ctx
			if tc.detached {
				rctx = context.WithoutCancel(ctx)
			}
			start := time.Now()
			_, err := wr.ReadUntil(rctx, start.Add(tc.until))
			if took := time.Since(start); !errors.Is(err, ErrTimeout) || !errors.Is(err, tc.want) || took < 90*time.Millisecond || took > 2*time.Second {
				t.Fatalf("err %v after %v, want ErrTimeout and %v after about 100ms", err, took, tc.want)
			}
		})
	}
}

func readOnce(ctx context.Context, nw Network, server netip.AddrPort, tcp bool) error {
	if tcp {
		sc, err := nw.DialTCP(ctx, server)
		if err != nil {
			return err
		}
		defer sc.Close()
		_, err = sc.ReadMsg(ctx)
		return err
	}
	pc, err := nw.DialUDP(ctx, server)
	if err != nil {
		return err
	}
	defer pc.Close()
	_, err = pc.Read(ctx)
	return err
}

func TestSourcePortsComeOnlyFromTheConfiguredRange(t *testing.T) {
	nw := NewSocketNetwork(SocketConfig{PortMin: 100, PortMax: 1030, AvoidPorts: []uint16{1026}}).(*socketNetwork)
	got := map[uint16]bool{}
	for range 2000 {
		p, err := nw.drawPort()
		if err != nil {
			t.Fatal(err)
		}
		got[p] = true
	}
	want := map[uint16]bool{1024: true, 1025: true, 1027: true, 1028: true, 1029: true, 1030: true}
	if len(got) != len(want) {
		t.Fatalf("drew %v, want every one of %v", got, want)
	}
	for p := range got {
		if !want[p] {
			t.Fatalf("drew port %d outside %v", p, want)
		}
	}
	fixed := NewSocketNetwork(SocketConfig{FixedSourcePort: 40053}).(*socketNetwork)
	if p, _ := fixed.drawPort(); p != 40053 {
		t.Fatalf("fixed source port gave %d", p)
	}
}

func TestFixedSourcePortServesConcurrentQueries(t *testing.T) {
	srv := startServer(t, "ipv4", "127.0.0.1", answerA)
	probe, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(probe.LocalAddr().(*net.UDPAddr).Port)
	probe.Close()
	nw := NewSocketNetwork(SocketConfig{FixedSourcePort: port})
	ctx := context.Background()
	a, err := nw.DialUDP(ctx, srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := nw.DialUDP(ctx, srv.addr)
	if err != nil {
		t.Fatalf("second socket on the fixed port: %v", err)
	}
	b.Close()
	a.Close() // which of the sockets a reply reaches is up to the kernel
	c := NewExchanger(nw, Config{}, nil)
	t.Cleanup(c.Close)
	if _, err := c.Exchange(ctx, Query{Server: srv.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET}); err != nil {
		t.Fatal(err)
	}
	if got := srv.seen(); len(got) != 1 || got[0].port != port {
		t.Fatalf("server saw %+v, want one query from port %d", got, port)
	}
}

func TestSilentServerTimesOutAtTheExchangeCap(t *testing.T) {
	srv := startServer(t, "ipv4", "127.0.0.1", func(dns.ResponseWriter, *dns.Msg) {})
	c := NewExchanger(NewSocketNetwork(SocketConfig{}), Config{Timeout: 150 * time.Millisecond}, nil)
	t.Cleanup(c.Close)
	start := time.Now()
	_, err := c.Exchange(context.Background(), Query{Server: srv.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET})
	if el := time.Since(start); !errors.Is(err, ErrTimeout) || el < 150*time.Millisecond || el > 2*time.Second {
		t.Fatalf("err %v after %v, want ErrTimeout after about 150ms", err, el)
	}
}

// TestPortInUseIsRedrawn: with a range of two ports, one held by another
// socket, every association takes the free one; with only the held port
// the draws run out and the error says the port is in use.
func TestPortInUseIsRedrawn(t *testing.T) {
	busy := heldPort(t)
	free := busy + 1
	if busy == 65535 {
		free = busy - 1
	}
	server := netip.MustParseAddrPort("127.0.0.1:53")
	nw := NewSocketNetwork(SocketConfig{PortMin: min(busy, free), PortMax: max(busy, free), BindTries: 64})
	for range 20 {
		pc, err := nw.DialUDP(context.Background(), server)
		if err != nil {
			t.Skipf("port %d not free on this host: %v", free, err)
		}
		local, _, err := udpAddrs(pc)
		pc.Close()
		if err != nil || local.Port() != free {
			t.Fatalf("bound port %d (%v), want the free port %d", local.Port(), err, free)
		}
	}
	only := NewSocketNetwork(SocketConfig{PortMin: busy, PortMax: busy, BindTries: 3})
	if _, err := only.DialUDP(context.Background(), server); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("err %v, want EADDRINUSE after the draws ran out", err)
	}
}

// heldPort is a UDP port that another socket holds until the test ends.
func heldPort(t *testing.T) uint16 {
	t.Helper()
	held, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	return uint16(held.LocalAddr().(*net.UDPAddr).Port)
}

// TestReadErrorsOfAnEndedWaitAreTimeouts: however a read learns that its
// wait is over, from the socket's deadline before ctx's timer fired or from
// ctx, the resolver sees ErrTimeout; other errors keep their meaning.
func TestReadErrorsOfAnEndedWaitAreTimeouts(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want error
	}{
		{name: "SocketDeadlineFirst", ctx: context.Background(), err: os.ErrDeadlineExceeded, want: ErrTimeout},
		{name: "ContextEnded", ctx: ended, err: os.ErrDeadlineExceeded, want: context.Canceled},
		{name: "Refused", ctx: context.Background(), err: syscall.ECONNREFUSED, want: ErrRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := readErr(tc.ctx, tc.err); !errors.Is(got, tc.want) {
				t.Errorf("readErr(%v) = %v, want it to be %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestExchangeEndsAtItsQueryTimeout: the per-server timeout the resolver
// passes in Query.Timeout ends the exchange long before the context's
// deadline, with no context layer of its own.
func TestExchangeEndsAtItsQueryTimeout(t *testing.T) {
	srv := startServer(t, "ipv4", "127.0.0.1", func(dns.ResponseWriter, *dns.Msg) {})
	c := NewExchanger(NewSocketNetwork(SocketConfig{}), Config{}, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Exchange(ctx, Query{Server: srv.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET, Timeout: 100 * time.Millisecond})
	if took := time.Since(start); !errors.Is(err, ErrTimeout) || took < 90*time.Millisecond || took > 2*time.Second {
		t.Fatalf("err %v after %v, want ErrTimeout after about 100ms", err, took)
	}
}

// dialLoopback opens an association to server and returns its local
// address as a sender on loopback reaches it.
func dialLoopback(t *testing.T, server *net.UDPConn) (PacketConn, netip.AddrPort) {
	t.Helper()
	pc, err := NewSocketNetwork(SocketConfig{}).DialUDP(context.Background(), server.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	local, _, err := udpAddrs(pc)
	if err != nil {
		t.Fatal(err)
	}
	return pc, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), local.Port())
}
