package simnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// maxTCPIdle closes a real TCP connection that sends nothing for this long,
// like NSD's tcp-timeout, so a stuck client cannot pin a goroutine forever.
const maxTCPIdle = 10 * time.Second

// sockets are the real UDP and TCP sockets of one listening server.
type sockets struct {
	udp  *net.UDPConn
	tcp  *net.TCPListener
	done chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool // open TCP connections; guarded by mu
}

// Listen serves every server that is not yet listening on real UDP and TCP
// sockets at its address and the network's port. Servers added later need
// another Listen (or their own). Only loopback addresses are accepted.
func (n *Network) Listen() error {
	for _, s := range n.Servers() {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every real socket and waits for their goroutines. The
// in-memory network keeps working.
func (n *Network) Close() error {
	var errs []error
	for _, s := range n.Servers() {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// Listen serves the server on real UDP and TCP sockets. It is a no-op when
// the server already listens.
func (s *Server) Listen() error {
	if !s.addr.IsLoopback() {
		return fmt.Errorf("simnet: refusing to listen on %s: only loopback addresses are simulated", s.addr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock != nil {
		return nil
	}
	ap := netip.AddrPortFrom(s.addr, s.net.port)
	udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return listenErr("udp", ap, err)
	}
	tcp, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
	if err != nil {
		_ = udp.Close()
		return listenErr("tcp", ap, err)
	}
	sk := &sockets{udp: udp, tcp: tcp, done: make(chan struct{}), conns: map[net.Conn]bool{}}
	s.sock = sk
	sk.wg.Add(2)
	go s.serveUDP(sk)
	go s.serveTCP(sk)
	return nil
}

func listenErr(proto string, ap netip.AddrPort, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("simnet: %s %s is already in use by another process or test; pick other addresses in a private 127.x/16: %w", proto, ap, err)
	}
	return fmt.Errorf("simnet: listen %s %s: %w", proto, ap, err)
}

// Close stops the server's real sockets and waits for its goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	sk := s.sock
	s.sock = nil
	s.mu.Unlock()
	if sk == nil {
		return nil
	}
	close(sk.done)
	err := errors.Join(sk.udp.Close(), sk.tcp.Close())
	sk.mu.Lock()
	for c := range sk.conns {
		_ = c.Close()
	}
	sk.mu.Unlock()
	sk.wg.Wait()
	return err
}

func (s *Server) serveUDP(sk *sockets) {
	defer sk.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := sk.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		reply, delay := s.handle(buf[:n], from, false)
		if reply == nil {
			continue
		}
		sk.wg.Add(1)
		go func() {
			defer sk.wg.Done()
			if !sk.sleep(delay) {
				return
			}
			_, _ = sk.udp.WriteToUDPAddrPort(reply, from)
		}()
	}
}

// sleep waits d or until the server closes; it reports whether to go on.
func (sk *sockets) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-sk.done:
		return false
	}
}

func (s *Server) serveTCP(sk *sockets) {
	defer sk.wg.Done()
	for {
		c, err := sk.tcp.AcceptTCP()
		if err != nil {
			return
		}
		if ok, silent := s.acceptsTCP(); !ok && !silent {
			_ = c.SetLinger(0) // RST, the closest a listener gets to refusing
			_ = c.Close()
			continue
		}
		sk.mu.Lock()
		sk.conns[c] = true
		sk.mu.Unlock()
		sk.wg.Add(1)
		go s.serveConn(sk, c)
	}
}

// serveConn answers the length-prefixed messages of one connection in
// order (RFC 7766 §6.2.1 allows it).
func (s *Server) serveConn(sk *sockets, c *net.TCPConn) {
	defer sk.wg.Done()
	defer func() {
		sk.mu.Lock()
		delete(sk.conns, c)
		sk.mu.Unlock()
		_ = c.Close()
	}()
	from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	var hdr [2]byte
	for {
		_ = c.SetReadDeadline(time.Now().Add(maxTCPIdle))
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		reply, delay := s.handle(msg, from, true)
		if reply == nil || !sk.sleep(delay) {
			continue
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(reply)))
		if _, err := c.Write(append(out, reply...)); err != nil {
			return
		}
	}
}
