//go:build !linux

package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// readPool holds receive buffers one byte larger than maxUDPReply, so a
// full buffer shows an oversized datagram (Linux's readScratch does too).
var readPool = sync.Pool{New: func() any { b := make([]byte, maxUDPReply+1); return &b }}

// openUDP opens the socket of one UDP association from port to server
// through the net package, and sends first unless it is nil.
func openUDP(ctx context.Context, server netip.AddrPort, port uint16, cfg *SocketConfig, _ *reactor, first []byte) (PacketConn, error) {
	network, local := "udp4", net.IPv4zero
	if server.Addr().Is6() {
		network, local = "udp6", net.IPv6unspecified
	}
	d := net.Dialer{LocalAddr: &net.UDPAddr{IP: local, Port: int(port)}}
	c, err := d.DialContext(ctx, network, server.String())
	if err != nil {
		return nil, err
	}
	uc := c.(*net.UDPConn)
	if cfg.ReadBuffer > 0 {
		_ = uc.SetReadBuffer(cfg.ReadBuffer) // best effort: the kernel caps it
	}
	if first != nil {
		// Unmapped: DialUDPSend maps a failed write as Write does.
		if _, err := uc.Write(first); err != nil {
			_ = uc.Close()
			return nil, err
		}
	}
	return &udpConn{conn: uc}, nil
}

// IOURingSupport says that only Linux sets sockets up through io_uring.
func IOURingSupport() error { return errors.New("io_uring is Linux's") }

// reactor exists on Linux only; elsewhere the runtime's poller waits for
// the sockets and every Hold-On window gets a watcher goroutine.
type reactor struct{}

type udpConn struct{ conn *net.UDPConn }

func (u *udpConn) Write(b []byte) error {
	if _, err := u.conn.Write(b); err != nil {
		return mapErr(err)
	}
	return nil
}

// ReadUntil waits for one datagram until end or until ctx ends.
func (u *udpConn) ReadUntil(ctx context.Context, end time.Time) (Datagram, error) {
	stop, err := watchDeadline(ctx, end, u.conn)
	if err != nil {
		return Datagram{}, err
	}
	defer stop()
	bp := readPool.Get().(*[]byte)
	defer readPool.Put(bp)
	n, from, err := u.conn.ReadFromUDPAddrPort(*bp)
	if err != nil {
		return Datagram{}, readErr(ctx, err)
	}
	return received(*bp, n, nil, 0, from), nil
}

func (u *udpConn) Close() error { return u.conn.Close() }

// readControl reports no reassembly and no receive time where the kernel
// cannot tell them: the EDNS size of 1232 remains the defense against
// fragment poisoning, and Hold-On takes the read time.
func readControl([]byte) (reassembled bool, at time.Time) { return false, time.Time{} }

func controlTruncated(int) bool { return false }
