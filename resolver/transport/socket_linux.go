package transport

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket options that make the kernel report, with each datagram, the
// largest fragment it was rebuilt from (Linux 4.14+). An unfragmented
// datagram carries no such message (threat model c5).
const (
	ipRecvFragSize   = 25 // IP_RECVFRAGSIZE, level IPPROTO_IP
	ipv6RecvFragSize = 77 // IPV6_RECVFRAGSIZE, level IPPROTO_IPV6
)

// openUDP opens the socket of one UDP association with the system calls it
// needs and no more: every query pays for them (issue #6). net.Dialer adds
// SO_BROADCAST, getsockname, getpeername and the parsing of the address;
// none of them is needed for a socket whose both ends we chose. The socket
// is non-blocking from its creation and waits through the Network's
// reactor, not the runtime's poller (reactor_linux.go says why).
func openUDP(_ context.Context, server netip.AddrPort, port uint16, cfg SocketConfig, r *reactor) (PacketConn, error) {
	family, local, remote := udpSockaddrs(server, port)
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := setupUDP(fd, family, port, cfg, local, remote); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	u := &udpConn{fd: fd, signal: make(chan struct{}, 1), armed: true}
	if err := r.add(u); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return u, nil
}

func udpSockaddrs(server netip.AddrPort, port uint16) (family int, local, remote unix.Sockaddr) {
	if server.Addr().Is6() {
		return unix.AF_INET6, &unix.SockaddrInet6{Port: int(port)},
			&unix.SockaddrInet6{Port: int(server.Port()), Addr: server.Addr().As16(), ZoneId: zoneID(server.Addr())}
	}
	return unix.AF_INET, &unix.SockaddrInet4{Port: int(port)}, &unix.SockaddrInet4{Port: int(server.Port()), Addr: server.Addr().As4()}
}

// zoneID is the interface index of a scoped IPv6 address, 0 without one.
func zoneID(a netip.Addr) uint32 {
	if a.Zone() == "" {
		return 0
	}
	ifi, err := net.InterfaceByName(a.Zone())
	if err != nil {
		n, _ := strconv.Atoi(a.Zone())
		return uint32(n)
	}
	return uint32(ifi.Index)
}

// setupUDP sets the options of a new UDP socket, binds it to the drawn port
// and connects it, so the kernel drops datagrams from any other source. An
// IPv6 socket is IPv6-only, so its port does not also take the IPv4 one. A
// kernel without the fragment-size option still gets a working socket: the
// EDNS size of 1232 remains the first defense.
func setupUDP(fd, family int, port uint16, cfg SocketConfig, local, remote unix.Sockaddr) error {
	level, opt := unix.IPPROTO_IP, ipRecvFragSize
	if family == unix.AF_INET6 {
		level, opt = unix.IPPROTO_IPV6, ipv6RecvFragSize
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	_ = unix.SetsockoptInt(fd, level, opt, 1)
	if cfg.FixedSourcePort != 0 {
		// Test mode without port randomisation: every socket binds the same
		// port, as one shared socket would be used.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	if cfg.ReadBuffer > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.ReadBuffer) // best effort: the kernel caps it
	}
	if err := unix.Bind(fd, local); err != nil {
		return os.NewSyscallError("bind", err)
	}
	if err := unix.Connect(fd, remote); err != nil {
		return os.NewSyscallError("connect", err)
	}
	return nil
}

// udpConn is a connected UDP socket whose readiness the reactor reports.
// Its calls never overlap: the exchange, then the sweeper or one watcher,
// use it in turn.
type udpConn struct {
	fd     int
	r      *reactor
	id     uint32        // the reactor's name for it
	signal chan struct{} // holds the reactor's word that a datagram is queued
	// onReady, when set, takes the reactor's word instead of signal (the
	// sweeper's). Guarded by r.mu.
	onReady func()
	// armed says the reactor will report the next datagram, so a read
	// waits for its word before it asks the kernel; without it every first
	// read met EAGAIN.
	armed bool
	timer *time.Timer
	oob   [128]byte
}

// ctl adds or re-arms the socket in the reactor's epoll instance, one-shot
// under its id.
func (u *udpConn) ctl(op int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(u.id)}
	if err := unix.EpollCtl(u.r.ep.fd, op, u.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// ready is the reactor's report that a datagram is queued.
func (u *udpConn) ready() {
	u.r.mu.Lock()
	fn := u.onReady
	u.r.mu.Unlock()
	if fn != nil {
		fn()
		return
	}
	select {
	case u.signal <- struct{}{}:
	default:
	}
}

// notify re-arms the socket and routes the reactor's next word to fn, or
// to a reader of the socket when fn is nil.
func (u *udpConn) notify(fn func()) error {
	u.r.mu.Lock()
	u.onReady = fn
	u.r.mu.Unlock()
	u.armed = true
	return u.ctl(unix.EPOLL_CTL_MOD)
}

func (u *udpConn) Write(b []byte) error {
	if err := write(u.fd, b); err != nil {
		return mapErr(os.NewSyscallError("write", err))
	}
	return nil
}

// ReadUntil waits for one datagram until end or until ctx ends.
func (u *udpConn) ReadUntil(ctx context.Context, end time.Time) (Datagram, error) {
	if err := ctx.Err(); err != nil {
		return Datagram{}, ctxTimeout(err)
	}
	for {
		if u.armed {
			if err := u.wait(ctx, end); err != nil {
				return Datagram{}, err
			}
		}
		dg, err := u.recv()
		switch {
		case err == nil:
			return dg, nil
		case err != unix.EAGAIN:
			return Datagram{}, mapErr(os.NewSyscallError("recvmsg", err))
		}
		if err := u.notify(nil); err != nil {
			return Datagram{}, err
		}
	}
}

// wait blocks until the reactor reports a datagram, end passes or ctx
// ends. A context that cannot be cancelled costs nothing here.
func (u *udpConn) wait(ctx context.Context, end time.Time) error {
	select {
	case <-u.signal:
		u.armed = false
		return nil
	default:
	}
	var expired <-chan time.Time
	if !end.IsZero() {
		d := time.Until(end)
		if d <= 0 {
			return errTimeoutDeadline
		}
		if u.timer == nil {
			u.timer = time.NewTimer(d)
		} else {
			u.timer.Reset(d)
		}
		defer u.timer.Stop()
		expired = u.timer.C
	}
	select {
	case <-u.signal:
		u.armed = false
		return nil
	case <-expired:
		return errTimeoutDeadline
	case <-ctx.Done():
		return ctxTimeout(ctx.Err())
	}
}

// recv reads one queued datagram, or fails with EAGAIN.
func (u *udpConn) recv() (Datagram, error) {
	bp := readPool.Get().(*[]byte)
	defer readPool.Put(bp)
	n, oobn, flags, from, err := recvmsg(u.fd, *bp, u.oob[:])
	if err != nil {
		return Datagram{}, err
	}
	return received(*bp, n, u.oob[:oobn], flags, from), nil
}

// Poll reads one datagram already queued, without waiting.
func (u *udpConn) Poll() (Datagram, bool) {
	dg, err := u.recv()
	return dg, err == nil
}

// Close forgets the socket in the reactor and closes it, which also takes
// it out of the epoll instance.
func (u *udpConn) Close() error {
	if u.fd < 0 {
		return nil // closing again must not close a number reused since
	}
	u.r.remove(u)
	fd := u.fd
	u.fd = -1
	return os.NewSyscallError("close", unix.Close(fd))
}

// write sends one datagram. Like recvmsg it retries a call a signal
// interrupted: giving up instead would make the poller wait for a
// readiness the socket already has.
func write(fd int, b []byte) error {
	for {
		_, err := unix.Write(fd, b)
		if err != unix.EINTR {
			return err
		}
	}
}

// recvmsg reads one datagram, its control data and its source address.
// The source is decoded from a raw sockaddr held on the stack, where
// unix.Recvmsg would allocate one for every read. The connected socket
// fixes the source of what arrives after connect(2), but a datagram that
// reached the port between bind(2) and connect(2) is still queued, so the
// Client compares it with the server (Datagram.From).
func recvmsg(fd int, buf, oob []byte) (n, oobn, flags int, from netip.AddrPort, err error) {
	var rsa unix.RawSockaddrAny
	iov := unix.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	msg := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&rsa)), Namelen: unix.SizeofSockaddrAny, Iov: &iov, Control: &oob[0]}
	msg.SetIovlen(1)
	msg.SetControllen(len(oob))
	for {
		r, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), 0)
		switch errno {
		case 0:
			return int(r), int(msg.Controllen), int(msg.Flags), sockaddrAddrPort(&rsa), nil
		case unix.EINTR:
			continue
		}
		return 0, 0, 0, netip.AddrPort{}, errno
	}
}

// sockaddrAddrPort decodes an IPv4 or IPv6 source address; anything else
// is the zero AddrPort: a sender not known.
func sockaddrAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// reassembled reports whether the control messages of one datagram carry
// a fragment size, that is, whether the kernel rebuilt it from fragments.
func reassembled(oob []byte) bool {
	if len(oob) == 0 {
		return false
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		// Control data we cannot read: assume the worst, TCP will tell.
		return true
	}
	for _, m := range msgs {
		if (m.Header.Level == unix.IPPROTO_IP && m.Header.Type == ipRecvFragSize) ||
			(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == ipv6RecvFragSize) {
			return true
		}
	}
	return false
}

func controlTruncated(flags int) bool { return flags&unix.MSG_CTRUNC != 0 }
