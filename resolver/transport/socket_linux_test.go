package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/bulwark-dns/bulwark/resolver/internal/deadline"
)

func TestUDPSocketAsksKernelToReportReassembly(t *testing.T) {
	tests := []struct {
		name       string
		server     string
		level, opt int
	}{
		{"IPv4", "127.0.0.1:53", unix.IPPROTO_IP, ipRecvFragSize},
		{"IPv6", "[::1]:53", unix.IPPROTO_IPV6, ipv6RecvFragSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := NewSocketNetwork(SocketConfig{}).DialUDP(context.Background(), netip.MustParseAddrPort(tt.server))
			if err != nil {
				t.Skipf("no %s: %v", tt.name, err)
			}
			defer pc.Close()
			v, gerr := unix.GetsockoptInt(pc.(*udpConn).fd, tt.level, tt.opt)
			if gerr != nil || v != 1 {
				t.Fatalf("fragment-size option = %d, %v; want 1", v, gerr)
			}
		})
	}
}

// udpAddrs returns the local and remote address of an association's
// socket, as the kernel has them.
func udpAddrs(pc PacketConn) (local, remote netip.AddrPort, err error) {
	fd := pc.(*udpConn).fd
	lsa, lerr := unix.Getsockname(fd)
	rsa, rerr := unix.Getpeername(fd)
	if lerr != nil || rerr != nil {
		return local, remote, fmt.Errorf("getsockname: %v, getpeername: %v", lerr, rerr)
	}
	return sockaddrAddr(lsa), sockaddrAddr(rsa), nil
}

func sockaddrAddr(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

func cmsg(level, typ int, value uint32) []byte {
	return cmsgData(level, typ, binary.NativeEndian.AppendUint32(nil, value))
}

// cmsgData is one control message carrying data, padded as the kernel
// pads it.
func cmsgData(level, typ int, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	lenSize := unix.SizeofCmsghdr - 8 // Len is a size_t, Level and Type are ints
	if lenSize == 8 {
		binary.NativeEndian.PutUint64(b, uint64(unix.CmsgLen(len(data))))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(unix.CmsgLen(len(data))))
	}
	binary.NativeEndian.PutUint32(b[lenSize:], uint32(level))
	binary.NativeEndian.PutUint32(b[lenSize+4:], uint32(typ))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// timestampCmsg is SCM_TIMESTAMPNS for t, in this system's struct timespec.
func timestampCmsg(t time.Time) []byte {
	ts := unix.NsecToTimespec(t.UnixNano())
	var data []byte
	if unsafe.Sizeof(ts) == 16 {
		data = binary.NativeEndian.AppendUint64(binary.NativeEndian.AppendUint64(nil, uint64(ts.Sec)), uint64(ts.Nsec))
	} else {
		data = binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(nil, uint32(ts.Sec)), uint32(ts.Nsec))
	}
	return cmsgData(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, data)
}

func TestControlMessagesTellReassemblyAndReceiveTime(t *testing.T) {
	at := time.Unix(1795000000, 123456789)
	tests := []struct {
		name     string
		oob      []byte
		wantFrag bool
		wantAt   time.Time
	}{
		{"NoControlData", nil, false, time.Time{}},
		{"IPv4FragmentSize", cmsg(unix.IPPROTO_IP, ipRecvFragSize, 1276), true, time.Time{}},
		{"IPv6FragmentSize", cmsg(unix.IPPROTO_IPV6, ipv6RecvFragSize, 1232), true, time.Time{}},
		{"OtherIPOption", cmsg(unix.IPPROTO_IP, unix.IP_TTL, 64), false, time.Time{}},
		{"FragmentSizeAfterAnotherOption", append(cmsg(unix.IPPROTO_IP, unix.IP_TTL, 64), cmsg(unix.IPPROTO_IP, ipRecvFragSize, 572)...), true, time.Time{}},
		{"CutShortOfItsLength", cmsg(unix.IPPROTO_IP, ipRecvFragSize, 1276)[:unix.CmsgLen(0)], true, time.Time{}},
		{"ReceiveTime", timestampCmsg(at), false, at},
		{"FragmentSizeAndReceiveTime", append(cmsg(unix.IPPROTO_IP, ipRecvFragSize, 572), timestampCmsg(at)...), true, at},
		{"ReceiveTimeOfAnotherSize", cmsgData(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, []byte{1, 2, 3}), false, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frag, got := readControl(tt.oob)
			if frag != tt.wantFrag || !got.Equal(tt.wantAt) {
				t.Fatalf("readControl = %v, %v; want %v, %v", frag, got, tt.wantFrag, tt.wantAt)
			}
		})
	}
}

// TestDatagramsCarryTheirKernelReceiveTime: a reply read a while after it
// arrived says when it arrived. Loopback delivers within the server's
// write, so the reply is queued once the handler has written it.
func TestDatagramsCarryTheirKernelReceiveTime(t *testing.T) {
	stampingOn(t)
	written := make(chan time.Time, 1)
	srv := startServer(t, "ipv4", "127.0.0.1", func(w dns.ResponseWriter, q *dns.Msg) {
		_ = w.WriteMsg(answer(q, "192.0.2.1"))
		written <- time.Now()
	})
	pc, err := NewSocketNetwork(SocketConfig{}).DialUDP(context.Background(), srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sent := time.Now()
	if err := pc.Write(pack(new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA))); err != nil {
		t.Fatal(err)
	}
	queued := <-written
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	dg, err := pc.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A millisecond of slack for the two clocks' granularity.
	if dg.At.Before(sent.Add(-time.Millisecond)) || dg.At.After(queued.Add(time.Millisecond)) {
		t.Errorf("receive time %v: want between the send %v and the server's write %v, not the read 300 ms later",
			dg.At, sent, queued)
	}
}

// TestReadBufferSetsTheSocketsReceiveBuffer: Linux doubles the asked size
// for its bookkeeping; the default is far larger than what is asked here.
func TestReadBufferSetsTheSocketsReceiveBuffer(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  SocketConfig
		want func(int) bool
	}{
		{"Asked", SocketConfig{ReadBuffer: 4096}, func(v int) bool { return v == 8192 }},
		{"KernelDefault", SocketConfig{}, func(v int) bool { return v > 8192 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := NewSocketNetwork(tt.cfg).DialUDP(context.Background(), netip.MustParseAddrPort("127.0.0.1:53"))
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			v, gerr := unix.GetsockoptInt(pc.(*udpConn).fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if !tt.want(v) {
				t.Fatalf("SO_RCVBUF = %d", v)
			}
		})
	}
}

// TestHoldOnJudgesALateReadByTheReplysArrival: the forgery arrives at once
// and the genuine reply 1.5 s later, against an expected RTT of 2 s, but
// the reader is held up for 1.2 s (the test holds the reactor's lock, as a
// loaded machine's scheduler may hold up a goroutine), so that by the time
// it reads the forgery it no longer looks early. Judged by its kernel
// receive time it still is: the exchange waits, sees the conflict and asks
// over TCP, where it would have returned the forgery at once.
func TestHoldOnJudgesALateReadByTheReplysArrival(t *testing.T) {
	asked, release := make(chan struct{}), make(chan struct{})
	srv := startServer(t, "ipv4", "127.0.0.1", func(w dns.ResponseWriter, q *dns.Msg) {
		if w.RemoteAddr().Network() != "udp" {
			_ = w.WriteMsg(answer(q, "192.0.2.1"))
			return
		}
		asked <- struct{}{}
		<-release
		_ = w.WriteMsg(answer(q, "6.6.6.6"))
		time.Sleep(1500 * time.Millisecond)
		_ = w.WriteMsg(answer(q, "192.0.2.1"))
	})
	stampingOn(t)
	sn := NewSocketNetwork(SocketConfig{}).(*socketNetwork)
	c := NewExchanger(sn, Config{Timeout: 10 * time.Second, HoldOnMax: 10 * time.Second}, nil)
	defer c.Close()
	type result struct {
		r   *Response
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := c.Exchange(context.Background(), Query{Server: srv.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET, RTT: 2 * time.Second})
		done <- result{r, err}
	}()
	<-asked
	sn.reactor.mu.Lock()
	close(release)
	time.Sleep(1200 * time.Millisecond)
	sn.reactor.mu.Unlock()
	res := <-done
	if res.err != nil || !res.r.TCP || firstA(t, res.r) != "192.0.2.1" {
		t.Fatalf("err %v, reply %+v: the forgery read late was not judged early", res.err, res.r)
	}
	if s := c.Stats(); s.HoldOnWaits != 1 || s.InjectionsDetected != 1 {
		t.Errorf("hold-on waits %d, injections %d; want 1 and 1", s.HoldOnWaits, s.InjectionsDetected)
	}
}

// stampingOn makes sure the kernel stamps packets as they arrive for the
// rest of the test: it does while some socket asks for receive times,
// once a worker thread has switched it on, and stamps a packet that
// arrived before that when it is read. A socket that asks is kept open,
// and a probe sent to it must come back stamped before its read.
func stampingOn(t *testing.T) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 16), make([]byte, 128)
	waitFor(t, "packets stamped on arrival", func() bool {
		if err := unix.Sendto(fd, []byte("probe"), 0, sa); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		read := time.Now()
		_, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, at := readControl(oob[:oobn])
		return !at.IsZero() && read.Sub(at) >= 10*time.Millisecond
	})
}

// A resolution's detached deadline ends its exchanges through the reads'
// own timers: asking for its Done channel would make the timer the
// resolver spares on every cold name (issue #6).
func TestExchangeKeepsADetachedDeadlineWithoutItsTimer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		handle func(dns.ResponseWriter, *dns.Msg)
	}{
		{"Answered", answerA},
		{"Silent", func(dns.ResponseWriter, *dns.Msg) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, "ipv4", "127.0.0.1", tc.handle)
			c := socketClient(t, 0)
			const span = 300 * time.Millisecond
			ctx := deadline.Detached(context.Background(), span)
			defer ctx.Cancel()
			start := time.Now()
			r, err := c.Exchange(ctx, Query{Server: srv.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET})
			took := time.Since(start)
			if ctx.Timed() {
				t.Error("the exchange made the deadline's timer")
			}
			if tc.name == "Answered" {
				if err != nil || r == nil {
					t.Fatalf("answered server: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrTimeout) || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Errorf("silent server: err %v with the context's %v, want a timeout at the deadline", err, ctx.Err())
			}
			// A second of slack for a loaded machine; the client's own
			// timeout (Config.Timeout) is 3 s.
			if took < span || took > span+time.Second {
				t.Errorf("silent server: ended after %v, want about %v", took, span)
			}
		})
	}
}

// TestReactorEndsEachWaitAtItsOwnDeadline: silent exchanges with their
// deadlines registered latest first each end at their own deadline, the
// earlier ones bringing the reactor's wake-up forward and the later ones
// outliving the expiries before them, while an answered one is unharmed.
func TestReactorEndsEachWaitAtItsOwnDeadline(t *testing.T) {
	silent := startServer(t, "ipv4", "127.0.0.1", func(dns.ResponseWriter, *dns.Msg) {})
	answered := startServer(t, "ipv4", "127.0.0.2", answerA)
	c := socketClient(t, 0)
	spans := []time.Duration{600 * time.Millisecond, 400 * time.Millisecond, 200 * time.Millisecond}
	type outcome struct {
		took time.Duration
		err  error
	}
	got := make([]outcome, len(spans))
	var wg sync.WaitGroup
	for i, span := range spans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := deadline.Detached(context.Background(), span)
			defer ctx.Cancel()
			start := time.Now()
			_, err := c.Exchange(ctx, Query{Server: silent.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET})
			got[i] = outcome{time.Since(start), err}
		}()
		time.Sleep(20 * time.Millisecond) // registered in this order
	}
	ctx := deadline.Detached(context.Background(), time.Second)
	if r, err := c.Exchange(ctx, Query{Server: answered.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET}); err != nil || r == nil {
		t.Errorf("answered server among waits for silent ones: %v", err)
	}
	ctx.Cancel()
	wg.Wait()
	for i, span := range spans {
		if !errors.Is(got[i].err, ErrTimeout) {
			t.Errorf("wait %d (%v): err %v, want a timeout", i, span, got[i].err)
		}
		// Half a second of slack for a loaded machine, well below the gaps
		// that would show a wait ended at another's deadline or not at all
		// before the client's own 3 s.
		if got[i].took < span || got[i].took > span+500*time.Millisecond {
			t.Errorf("wait %d ended after %v, want about %v", i, got[i].took, span)
		}
	}
}
