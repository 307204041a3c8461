package listener

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	"golang.org/x/net/ipv4"
)

// recordingBatch is a batchConn that keeps every batch written to it.
type recordingBatch struct {
	writes [][]sentReply
}

type sentReply struct {
	data string
	to   netip.AddrPort
}

func (r *recordingBatch) ReadBatch([]ipv4.Message, []netip.AddrPort) (int, error) {
	return 0, net.ErrClosed
}

func (r *recordingBatch) WriteBatch(ms []ipv4.Message, to []netip.AddrPort) (int, error) {
	var batch []sentReply
	for i := range ms {
		batch = append(batch, sentReply{string(ms[i].Buffers[0]), to[i]})
	}
	r.writes = append(r.writes, batch)
	return len(ms), nil
}

func TestOutboxSendsRepliesQueuedDuringAFlushInOneBatch(t *testing.T) {
	rec := &recordingBatch{}
	box := &outbox{s: &Server{log: zap.NewNop()}, bc: rec}
	room := make([]byte, 0, 64)
	// A flush hands its batch back for the flush after next, so the third
	// round refills the first round's slots, one more than it used, with
	// replies of other lengths: a slot's buffer is reused, never shared.
	rounds := [][]string{
		{"first", "second reply", "third"},
		{"fourth", "5"},
		{"a much longer sixth reply", "7", "eighth", "ninth, in a slot never used"},
	}
	for round, replies := range rounds {
		box.flushing = true // as while another miss's flush yields
		var want []sentReply
		for i, r := range replies {
			to := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(1000+i))
			room = append(room[:0], r...)
			box.send(room, to)
			want = append(want, sentReply{r, to})
		}
		for i := range room {
			room[i] = 'x' // the worker reuses its room once send returns
		}
		box.flush()
		if len(rec.writes) != round+1 {
			t.Fatalf("round %d: %d writes in all, want %d", round, len(rec.writes), round+1)
		}
		if got := rec.writes[round]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("round %d wrote %v, want %v", round, got, want)
		}
		if box.flushing || len(box.queued.msgs) != 0 {
			t.Errorf("round %d: box still flushing (%v) or holding %d replies", round, box.flushing, len(box.queued.msgs))
		}
	}
}

func TestOutboxFullSendsTheReplyOnItsOwn(t *testing.T) {
	srv, client := loopbackUDP(t), loopbackUDP(t)
	rec := &recordingBatch{}
	box := &outbox{s: &Server{log: zap.NewNop()}, pc: srv, bc: rec, flushing: true}
	to := client.LocalAddr().(*net.UDPAddr).AddrPort()
	for range udpBatch {
		box.send([]byte("queued"), to)
	}
	box.send([]byte("overflow"), to)
	if n := len(box.queued.msgs); n != udpBatch {
		t.Errorf("box holds %d replies, want %d", n, udpBatch)
	}
	client.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, err := client.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("overflow")) {
		t.Errorf("client read %q, %v; want the overflow reply at once", buf[:n], err)
	}
	if len(rec.writes) != 0 {
		t.Errorf("%d batches written while the flush was in progress", len(rec.writes))
	}
}

// loopbackUDP is a socket on 127.0.0.1, closed when the test ends.
func loopbackUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// burstHandler holds every question until n have arrived, so that their
// replies are all ready at once.
type burstHandler struct {
	n       int32
	arrived atomic.Int32
	all     chan struct{}
	once    sync.Once
}

func (h *burstHandler) Answer(ctx context.Context, req *dns.Msg) *dns.Msg {
	if h.arrived.Add(1) == h.n {
		h.once.Do(func() { close(h.all) })
	}
	select {
	case <-h.all:
	case <-ctx.Done():
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Answer = append(resp.Answer, mustRR(req.Question[0].Name+" 300 IN A 192.0.2.1"))
	return resp
}

func TestBurstOfMissRepliesReachesEveryClient(t *testing.T) {
	const n = 2 * udpBatch // more than one batch; the client socket holds them all
	h := &burstHandler{n: n, all: make(chan struct{})}
	_, addr := startServer(t, Config{}, h)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		m := query(fmt.Sprintf("q%d.burst.", i), dns.TypeA)
		m.Id = uint16(i)
		if _, err := c.Write(pack(t, m)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint16]bool{}
	buf := make([]byte, 512)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(seen) < n {
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d of %d replies: %v", len(seen), n, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:k]); err != nil {
			t.Fatalf("reply %d: %v", len(seen), err)
		}
		if want := fmt.Sprintf("q%d.burst.", r.Id); len(r.Answer) != 1 || r.Answer[0].Header().Name != want {
			t.Fatalf("reply for ID %d answers %v, want %s", r.Id, r.Answer, want)
		}
		if seen[r.Id] {
			t.Fatalf("ID %d answered twice", r.Id)
		}
		seen[r.Id] = true
	}
}
