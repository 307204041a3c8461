package listener

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// serveUDP is the read loop of one worker socket. It reads batches with
// recvmmsg, answers cache hits in the loop itself and sends their replies
// as one sendmmsg batch; a miss is copied out and answered on a miss
// worker while a slot is free, so a slow resolution never holds the loop,
// and its reply leaves through the socket's outbox (outbox.go).
func (s *Server) serveUDP(pc *net.UDPConn) {
	defer s.wg.Done()
	v4 := pc.LocalAddr().(*net.UDPAddr).IP.To4() != nil
	bc := newBatchConn(pc, v4)
	box := s.newOutbox(pc, v4)
	in, out := make([]ipv4.Message, udpBatch), make([]ipv4.Message, udpBatch)
	froms, tos := make([]netip.AddrPort, udpBatch), make([]netip.AddrPort, udpBatch)
	bufs := make([][]byte, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, udpReadSize)}
		bufs[i] = make([]byte, ednsBufferSize)
		out[i].Buffers = [][]byte{bufs[i]}
	}
	batch := udpBatch
	for {
		n, err := bc.ReadBatch(in[:batch], froms)
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("udp read", zap.Stringer("addr", pc.LocalAddr()), zap.Error(err))
			continue
		}
		hits := 0
		for i := range in[:n] {
			m, from := &in[i], froms[i]
			raw := m.Buffers[0][:m.N]
			if m.Flags&syscall.MSG_TRUNC != 0 {
				// Larger than any query: not worth a FORMERR.
				s.stats.queries.Add(1)
				s.stats.dropped.Add(1)
				continue
			}
			if k, ok := s.serveHit(raw, from, bufs[hits], true); ok {
				out[hits].Buffers[0] = bufs[hits][:k]
				tos[hits] = from
				hits++
				continue
			}
			s.dispatchUDP(box, raw, from)
		}
		s.writeBatch(bc, out[:hits], tos[:hits])
		batch = nextBatch(n)
	}
}

// nextBatch sizes the next recvmmsg from what the last one read: twice as
// many slots, at least minBatch, at most udpBatch. Every call prepares all
// its slots, so at moderate load, when a wake-up finds one or two
// datagrams, 64 slots cost more than the reads themselves; under a flood
// the batch is back at 64 within three reads.
func nextBatch(n int) int {
	return min(max(2*n, minBatch), udpBatch)
}

const (
	// udpBatch is the most datagrams one recvmmsg or sendmmsg moves, and
	// minBatch the fewest slots a recvmmsg offers.
	udpBatch = 64
	minBatch = 4
	// udpReadSize holds any real query; a longer datagram is dropped.
	udpReadSize = 4096
)

// batchConn is the recvmmsg/sendmmsg view of a UDP socket. Addresses are
// netip.AddrPort in the socket's family (see udpAddrPort), so a datagram
// and its reply need no net.Addr.
type batchConn interface {
	// ReadBatch fills ms[i].Buffers[0], N and Flags, and from[i].
	ReadBatch(ms []ipv4.Message, from []netip.AddrPort) (int, error)
	// WriteBatch sends ms[i].Buffers[0] to to[i].
	WriteBatch(ms []ipv4.Message, to []netip.AddrPort) (int, error)
}

// xnetBatch is x/net's recvmmsg/sendmmsg, for systems without
// rawBatchConn; ipv4 and ipv6 share the Message type.
type xnetBatch struct {
	pc interface {
		ReadBatch(ms []ipv4.Message, flags int) (int, error)
		WriteBatch(ms []ipv4.Message, flags int) (int, error)
	}
	v4 bool
}

func xnetBatchConn(pc *net.UDPConn, v4 bool) batchConn {
	if v4 {
		return xnetBatch{ipv4.NewPacketConn(pc), true}
	}
	return xnetBatch{ipv6.NewPacketConn(pc), false}
}

func (x xnetBatch) ReadBatch(ms []ipv4.Message, from []netip.AddrPort) (int, error) {
	n, err := x.pc.ReadBatch(ms, 0)
	for i := range n {
		from[i] = udpAddrPort(ms[i].Addr, x.v4)
	}
	return n, err
}

func (x xnetBatch) WriteBatch(ms []ipv4.Message, to []netip.AddrPort) (int, error) {
	for i := range ms {
		ms[i].Addr = net.UDPAddrFromAddrPort(to[i])
	}
	return x.pc.WriteBatch(ms, 0)
}

// udpAddrPort is the client's address as the socket's family writes it:
// an IPv4 socket wants 4-byte addresses, a dual-stack IPv6 socket keeps
// IPv4-mapped ones.
func udpAddrPort(a net.Addr, v4 bool) netip.AddrPort {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ua.AddrPort()
	if v4 {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}

// writeBatch sends the hits' replies; a datagram the kernel refuses is
// skipped, as a lost reply would be.
func (s *Server) writeBatch(bc batchConn, ms []ipv4.Message, to []netip.AddrPort) {
	for len(ms) > 0 {
		n, err := bc.WriteBatch(ms, to)
		if err != nil {
			s.log.Debug("udp batch write", zap.Error(err))
			n = max(n, 1)
		}
		ms, to = ms[n:], to[n:]
	}
}

// missJob is a UDP query the answer cache could not serve.
type missJob struct {
	box  *outbox
	pkt  []byte
	from netip.AddrPort
}

// dispatchUDP answers a miss while a slot is free: on the miss worker
// that finished last if one is idle, else on a new one.
func (s *Server) dispatchUDP(box *outbox, raw []byte, from netip.AddrPort) {
	if !s.acquire() {
		s.stats.queries.Add(1)
		s.stats.dropped.Add(1)
		return
	}
	job := missJob{box: box, pkt: append([]byte(nil), raw...), from: from}
	if w := s.misses.take(); w != nil {
		w.jobs <- job
		return
	}
	s.wg.Add(1)
	go s.missWorker(newMissWorker(), job)
}

// missWorker answers job, then the misses handed to w, until the pool
// ends it.
func (s *Server) missWorker(w *missWorker, job missJob) {
	defer s.wg.Done()
	for ok := true; ok; job, ok = <-w.jobs {
		s.answerMiss(job, w.room)
		if !s.misses.park(w) {
			return
		}
	}
}

// sweepMisses ends the miss workers idle for a period, each period, until
// Shutdown.
func (s *Server) sweepMisses() {
	defer s.wg.Done()
	t := time.NewTicker(missWorkerIdle)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.misses.sweep()
		case <-s.stopSweep:
			return
		}
	}
}

// answerMiss resolves one miss, replies and frees its slot. The reply may
// be packed into room, which is free again once it returns.
func (s *Server) answerMiss(job missJob, room []byte) {
	defer s.release()
	if out := s.processInto(room, job.pkt, job.from, true); out != nil {
		job.box.send(out, job.from)
	}
}

// serveTCP accepts connections while fewer than MaxTCPConns are open.
func (s *Server) serveTCP(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off rather than spin.
			s.log.Warn("tcp accept", zap.Stringer("addr", ln.Addr()), zap.Error(err))
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case s.conns <- struct{}{}:
		default:
			s.stats.dropped.Add(1)
			c.Close()
			continue
		}
		if !s.track(c) {
			<-s.conns
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

// track registers c so that Shutdown can wake it; false after Shutdown.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.active[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, c)
}

// tcpWriter serialises the answers of pipelined queries on one connection.
type tcpWriter struct {
	mu sync.Mutex
	c  net.Conn
}

func (w *tcpWriter) write(msg []byte) error {
	frame := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(frame, uint16(len(msg)))
	copy(frame[2:], msg)
	return w.writeFrame(frame)
}

// tcpHitSize bounds the answers a TCP connection serves from the answer
// cache in its read loop; larger ones take the slow path.
const tcpHitSize = 4096

func (w *tcpWriter) writeFrame(frame []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	// A client that stops reading must not hold a goroutine forever.
	w.c.SetWriteDeadline(time.Now().Add(DefaultTCPIdleTimeout))
	_, err := w.c.Write(frame)
	return err
}

// serveConn reads pipelined queries (RFC 7766 §6.2.1.1) and answers each
// in its own goroutine, in whatever order they finish. When reading stops
// (idle, client closed, Shutdown) it waits for the outstanding answers and
// closes the connection.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() { <-s.conns }()
	defer s.untrack(c)
	defer c.Close()
	client := remoteAddrPort(c)
	w := &tcpWriter{c: c}
	var pending sync.WaitGroup
	defer pending.Wait()
	r := bufio.NewReader(c)
	hitBuf := make([]byte, 2+tcpHitSize)
	for {
		c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		// Checked after the deadline is set, so that Shutdown's wake-up
		// deadline cannot be overwritten unseen.
		if s.isClosing() {
			return
		}
		msg, err := readFrame(r)
		if err != nil {
			return
		}
		if n, ok := s.serveHit(msg, client, hitBuf[2:], false); ok {
			binary.BigEndian.PutUint16(hitBuf, uint16(n))
			if err := w.writeFrame(hitBuf[:2+n]); err != nil {
				s.log.Debug("tcp write", zap.Stringer("client", client), zap.Error(err))
			}
			continue
		}
		if !s.acquire() {
			s.stats.queries.Add(1)
			if out := s.busy(msg, client); out != nil {
				w.write(out)
			}
			continue
		}
		pending.Add(1)
		go func() {
			defer pending.Done()
			defer s.release()
			if out := s.process(msg, client, false); out != nil {
				if err := w.write(out); err != nil {
					s.log.Debug("tcp write", zap.Stringer("client", client), zap.Error(err))
				}
			}
		}()
	}
}

// busy is the SERVFAIL for a TCP query that found no free slot.
func (s *Server) busy(raw []byte, client netip.AddrPort) []byte {
	if len(raw) < headerLen || raw[2]&0x80 != 0 || s.access.decide(client.Addr()) != Allow {
		s.stats.dropped.Add(1)
		return nil
	}
	return s.encode(raw, reject(raw, nil, dns.RcodeServerFailure), clientEDNS{}, false)
}

func readFrame(r *bufio.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func remoteAddrPort(c net.Conn) netip.AddrPort {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}
