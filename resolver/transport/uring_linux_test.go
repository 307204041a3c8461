package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ringMissing says, after nw's first socket, why it has no ring.
func ringMissing(nw *socketNetwork) error {
	if nw.reactor.ring != nil {
		return nil
	}
	return nw.reactor.ringErr
}

// socketState is what the kernel says of an upstream socket after its
// set-up.
type socketState struct {
	local, remote                        netip.AddrPort
	timestamps, fragSize, v6Only, rcvbuf int
	reuseport                            int
	sent, registered                     bool
}

// setUpWith dials server and sends it a query over a Network that sets
// sockets up through the ring or through one system call each, and reads
// back the socket's state. The ring mode skips where the kernel has no
// ring.
func setUpWith(t *testing.T, ring bool, cfg SocketConfig, server *net.UDPConn) socketState {
	t.Helper()
	cfg.IOURing = ringMode(ring)
	nw := NewSocketNetwork(cfg).(*socketNetwork)
	pc, err := nw.DialUDPSend(context.Background(), server.LocalAddr().(*net.UDPAddr).AddrPort(), []byte("query"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := ringMissing(nw); ring && err != nil {
		t.Skipf("no io_uring set-up on this kernel: %v", err)
	}
	if !ring && nw.reactor.ring != nil {
		t.Fatal("the ring was set up though the Network was told not to")
	}
	fd := pc.(*udpConn).fd
	var st socketState
	if st.local, st.remote, err = udpAddrs(pc); err != nil {
		t.Fatal(err)
	}
	level, opt := unix.IPPROTO_IP, ipRecvFragSize
	if st.remote.Addr().Is6() {
		level, opt = unix.IPPROTO_IPV6, ipv6RecvFragSize
		st.v6Only = sockopt(t, fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
	}
	st.fragSize = sockopt(t, fd, level, opt)
	st.timestamps = sockopt(t, fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS)
	st.rcvbuf = sockopt(t, fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	st.reuseport = sockopt(t, fd, unix.SOL_SOCKET, unix.SO_REUSEPORT)
	buf := make([]byte, 16)
	_ = server.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := server.ReadFromUDPAddrPort(buf)
	st.sent = err == nil && string(buf[:n]) == "query" && from.Port() == st.local.Port()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(st.remote.Addr(), st.local.Port()))
	if _, err := server.WriteToUDP([]byte("reply"), to); err != nil {
		t.Fatal(err)
	}
	dg, err := pc.(*udpConn).ReadUntil(context.Background(), time.Now().Add(2*time.Second))
	st.registered = err == nil && string(dg.Data) == "reply"
	return st
}

func sockopt(t *testing.T, fd, level, opt int) int {
	t.Helper()
	v, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		t.Fatalf("getsockopt %d/%d: %v", level, opt, err)
	}
	return v
}

// freePort is a UDP port no socket holds right now, on the family of host.
func freePort(t *testing.T, host string) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(net.JoinHostPort(host, "0"))))
	if err != nil {
		t.Skipf("no %s: %v", host, err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// TestRingSetsUpSocketsAsTheSystemCallsDo: the ring's chain leaves a
// socket in the state the calls one by one leave it in — bound to the
// drawn port, connected to the server, with the receive-time and
// fragment-size options, IPv6-only on IPv6, the asked receive buffer or
// the shared port of the fixed-port mode — with the query sent, and
// registered, so that the reply wakes its reader.
func TestRingSetsUpSocketsAsTheSystemCallsDo(t *testing.T) {
	for _, tt := range []struct {
		name, host string
		cfg        func(port uint16) SocketConfig
	}{
		{"IPv4", "127.0.0.1", func(p uint16) SocketConfig { return SocketConfig{PortMin: p, PortMax: p} }},
		{"IPv6", "::1", func(p uint16) SocketConfig { return SocketConfig{PortMin: p, PortMax: p} }},
		{"ReadBuffer", "127.0.0.1", func(p uint16) SocketConfig { return SocketConfig{PortMin: p, PortMax: p, ReadBuffer: 4096} }},
		{"FixedSourcePort", "127.0.0.1", func(p uint16) SocketConfig { return SocketConfig{FixedSourcePort: p} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			server, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(net.JoinHostPort(tt.host, "0"))))
			if err != nil {
				t.Skipf("no %s: %v", tt.host, err)
			}
			defer server.Close()
			port := freePort(t, tt.host)
			calls := setUpWith(t, false, tt.cfg(port), server)
			ringed := setUpWith(t, true, tt.cfg(port), server)
			if ringed != calls {
				t.Fatalf("through the ring %+v, call by call %+v", ringed, calls)
			}
			want := server.LocalAddr().(*net.UDPAddr).AddrPort()
			if calls.local.Port() != port || calls.remote != want || calls.timestamps != 1 || calls.fragSize != 1 || !calls.sent || !calls.registered {
				t.Fatalf("socket %+v, want bound to %d, connected to %v, both options on, query sent, registered", calls, port, want)
			}
			if tt.host == "::1" && calls.v6Only != 1 {
				t.Fatalf("IPV6_V6ONLY = %d, want 1", calls.v6Only)
			}
		})
	}
}

// TestChainErrorNamesTheCause: a failed set-up is reported by the
// operation that failed, not by the ones cancelled after it; a
// best-effort option that fails alone does not fail the set-up.
func TestChainErrorNamesTheCause(t *testing.T) {
	cancelled := -int32(syscall.ECANCELED)
	names := []string{"setsockopt", "", "", "bind", "connect", "epoll_ctl"}
	for _, tt := range []struct {
		name string
		res  []int32
		call string
		want error
	}{
		{"AllDone", []int32{0, 0, 0, 0, 0, 0}, "", nil},
		{"BestEffortFailedAlone", []int32{0, -int32(syscall.ENOPROTOOPT), 0, 0, 0, 0}, "", nil},
		{"BindInUse", []int32{0, 0, 0, -int32(syscall.EADDRINUSE), cancelled, cancelled}, "bind", syscall.EADDRINUSE},
		{"BindInUseAfterABestEffortFailure", []int32{0, -int32(syscall.ENOPROTOOPT), 0, -int32(syscall.EADDRINUSE), cancelled, cancelled}, "bind", syscall.EADDRINUSE},
		{"MalformedBestEffortCancelsAll", []int32{cancelled, -int32(syscall.EINVAL), cancelled, cancelled, cancelled, cancelled}, "setsockopt", syscall.EINVAL},
		{"AllCancelled", []int32{cancelled, cancelled, cancelled, cancelled, cancelled, cancelled}, "setsockopt", syscall.ECANCELED},
		{"ConnectRefused", []int32{0, 0, 0, 0, -int32(syscall.ENETUNREACH), cancelled}, "connect", syscall.ENETUNREACH},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c chain
			var res [maxChain]int32
			for i, n := range names {
				c.names[i] = n
				res[i] = tt.res[i]
			}
			c.n = len(names)
			err := chainError(&c, &res)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err %v, want none", err)
				}
				return
			}
			var se *os.SyscallError
			if !errors.Is(err, tt.want) || !errors.As(err, &se) || se.Syscall != tt.call {
				t.Fatalf("err %v, want %s: %v", err, tt.call, tt.want)
			}
		})
	}
}

// TestRingGoesOnAfterABestEffortOptionFails: an option the kernel refuses
// (setupUDP ignores the same errors) does not cancel the bind, connect
// and registration linked after it.
func TestRingGoesOnAfterABestEffortOptionFails(t *testing.T) {
	g, err := newRing()
	if err != nil {
		t.Skipf("no io_uring set-up on this kernel: %v", err)
	}
	defer unix.Close(g.fd)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var c chain
	g.args.vals[0] = 1
	c.setsockopt("", fd, unix.SOL_SOCKET, 0x7fff, &g.args.vals[0])
	c.setsockopt("setsockopt", fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, &g.args.vals[0])
	if _, err := g.run(&c); err != nil {
		t.Fatalf("set-up failed: %v", err)
	}
	if v := sockopt(t, fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS); v != 1 {
		t.Fatalf("SO_TIMESTAMPNS = %d after the refused option, want 1", v)
	}
}

// TestSetUpFailuresReadAsTheirSystemCalls: through the ring as call by
// call, a taken port fails as bind(2) fails, so that DialUDP redraws and,
// when only that port is allowed, runs out with EADDRINUSE; and a query
// the kernel will not send fails as Write would, under write's name, at
// the first read (the query leaves in a batch after the set-up).
func TestSetUpFailuresReadAsTheirSystemCalls(t *testing.T) {
	busy := heldPort(t)
	for _, tt := range []struct {
		name  string
		cfg   SocketConfig
		first []byte
		call  string
		want  error
	}{
		{"PortInUse", SocketConfig{PortMin: busy, PortMax: busy, BindTries: 3}, nil, "bind", syscall.EADDRINUSE},
		{"QueryTooLarge", SocketConfig{}, make([]byte, 70000), "write", syscall.EMSGSIZE},
	} {
		for _, ring := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/ring=%v", tt.name, ring), func(t *testing.T) {
				cfg := tt.cfg
				cfg.IOURing = ringMode(ring)
				nw := NewSocketNetwork(cfg).(*socketNetwork)
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				pc, err := nw.DialUDPSend(ctx, netip.MustParseAddrPort("127.0.0.1:53"), tt.first)
				if err == nil && tt.first != nil {
					_, err = pc.Read(ctx)
				}
				if pc != nil {
					pc.Close()
				}
				if err := ringMissing(nw); ring && err != nil {
					t.Skipf("no io_uring set-up on this kernel: %v", err)
				}
				var se *os.SyscallError
				if !errors.Is(err, tt.want) || !errors.As(err, &se) || se.Syscall != tt.call {
					t.Fatalf("err %v, want %s: %v", err, tt.call, tt.want)
				}
			})
		}
	}
}

// TestRingMakesTheNextSocketAhead: a set-up through the ring also makes
// the next socket of its family — a non-blocking, close-on-exec UDP
// socket, which the next set-up takes — and the spare is closed when the
// reactor goes idle.
func TestRingMakesTheNextSocketAhead(t *testing.T) {
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	nw := NewSocketNetwork(SocketConfig{IOURing: IOURingOn}).(*socketNetwork)
	dial := func() *udpConn {
		pc, err := nw.DialUDP(context.Background(), server.LocalAddr().(*net.UDPAddr).AddrPort())
		if err != nil {
			t.Fatal(err)
		}
		return pc.(*udpConn)
	}
	first := dial()
	r := &nw.reactor
	if r.ring == nil {
		t.Skipf("no io_uring set-up on this kernel: %v", r.ringErr)
	}
	r.mu.Lock()
	spare := r.spares[0] - 1
	r.mu.Unlock()
	if spare < 0 {
		t.Fatal("no spare IPv4 socket after a set-up")
	}
	fl, _ := unix.FcntlInt(uintptr(spare), unix.F_GETFL, 0)
	fd, _ := unix.FcntlInt(uintptr(spare), unix.F_GETFD, 0)
	if sockopt(t, spare, unix.SOL_SOCKET, unix.SO_TYPE) != unix.SOCK_DGRAM || sockopt(t, spare, unix.SOL_SOCKET, unix.SO_DOMAIN) != unix.AF_INET ||
		fl&unix.O_NONBLOCK == 0 || fd&unix.FD_CLOEXEC == 0 {
		t.Fatalf("spare socket is not a non-blocking close-on-exec IPv4 UDP socket (flags %#x, fd flags %#x)", fl, fd)
	}
	second := dial()
	if second.fd != spare {
		t.Fatalf("the next set-up took socket %d, want the spare %d", second.fd, spare)
	}
	first.Close()
	second.Close()
	r.mu.Lock()
	next := r.spares[0] - 1
	r.mu.Unlock()
	for end := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r.mu.Lock()
		running := r.running
		r.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the reactor did not go idle")
		}
	}
	if _, err := unix.FcntlInt(uintptr(next), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("spare %d still open after the reactor went idle (%v)", next, err)
	}
}

// TestIOURingChoiceDecidesTheSetUp: IOURingOff (the daemon's
// upstream-io-uring: no) sets sockets up call by call; IOURingOn takes the
// ring where IOURingSupport says the kernel has one; and a Network left to
// choose does what UDPSetup tells the daemon's log.
func TestIOURingChoiceDecidesTheSetUp(t *testing.T) {
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	for _, c := range []IOURing{IOURingOff, IOURingOn, IOURingAuto} {
		nw := NewSocketNetwork(SocketConfig{IOURing: c}).(*socketNetwork)
		pc, err := nw.DialUDPSend(context.Background(), server.LocalAddr().(*net.UDPAddr).AddrPort(), []byte("query"))
		if err != nil {
			t.Fatal(err)
		}
		pc.Close()
		usedRing := ringMissing(nw) == nil
		want := false
		switch c {
		case IOURingOn:
			want = IOURingSupport() == nil
		case IOURingAuto:
			want, _ = UDPSetup(c)
		}
		if usedRing != want {
			t.Errorf("IOURing %v: the Network used the ring: %v, want %v", c, usedRing, want)
		}
	}
}
