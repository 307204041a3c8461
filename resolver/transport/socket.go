package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// SocketConfig holds the options of the real Network. The zero value means
// every default.
type SocketConfig struct {
	// PortMin and PortMax bound the UDP source ports, drawn with crypto/rand
	// for every query from this one range (not the kernel's ephemeral
	// allocator, not per-worker pools). Default 1024-65535. Ports below 1024
	// are never used.
	PortMin, PortMax uint16
	// AvoidPorts are never used as source ports (services on this host
	// that a reply must not hit, PowerDNS udp-source-port-avoid).
	AvoidPorts []uint16
	// BindTries bounds the redraws when a drawn port is in use. Default 32.
	BindTries int
	// FixedSourcePort, when non-zero, is used as the source port of every
	// UDP query. It exists only for the attack suite's "defense off" runs,
	// which show that the tests catch a resolver without port randomisation;
	// the config file never sets it. Sockets then share the port through
	// SO_REUSEPORT, so concurrent queries to one server may read each
	// other's replies (seen as wrong-ID near-misses).
	FixedSourcePort uint16
	// ReadBuffer, when non-zero, sets each UDP socket's receive buffer in
	// bytes (Unbound's so-rcvbuf). The attack suite's fixed-port run raises
	// it so that a flood is examined rather than dropped by the kernel;
	// default: the kernel's.
	ReadBuffer int
	// IOURing says when each UDP socket is set up through io_uring
	// (uring_linux.go) rather than one system call at a time; the zero
	// value decides by the machine (setupway.go). IOURingOff is also the
	// escape hatch for a sandbox whose seccomp filter kills a process that
	// calls io_uring_setup instead of refusing the call.
	IOURing IOURing
	// Dialer dials TCP; nil means a zero net.Dialer.
	Dialer *net.Dialer
}

// socketNetwork is the Network of real sockets.
type socketNetwork struct {
	cfg     SocketConfig
	ports   []uint16 // the allowed source ports; drawn uniformly
	rand    *entropy
	reactor reactor // waits for the UDP sockets (Linux)
}

// NewSocketNetwork returns the Network that opens real sockets.
func NewSocketNetwork(cfg SocketConfig) Network {
	if cfg.PortMax == 0 {
		cfg.PortMax = 65535
	}
	cfg.PortMin = max(cfg.PortMin, 1024)
	if cfg.BindTries <= 0 {
		cfg.BindTries = 32
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &net.Dialer{}
	}
	return &socketNetwork{cfg: cfg, ports: allowedPorts(cfg), rand: newEntropy()}
}

// allowedPorts lists the source port range minus the avoided ports, so a
// draw is one uniform index instead of a loop of redraws.
func allowedPorts(cfg SocketConfig) []uint16 {
	avoid := make(map[uint16]bool, len(cfg.AvoidPorts))
	for _, p := range cfg.AvoidPorts {
		avoid[p] = true
	}
	var ports []uint16
	for p := int(cfg.PortMin); p <= int(cfg.PortMax); p++ {
		if !avoid[uint16(p)] {
			ports = append(ports, uint16(p))
		}
	}
	return ports
}

func (n *socketNetwork) drawPort() (uint16, error) {
	if n.cfg.FixedSourcePort != 0 {
		return n.cfg.FixedSourcePort, nil
	}
	if len(n.ports) == 0 {
		return 0, fmt.Errorf("source port range %d-%d holds no usable port", n.cfg.PortMin, n.cfg.PortMax)
	}
	return n.ports[n.rand.below(len(n.ports))], nil
}

// DialUDP binds a new socket to a random source port and connects it to
// server, so the kernel drops datagrams from any other address or port.
func (n *socketNetwork) DialUDP(ctx context.Context, server netip.AddrPort) (PacketConn, error) {
	return n.dial(ctx, server, nil)
}

// DialUDPSend is DialUDP, then the first datagram sent.
func (n *socketNetwork) DialUDPSend(ctx context.Context, server netip.AddrPort, first []byte) (PacketConn, error) {
	return n.dial(ctx, server, first)
}

func (n *socketNetwork) dial(ctx context.Context, server netip.AddrPort, first []byte) (PacketConn, error) {
	server = netip.AddrPortFrom(server.Addr().Unmap(), server.Port())
	var lastErr error
	for range n.cfg.BindTries {
		port, err := n.drawPort()
		if err != nil {
			return nil, err
		}
		c, err := openUDP(ctx, server, port, &n.cfg, &n.reactor, first)
		if err == nil {
			return c, nil
		}
		var se *os.SyscallError
		if errors.As(err, &se) && se.Syscall == "write" {
			return nil, mapErr(err)
		}
		if !errors.Is(err, syscall.EADDRINUSE) || n.cfg.FixedSourcePort != 0 {
			return nil, fmt.Errorf("dial udp %s: %w", server, err)
		}
		lastErr = err
	}
	return nil, fmt.Errorf("dial udp %s: no free source port in %d draws: %w", server, n.cfg.BindTries, lastErr)
}

// DialTCP connects to server; the kernel picks the source port, as the
// three-way handshake already proves the peer sees our packets.
func (n *socketNetwork) DialTCP(ctx context.Context, server netip.AddrPort) (StreamConn, error) {
	server = netip.AddrPortFrom(server.Addr().Unmap(), server.Port())
	c, err := n.cfg.Dialer.DialContext(ctx, "tcp", server.String())
	if err != nil {
		return nil, fmt.Errorf("dial tcp %s: %w", server, mapErr(err))
	}
	return &tcpConn{conn: c}, nil
}

// mapErr turns the errors the resolver tells apart into the package's
// sentinels.
func mapErr(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Errorf("%w: %w", ErrRefused, err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

// maxUDPReply is the largest UDP reply read whole. We advertise 1232, so
// only a server ignoring EDNS sends more; anything beyond this size is
// sure to have crossed a real network in fragments (T4). Keeping the
// buffer small keeps thousands of in-flight reads cheap.
const maxUDPReply = 4096

// Read waits for one datagram until ctx ends: ctx's deadline is the
// read's end. Each platform's udpConn has its own ReadUntil.
func (u *udpConn) Read(ctx context.Context) (Datagram, error) {
	return u.ReadUntil(ctx, deadlineOf(ctx))
}

// received turns one read of n bytes from the sender from into a
// Datagram: a copy of the data, the verdict on fragmentation and the
// kernel's receive time. Control data cut short might have held the
// fragment size, and an oversized datagram was fragmented on any real
// path: assume the worst, the Client then asks over TCP.
func received(buf []byte, n int, oob []byte, flags int, from netip.AddrPort) Datagram {
	data := make([]byte, min(n, maxUDPReply))
	copy(data, buf[:n])
	frag, at := readControl(oob)
	frag = frag || controlTruncated(flags) || n > maxUDPReply
	return Datagram{Data: data, Reassembled: frag, From: from, At: at}
}

// readErr is the error of a read on a socket in the runtime's poller that
// failed: ErrTimeout when ctx ended it. The socket's deadline (ctx's, or
// the end a window's read was given) often fires before ctx's own timer:
// that is a timeout too, and mapErr's unwrapping and wrapping cost a
// Hold-On watcher more than its read (issue #6).
func readErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return ctxTimeout(cerr)
	}
	if err == os.ErrDeadlineExceeded {
		return errTimeoutDeadline
	}
	return mapErr(err)
}

// Reads ending with their context are frequent (every Hold-On window ends
// so), so the two usual errors are wrapped once, not per read (issue #6).
var (
	errTimeoutDeadline = fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded)
	errTimeoutCanceled = fmt.Errorf("%w: %w", ErrTimeout, context.Canceled)
)

// ctxTimeout wraps the error of an ended context in ErrTimeout.
func ctxTimeout(err error) error {
	switch err {
	case context.DeadlineExceeded:
		return errTimeoutDeadline
	case context.Canceled:
		return errTimeoutCanceled
	}
	return fmt.Errorf("%w: %w", ErrTimeout, err)
}

type tcpConn struct{ conn net.Conn }

// WriteMsg sends the length prefix and message in one write, so they
// usually travel in one segment.
func (t *tcpConn) WriteMsg(b []byte) error {
	if len(b) > 65535 {
		return fmt.Errorf("tcp message of %d bytes exceeds 65535", len(b))
	}
	buf := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(buf, uint16(len(b)))
	copy(buf[2:], b)
	if _, err := t.conn.Write(buf); err != nil {
		return mapErr(err)
	}
	return nil
}

func (t *tcpConn) ReadMsg(ctx context.Context) ([]byte, error) {
	stop, err := watchDeadline(ctx, deadlineOf(ctx), t.conn)
	if err != nil {
		return nil, err
	}
	defer stop()
	var l [2]byte
	if _, err := io.ReadFull(t.conn, l[:]); err != nil {
		return nil, readErr(ctx, err)
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(t.conn, b); err != nil {
		return nil, readErr(ctx, err)
	}
	return b, nil
}

func (t *tcpConn) Close() error { return t.conn.Close() }

// deadliner is the part of net.Conn that watchDeadline needs.
type deadliner interface{ SetReadDeadline(time.Time) error }

// watchDeadline sets the connection's read deadline to end (zero: none)
// and arranges for ctx's end to end a blocked read. The returned stop
// must be called when the read is over.
func watchDeadline(ctx context.Context, end time.Time, c deadliner) (stop func() bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxTimeout(err)
	}
	if err := c.SetReadDeadline(end); err != nil {
		return nil, err
	}
	return context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) }), nil
}

// deadlineOf is ctx's deadline, zero without one.
func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
