package transport

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
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
// is non-blocking from its creation, so os.NewFile hands it to the runtime's
// poller, and deadlines and cancellation work as on a net.UDPConn.
func openUDP(_ context.Context, server netip.AddrPort, port uint16, cfg SocketConfig) (PacketConn, error) {
	family, local, remote := udpSockaddrs(server, port)
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := setupUDP(fd, family, port, cfg, local, remote); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "udp")
	raw, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &udpConn{file: f, raw: raw}, nil
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

// udpConn is a connected UDP socket in the runtime's poller. The
// arguments and results of its current system call live in it, so that
// the function handed to the poller captures one pointer: locals captured
// by a closure escaped one by one, eight allocations per read (issue #6).
// Its calls never overlap: the exchange, then the sweeper or one watcher,
// use it in turn.
type udpConn struct {
	file *os.File
	raw  syscall.RawConn
	oob  [128]byte
	call sockCall
}

// sockCall is one system call's arguments and results.
type sockCall struct {
	buf            []byte
	n, oobn, flags int
	from           netip.AddrPort
	err            error
	ep, op         int // epoll_ctl's
	ev             unix.EpollEvent
}

func (u *udpConn) Write(b []byte) error {
	u.call.buf = b
	rerr := u.raw.Write(u.writeOnce)
	err := u.call.err
	u.call = sockCall{}
	if rerr != nil {
		return mapErr(rerr)
	}
	if err != nil {
		return mapErr(os.NewSyscallError("write", err))
	}
	return nil
}

func (u *udpConn) writeOnce(fd uintptr) bool {
	u.call.err = write(int(fd), u.call.buf)
	return u.call.err != unix.EAGAIN
}

// ReadUntil waits for one datagram until end or until ctx ends.
func (u *udpConn) ReadUntil(ctx context.Context, end time.Time) (Datagram, error) {
	stop, err := watchDeadline(ctx, end, u.file)
	if err != nil {
		return Datagram{}, err
	}
	defer stop()
	bp := readPool.Get().(*[]byte)
	defer readPool.Put(bp)
	u.call.buf = *bp
	rerr := u.raw.Read(u.recvOnce)
	c := u.call
	u.call = sockCall{}
	if rerr != nil {
		return Datagram{}, readErr(ctx, rerr)
	}
	if c.err != nil {
		return Datagram{}, readErr(ctx, os.NewSyscallError("recvmsg", c.err))
	}
	return received(*bp, c.n, u.oob[:c.oobn], c.flags, c.from), nil
}

func (u *udpConn) recvOnce(fd uintptr) bool {
	c := &u.call
	c.n, c.oobn, c.flags, c.from, c.err = recvmsg(int(fd), c.buf, u.oob[:])
	return c.err != unix.EAGAIN
}

// Poll reads one datagram already queued. The socket is non-blocking, so
// recvmsg returns EAGAIN at once when none is; Control, unlike Read, does
// not first look at a read deadline that may have passed.
func (u *udpConn) Poll() (Datagram, bool) {
	bp := readPool.Get().(*[]byte)
	defer readPool.Put(bp)
	u.call.buf = *bp
	cerr := u.raw.Control(u.pollOnce)
	c := u.call
	u.call = sockCall{}
	if cerr != nil || c.err != nil {
		return Datagram{}, false
	}
	return received(*bp, c.n, u.oob[:c.oobn], c.flags, c.from), true
}

func (u *udpConn) pollOnce(fd uintptr) { u.recvOnce(fd) }

// arm asks ep to report once, under id, that a datagram is queued.
func (u *udpConn) arm(ep *epoller, id uint32, add bool) error {
	u.call.ep, u.call.op = ep.fd, unix.EPOLL_CTL_MOD
	if add {
		u.call.op = unix.EPOLL_CTL_ADD
	}
	u.call.ev = unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(id)}
	cerr := u.raw.Control(u.ctlOnce)
	err := u.call.err
	u.call = sockCall{}
	if cerr != nil {
		return cerr
	}
	return os.NewSyscallError("epoll_ctl", err)
}

func (u *udpConn) ctlOnce(fd uintptr) {
	u.call.err = unix.EpollCtl(u.call.ep, u.call.op, int(fd), &u.call.ev)
}

func (u *udpConn) Close() error { return u.file.Close() }

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
