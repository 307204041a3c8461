package listener

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// serveUDP is the one read loop of a UDP socket; each query is answered in
// its own goroutine while a slot is free.
func (s *Server) serveUDP(pc *net.UDPConn) {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("udp read", zap.Stringer("addr", pc.LocalAddr()), zap.Error(err))
			continue
		}
		if !s.acquire() {
			s.stats.queries.Add(1)
			s.stats.dropped.Add(1)
			continue
		}
		pkt := append([]byte(nil), buf[:n]...)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.release()
			if out := s.process(pkt, from, true); out != nil {
				if _, err := pc.WriteToUDPAddrPort(out, from); err != nil {
					s.log.Debug("udp write", zap.Stringer("client", from), zap.Error(err))
				}
			}
		}()
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
