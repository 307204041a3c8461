package transport

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bulwark-dns/bulwark/resolver/internal/deadline"
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
// reactor, not the runtime's poller (reactor_linux.go says why). first,
// when given, leaves in a batch after the set-up (sendq_linux.go).
func openUDP(_ context.Context, server netip.AddrPort, port uint16, cfg *SocketConfig, r *reactor, first []byte) (PacketConn, error) {
	// No socket until the reactor makes or hands one over.
	u := &udpConn{signal: make(chan struct{}, 1), drained: true, fd: -1}
	if err := r.add(u, &udpSetup{server: server, port: port, cfg: cfg}); err != nil {
		if u.fd >= 0 {
			_ = closeFD(u.fd)
		}
		return nil, err
	}
	if first != nil {
		r.sends.push(u, first)
	}
	return u, nil
}

// udpSetup is what a new socket is set up for: the association from port
// to server, with the Network's options.
type udpSetup struct {
	server netip.AddrPort
	port   uint16
	cfg    *SocketConfig
}

// setUp sets up u's socket without the ring: its options, bind and
// connect and its registration, each a system call of its own.
func (u *udpConn) setUp(s *udpSetup) error {
	var buf [maxSockOpts]sockOpt
	if err := setupUDP(u.fd, udpOptions(&buf, s.server.Addr().Is6(), s.cfg), s.server, s.port); err != nil {
		return err
	}
	return u.register()
}

// rawSockaddrs holds the local and remote addresses of one association
// as the kernel reads them, for both families: the calls one by one keep
// them on the stack, the ring in its arguments.
type rawSockaddrs struct {
	local4, remote4 unix.RawSockaddrInet4
	local6, remote6 unix.RawSockaddrInet6
}

// set fills in the addresses of an association from port to server and
// returns them with their length.
func (a *rawSockaddrs) set(server netip.AddrPort, port uint16) (local, remote unsafe.Pointer, n uintptr) {
	if server.Addr().Is6() {
		a.local6 = unix.RawSockaddrInet6{Family: unix.AF_INET6}
		a.remote6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: server.Addr().As16(), Scope_id: zoneID(server.Addr())}
		putPort(&a.local6.Port, port)
		putPort(&a.remote6.Port, server.Port())
		return unsafe.Pointer(&a.local6), unsafe.Pointer(&a.remote6), unsafe.Sizeof(a.local6)
	}
	a.local4 = unix.RawSockaddrInet4{Family: unix.AF_INET}
	a.remote4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: server.Addr().As4()}
	putPort(&a.local4.Port, port)
	putPort(&a.remote4.Port, server.Port())
	return unsafe.Pointer(&a.local4), unsafe.Pointer(&a.remote4), unsafe.Sizeof(a.local4)
}

// putPort stores a port in network byte order, as a sockaddr holds it.
func putPort(dst *uint16, port uint16) {
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(dst))[:], port)
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

// sockOpt is one option of a new upstream socket; without a required one
// the set-up fails, a best-effort one the kernel may refuse.
type sockOpt struct {
	level, name int
	value       int32
	required    bool
}

// maxSockOpts bounds the options udpOptions gives.
const maxSockOpts = 5

// udpOptions appends to buf the options of a new upstream socket, the
// same whichever way it is set up (setupUDP, ring.setUpUDP):
//   - IPv6-only on IPv6, so that its port does not also take the IPv4 one;
//   - the size of the fragments a datagram was rebuilt from, best effort:
//     without it the EDNS size of 1232 remains the first defense;
//   - each datagram's receive time, so that Hold-On judges a reply by
//     when it arrived, not by when a loaded machine read it (holdon.go);
//     best effort: without it the read time stands in;
//   - in the test mode without port randomisation, the shared port, as one
//     shared socket would be used;
//   - the receive buffer asked for, best effort: the kernel caps it.
func udpOptions(buf *[maxSockOpts]sockOpt, v6 bool, cfg *SocketConfig) []sockOpt {
	opts := buf[:0]
	frag := sockOpt{unix.IPPROTO_IP, ipRecvFragSize, 1, false}
	if v6 {
		opts = append(opts, sockOpt{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1, true})
		frag.level, frag.name = unix.IPPROTO_IPV6, ipv6RecvFragSize
	}
	opts = append(opts, frag, sockOpt{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1, false})
	if cfg.FixedSourcePort != 0 {
		opts = append(opts, sockOpt{unix.SOL_SOCKET, unix.SO_REUSEPORT, 1, true})
	}
	if cfg.ReadBuffer > 0 {
		opts = append(opts, sockOpt{unix.SOL_SOCKET, unix.SO_RCVBUF, int32(min(cfg.ReadBuffer, 1<<30)), false})
	}
	return opts
}

// setupUDP sets opts on a new UDP socket, binds it to port and connects
// it to server, so the kernel drops datagrams from any other source.
//
// An upstream socket's system calls are raw (RawSyscall: without the
// runtime's bookkeeping for a call that may block) because none of them
// blocks: the socket is non-blocking from its creation, a UDP socket's
// bind and connect only set its addresses, and its close has no data to
// linger for. So the bookkeeping around each call (and the waking of the
// runtime's monitor thread from its park, as for the listener's batch
// calls, batch_linux.go) bought nothing; without it the socket layer of
// an exchange took 3.7% less CPU (docs/performance.md, Fourteenth round).
// Each pointer goes to the kernel converted in the call's own arguments,
// which keeps its object in place until the call returns.
func setupUDP(fd int, opts []sockOpt, server netip.AddrPort, port uint16) error {
	for _, o := range opts {
		v := o.value
		_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(o.level), uintptr(o.name), uintptr(unsafe.Pointer(&v)), 4, 0)
		if e != 0 && o.required {
			return os.NewSyscallError("setsockopt", e)
		}
	}
	var addrs rawSockaddrs
	local, remote, n := addrs.set(server, port)
	if _, _, e := unix.RawSyscall(unix.SYS_BIND, uintptr(fd), uintptr(local), n); e != 0 {
		return os.NewSyscallError("bind", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(remote), n); e != 0 {
		return os.NewSyscallError("connect", e)
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
	// sweeper's). Guarded by r.mu, as are sends on signal.
	onReady queueWatcher
	// drained says the socket's queue was empty at the last read (or at
	// its registration, so the first read waits instead of meeting EAGAIN)
	// and its owner has had every report since: whatever arrives next is
	// reported. stash holds a datagram read ahead of its turn (recv).
	drained bool
	stash   *Datagram
	// first is the datagram waiting in r.sends, and sent when the batch
	// that wrote it began; both guarded by r.sends.mu. sendErr is why the
	// write failed, for the next read to report.
	first   []byte
	sent    time.Time
	sendErr atomic.Pointer[os.SyscallError]
	// waitEnd is when the reader's wait ends, and waitSlot its place in
	// the reactor's waits (0: none; waitExpired once the reactor ended
	// it). Guarded by r.mu.
	waitEnd  time.Time
	waitSlot int
}

// readScratch is what one read hands the kernel: two receive buffers,
// their control data and recvmmsg's headers. A read borrows it from
// readScratches for the system call's length: in the socket, which lives
// through its Hold-On window, it would be 640 bytes more to allocate and
// collect per exchange, and the buffers two pool round trips (issue #6).
type readScratch struct {
	buf  [2][maxUDPReply + 1]byte // one byte over: a full buffer shows an oversized datagram
	oob  [2][128]byte
	rsa  [2]unix.RawSockaddrAny
	iov  [2]unix.Iovec
	msgs [2]unix.Mmsghdr
}

var readScratches = sync.Pool{New: func() any { return new(readScratch) }}

// register adds the socket to the reactor's epoll instance under its id,
// edge-triggered: every datagram that arrives is reported once, with no
// re-arming in between (each would be one more system call per exchange).
// So whoever takes over the socket reads what is queued before it waits.
func (u *udpConn) register() error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(u.id)}
	if _, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(u.r.ep.fd), unix.EPOLL_CTL_ADD, uintptr(u.fd), uintptr(unsafe.Pointer(&ev)), 0, 0); e != 0 {
		return os.NewSyscallError("epoll_ctl", e)
	}
	return nil
}

// ready is the reactor's report that a datagram arrived.
func (u *udpConn) ready() {
	u.r.mu.Lock()
	w := u.onReady
	if w == nil {
		select {
		case u.signal <- struct{}{}:
		default:
		}
	}
	u.r.mu.Unlock()
	if w != nil {
		w.datagramQueued()
	}
}

// notify routes the reactor's reports to w, or to a reader of the socket
// when w is nil. w is also told at once when a datagram may be
// waiting that no report will announce: one reported that the reader had
// not taken, one read ahead, or a queue the last read did not empty. A
// reader taking over reads what is queued before it waits.
func (u *udpConn) notify(w queueWatcher) {
	u.r.mu.Lock()
	u.onReady = w
	pending := w != nil && (u.stash != nil || !u.drained)
	if w != nil {
		select {
		case <-u.signal:
			pending = true
		default:
		}
	}
	u.r.mu.Unlock()
	if w == nil {
		u.drained = false // reports may have gone to the sweeper
	}
	if pending {
		w.datagramQueued()
	}
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
		if u.drained && u.stash == nil {
			if err := u.wait(ctx, end); err != nil {
				return Datagram{}, err
			}
			// The failed write of the first datagram wakes the read.
			if err := u.sendErr.Load(); err != nil {
				return Datagram{}, mapErr(err)
			}
		}
		dg, err := u.recv()
		switch {
		case err == nil:
			return dg, nil
		case err != unix.EAGAIN:
			return Datagram{}, mapErr(os.NewSyscallError("recvmmsg", err))
		}
	}
}

// wait blocks until the reactor reports a datagram, end passes or ctx
// ends. When nothing but a time can end it (a context that cannot be
// cancelled, or one that ends only at its deadline), the reactor keeps
// that time with its own epoll wait's, and the wait is one receive: a
// pooled timer and a select over it were 3% of a cold name's samples
// (issue #6). Any other context, and a wait with no end, is
// deadline.WaitUntil's.
func (u *udpConn) wait(ctx context.Context, end time.Time) error {
	end, alone := deadline.WaitEnd(ctx, end)
	if !alone || end.IsZero() {
		if err := deadline.WaitUntil(ctx, u.signal, end); err != nil {
			return ctxTimeout(err)
		}
		return nil
	}
	select {
	case <-u.signal:
		return nil // reported already: nothing to wait for
	default:
	}
	if !time.Now().Before(end) {
		return ctxTimeout(context.DeadlineExceeded)
	}
	u.r.await(u, end)
	<-u.signal
	if u.r.endWait(u) {
		return ctxTimeout(context.DeadlineExceeded)
	}
	return nil
}

// recv returns the datagram read ahead, or reads what is queued, or fails
// with EAGAIN. It asks the kernel for two datagrams: with edge-triggered
// reports, a second datagram that arrived with the first is announced by
// no report of its own, and the one system call tells whether it exists.
func (u *udpConn) recv() (Datagram, error) {
	if dg := u.stash; dg != nil {
		u.stash = nil
		return *dg, nil
	}
	sc := readScratches.Get().(*readScratch)
	defer readScratches.Put(sc)
	var got [2]rcvd
	n, err := recvmmsg2(u.fd, sc, &got)
	// An error other than EAGAIN (a pending ICMP report) comes before
	// what is queued, which it does not announce.
	u.drained = err == unix.EAGAIN || (err == nil && n < 2)
	if err != nil {
		return Datagram{}, err
	}
	if n == 2 {
		dg := received(sc.buf[1][:], got[1].n, sc.oob[1][:got[1].oobn], got[1].flags, got[1].from)
		u.stash = &dg
	}
	return received(sc.buf[0][:], got[0].n, sc.oob[0][:got[0].oobn], got[0].flags, got[0].from), nil
}

// Poll reads one datagram already queued, without waiting. A pending
// socket error (an ICMP one, which an on-path injector can send) is
// reported before the datagrams queued behind it and cleared by the
// report, so Poll reads once more: stopping there left a late reply
// unjudged, with no edge left to report it.
func (u *udpConn) Poll() (Datagram, bool) {
	dg, err := u.recv()
	if err != nil && err != unix.EAGAIN {
		dg, err = u.recv()
	}
	return dg, err == nil
}

// SentAt is when the batch that wrote the first datagram began, zero
// until then.
func (u *udpConn) SentAt() time.Time { return u.r.sends.sentAt(u) }

// Close forgets the socket in the reactor and in the queue of first
// datagrams, and closes it, which also takes it out of the epoll instance.
func (u *udpConn) Close() error {
	if u.fd < 0 {
		return nil // closing again must not close a number reused since
	}
	u.r.sends.forget(u)
	u.r.remove(u)
	fd := u.fd
	u.fd = -1
	return os.NewSyscallError("close", closeFD(fd))
}

// write sends one datagram, again when a signal interrupted the call.
func write(fd int, b []byte) error {
	for {
		_, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}

// closeFD closes an upstream socket.
func closeFD(fd int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0); e != 0 {
		return e
	}
	return nil
}

// rcvd is what recvmmsg2 learned of one datagram.
type rcvd struct {
	n, oobn, flags int
	from           netip.AddrPort
}

// recvmmsg2 reads up to two queued datagrams into sc, with their control
// data and their source addresses, without waiting; it returns how many it
// read, or EAGAIN. The sources are decoded from raw sockaddrs held in sc, where
// unix.Recvmsg would allocate one per read. The connected socket
// fixes the source of what arrives after connect(2), but a datagram that
// reached the port between bind(2) and connect(2) is still queued, so the
// Client compares it with the server (Datagram.From).
func recvmmsg2(fd int, sc *readScratch, got *[2]rcvd) (int, error) {
	rsa, iov, msgs := &sc.rsa, &sc.iov, &sc.msgs
	for i := range msgs {
		iov[i].Base = &sc.buf[i][0]
		iov[i].SetLen(len(sc.buf[i]))
		h := &msgs[i].Hdr
		h.Name, h.Namelen = (*byte)(unsafe.Pointer(&rsa[i])), unix.SizeofSockaddrAny
		h.Iov, h.Control = &iov[i], &sc.oob[i][0]
		h.SetIovlen(1)
		h.SetControllen(len(sc.oob[i]))
	}
	for {
		r, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), 2, 0, 0, 0)
		switch errno {
		case 0:
			for i := range int(r) {
				got[i] = rcvd{n: int(msgs[i].Len), oobn: int(msgs[i].Hdr.Controllen), flags: int(msgs[i].Hdr.Flags), from: sockaddrAddrPort(&rsa[i])}
			}
			return int(r), nil
		case unix.EINTR:
			continue
		}
		return 0, errno
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

// readControl reads the control messages of one datagram: whether they
// carry a fragment size, that is, whether the kernel rebuilt it from
// fragments, and the kernel's receive time. It walks them in place: every
// datagram carries its time, and unix.ParseSocketControlMessage would
// allocate for each.
func readControl(oob []byte) (reassembled bool, at time.Time) {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			// Control data we cannot read: assume the worst, TCP will tell.
			return true, at
		}
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == ipRecvFragSize,
			h.Level == unix.IPPROTO_IPV6 && h.Type == ipv6RecvFragSize:
			reassembled = true
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS:
			at = timespecAt(data)
		}
		oob = rest
	}
	return reassembled, at
}

// timespecAt decodes SCM_TIMESTAMPNS's struct timespec: two 64-bit words,
// or two 32-bit ones on the 32-bit systems (arm, mips) whose old
// SO_TIMESTAMPNS this is. It is read by bytes, as control data need not be
// aligned for a 64-bit load on them.
func timespecAt(b []byte) time.Time {
	switch len(b) {
	case 16:
		return time.Unix(int64(binary.NativeEndian.Uint64(b)), int64(binary.NativeEndian.Uint64(b[8:])))
	case 8:
		return time.Unix(int64(int32(binary.NativeEndian.Uint32(b))), int64(int32(binary.NativeEndian.Uint32(b[4:]))))
	}
	return time.Time{}
}

func controlTruncated(flags int) bool { return flags&unix.MSG_CTRUNC != 0 }
