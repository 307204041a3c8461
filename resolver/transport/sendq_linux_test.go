package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// holdBatch makes nw's queue of first datagrams act as if a goroutine were
// yielding before its write, so that the datagrams of sockets dialed now
// wait in the queue; the returned function writes them.
func holdBatch(nw *socketNetwork) (flush func()) {
	q := &nw.reactor.sends
	q.mu.Lock()
	q.flushing = true
	q.mu.Unlock()
	return q.flush
}

// listenLoopback is a UDP server on a port of 127.0.0.1 of its own.
func listenLoopback(t *testing.T) *net.UDPConn {
	t.Helper()
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// receivedBy reads what srv receives within wait, in order.
func receivedBy(srv *net.UDPConn, wait time.Duration) []string {
	var got []string
	buf := make([]byte, 512)
	_ = srv.SetReadDeadline(time.Now().Add(wait))
	for {
		n, err := srv.Read(buf)
		if err != nil {
			return got
		}
		got = append(got, string(buf[:n]))
	}
}

func TestFirstDatagramsOfARoundLeaveInOneBatch(t *testing.T) {
	srv := listenLoopback(t)
	server := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	nw := NewSocketNetwork(SocketConfig{IOURing: ringMode(false)}).(*socketNetwork)
	flush := holdBatch(nw)
	before := time.Now()
	var conns []PacketConn
	for _, q := range []string{"one", "two", "three"} {
		pc, err := nw.DialUDPSend(context.Background(), server, []byte(q))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		conns = append(conns, pc)
	}
	if got := receivedBy(srv, 50*time.Millisecond); len(got) != 0 {
		t.Fatalf("server got %q before the batch was written", got)
	}
	if at := conns[0].(batchSender).SentAt(); !at.IsZero() {
		t.Fatalf("SentAt %v before the batch was written, want zero", at)
	}
	flush()
	if got := receivedBy(srv, 200*time.Millisecond); len(got) != 3 || got[0] != "one" || got[2] != "three" {
		t.Fatalf("server got %q, want one, two and three in order", got)
	}
	at := conns[0].(batchSender).SentAt()
	if at.Before(before) || at != conns[2].(batchSender).SentAt() {
		t.Fatalf("SentAt %v and %v, want one time after the dials began (%v)", at, conns[2].(batchSender).SentAt(), before)
	}
}

func TestQueuedDatagramOfAClosedSocketIsNeverSent(t *testing.T) {
	srv := listenLoopback(t)
	server := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	nw := NewSocketNetwork(SocketConfig{IOURing: ringMode(false)}).(*socketNetwork)
	flush := holdBatch(nw)
	closed, err := nw.DialUDPSend(context.Background(), server, []byte("closed"))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	// The next socket is likely to get the closed one's descriptor number.
	reused, err := nw.DialUDPSend(context.Background(), server, []byte("reused"))
	if err != nil {
		t.Fatal(err)
	}
	defer reused.Close()
	flush()
	if got := receivedBy(srv, 200*time.Millisecond); len(got) != 1 || got[0] != "reused" {
		t.Fatalf("server got %q, want only the open socket's datagram", got)
	}
	// Skipped, not written to a closed descriptor: a number closed and
	// reused between the queue's look at it and the write would carry the
	// datagram to another server.
	if err := closed.(*udpConn).sendErr.Load(); err != nil {
		t.Fatalf("the flush wrote to the closed socket: %v", err)
	}
}

func TestFailedBatchWriteEndsTheReadAtOnce(t *testing.T) {
	nw := NewSocketNetwork(SocketConfig{IOURing: ringMode(false)}).(*socketNetwork)
	pc, err := nw.DialUDPSend(context.Background(), netip.MustParseAddrPort("127.0.0.1:53"), make([]byte, 70000))
	if err != nil {
		t.Fatalf("dial: %v, want the failure at the read", err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = pc.Read(ctx)
	var se *os.SyscallError
	if !errors.As(err, &se) || se.Syscall != "write" || time.Since(start) > time.Second {
		t.Fatalf("read: %v after %v, want write's error at once", err, time.Since(start))
	}
}

// sentLate is an association whose first datagram left at a time of its own.
type sentLate struct {
	PacketConn
	at time.Time
}

func (s sentLate) SentAt() time.Time { return s.at }

func TestExchangeClockStartsWhenItsBatchLeft(t *testing.T) {
	start := time.Now()
	later := start.Add(300 * time.Microsecond)
	for _, tt := range []struct {
		name string
		conn PacketConn
		want time.Time
	}{
		{"BatchLeftAfterTheDial", sentLate{at: later}, later},
		{"NotYetKnown", sentLate{}, start},
		{"NotBatched", struct{ PacketConn }{}, start},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := sentTime(tt.conn, start); !got.Equal(tt.want) {
				t.Fatalf("sentTime = %v, want %v", got, tt.want)
			}
		})
	}
}
