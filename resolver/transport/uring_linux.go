package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is an io_uring instance with one use: it runs the set-up of an
// upstream UDP socket (its options, bind, connect, the query, the epoll
// registration and the making of the next socket) as one linked chain of
// operations, one system call where the plain path makes seven or more.
// On this kind of guest a system call's entry and exit cost more than
// the work of most of these calls (issue #6, docs/performance.md,
// Eleventh round). Every operation of the chain completes inline, so a
// chain is a synchronous call: the reactor's mutex serialises chains,
// and nothing is pending between them.
//
// It needs Linux 6.11 (IORING_OP_BIND; socket options through
// IORING_OP_URING_CMD came in 6.7). newRing probes for the operations and
// fails on older kernels, under seccomp filters that refuse io_uring, or
// with kernel.io_uring_disabled set; the reactor then makes the calls
// one by one. Both ways set the options udpOptions gives.
type ring struct {
	fd     int
	maps   [2][]byte // the rings and the entries, as mapped
	sqTail *uint32
	sqMask uint32
	sqArr  []uint32
	sqes   []sqe
	cqHead *uint32
	cqTail *uint32
	cqMask uint32
	cqes   []cqe
	// broken is set when the ring failed in a way that may leave
	// operations queued; the reactor stops using it.
	broken bool
	// args is what the kernel reads while a chain runs. It lives in the
	// ring, on the heap, where a goroutine stack's move cannot take it.
	args ringArgs
}

type ringArgs struct {
	addrs rawSockaddrs
	ev    unix.EpollEvent
	vals  [maxSockOpts]int32 // the options' values
}

// sqe is a submission queue entry, written field by field at the offsets
// of struct io_uring_sqe: several fields are unions of two 32-bit halves,
// whose place in a 64-bit word depends on the byte order.
type sqe [64]byte

// cqe is a completion queue entry, struct io_uring_cqe.
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// ringParams is struct io_uring_params.
type ringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sq                                                                     [10]uint32 // struct io_sqring_offsets
	cq                                                                     [10]uint32 // struct io_cqring_offsets
}

// The constants of include/uapi/linux/io_uring.h that the ring uses.
const (
	opConnect  = 16
	opEpollCtl = 29
	opSocket   = 45
	opURingCmd = 46
	opBind     = 56

	sqeLink     = 1 << 2 // IOSQE_IO_LINK: a failure cancels the rest
	sqeHardlink = 1 << 3 // IOSQE_IO_HARDLINK: the chain goes on after a failure

	setupSubmitAll  = 1 << 7 // IORING_SETUP_SUBMIT_ALL
	featSingleMmap  = 1 << 0 // IORING_FEAT_SINGLE_MMAP
	enterGetEvents  = 1 << 0 // IORING_ENTER_GETEVENTS
	registerProbe   = 8      // IORING_REGISTER_PROBE
	probeSupported  = 1      // IO_URING_OP_SUPPORTED
	cmdSetsockopt   = 3      // SOCKET_URING_OP_SETSOCKOPT
	offSQEs         = 0x10000000
	ringEntries     = 16
	maxChain        = 12
	sqeOffOff       = 8  // off, addr2, cmd_op
	sqeOffAddr      = 16 // addr, level and optname
	sqeOffLen       = 24
	sqeOffUserData  = 32
	sqeOffFileIndex = 44 // file_index, optlen
	sqeOffAddr3     = 48 // addr3, optval
)

// ringOps are the operations a chain uses.
var ringOps = [...]uint8{opConnect, opEpollCtl, opSocket, opURingCmd, opBind}

// newRing sets up a ring, or says why this kernel cannot give one.
func newRing() (*ring, error) {
	var p ringParams
	p.flags = setupSubmitAll
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, ringEntries, uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, os.NewSyscallError("io_uring_setup", e)
	}
	g := &ring{fd: int(fd)}
	if err := g.probe(); err != nil {
		_ = unix.Close(g.fd)
		return nil, err
	}
	if err := g.mapRings(&p); err != nil {
		_ = unix.Close(g.fd)
		return nil, err
	}
	return g, nil
}

// IOURingSupport says why the socket Network cannot set sockets up
// through io_uring here, or nil when it can. It sets up a ring and
// closes it: a daemon asks once, to say so at start.
func IOURingSupport() error {
	g, err := newRing()
	if err != nil {
		return err
	}
	for _, m := range g.maps {
		_ = unix.Munmap(m)
	}
	return unix.Close(g.fd)
}

// probe asks the kernel whether it knows every operation of the chain.
func (g *ring) probe() error {
	var p struct {
		lastOp, opsLen uint8
		_              uint16
		_              [3]uint32
		ops            [64]struct {
			op, _ uint8
			flags uint16
			_     uint32
		}
	}
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(g.fd), registerProbe, uintptr(unsafe.Pointer(&p)), uintptr(len(p.ops)), 0, 0)
	if e != 0 {
		return os.NewSyscallError("io_uring_register", e)
	}
	for _, op := range ringOps {
		if int(op) >= int(p.opsLen) || p.ops[op].flags&probeSupported == 0 {
			return fmt.Errorf("io_uring: the kernel lacks operation %d", op)
		}
	}
	return nil
}

// mapRings maps the submission and completion rings, which the kernel
// lays out in one mapping since Linux 5.4, and the entries.
func (g *ring) mapRings(p *ringParams) error {
	if p.features&featSingleMmap == 0 {
		return errors.New("io_uring: no single mapping of the rings")
	}
	sqOff, cqOff := &p.sq, &p.cq // head, tail, ring_mask, ring_entries, flags/overflow, dropped/cqes, array
	size := max(sqOff[6]+p.sqEntries*4, cqOff[5]+p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	rings, err := unix.Mmap(g.fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap", err)
	}
	entries, err := unix.Mmap(g.fd, offSQEs, int(p.sqEntries)*len(sqe{}), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		_ = unix.Munmap(rings)
		return os.NewSyscallError("mmap", err)
	}
	g.maps = [2][]byte{rings, entries}
	base := unsafe.Pointer(&rings[0])
	at := func(off uint32) *uint32 { return (*uint32)(unsafe.Add(base, off)) }
	g.sqTail, g.sqMask = at(sqOff[1]), *at(sqOff[2])
	g.sqArr = unsafe.Slice(at(sqOff[6]), p.sqEntries)
	g.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&entries[0])), p.sqEntries)
	g.cqHead, g.cqTail, g.cqMask = at(cqOff[0]), at(cqOff[1]), *at(cqOff[2])
	g.cqes = unsafe.Slice((*cqe)(unsafe.Add(base, cqOff[5])), p.cqEntries)
	return nil
}

// chain is one socket's set-up: the operations in order, and for each the
// system call it stands for, or "" for a best-effort option whose failure
// does not stop the set-up (setupUDP ignores the same errors).
type chain struct {
	ops   [maxChain]sqe
	names [maxChain]string
	n     int
}

func (c *chain) push(name string, op uint8, fd int) *sqe {
	s := &c.ops[c.n]
	c.names[c.n] = name
	c.n++
	s[0] = op
	binary.NativeEndian.PutUint32(s[4:], uint32(fd))
	return s
}

func (c *chain) setsockopt(name string, fd, level, opt int, val *int32) {
	s := c.push(name, opURingCmd, fd)
	binary.NativeEndian.PutUint32(s[sqeOffOff:], cmdSetsockopt)
	binary.NativeEndian.PutUint32(s[sqeOffAddr:], uint32(level))
	binary.NativeEndian.PutUint32(s[sqeOffAddr+4:], uint32(opt))
	binary.NativeEndian.PutUint32(s[sqeOffFileIndex:], 4)
	binary.NativeEndian.PutUint64(s[sqeOffAddr3:], uint64(uintptr(unsafe.Pointer(val))))
}

// sockaddr adds bind or connect of fd to the address at sa, n bytes long.
func (c *chain) sockaddr(name string, op uint8, fd int, sa unsafe.Pointer, n uintptr) {
	s := c.push(name, op, fd)
	binary.NativeEndian.PutUint64(s[sqeOffAddr:], uint64(uintptr(sa)))
	binary.NativeEndian.PutUint64(s[sqeOffOff:], uint64(n))
}

// socket adds the making of a socket of the family, best effort.
func (c *chain) socket(family int) {
	s := c.push("", opSocket, family)
	binary.NativeEndian.PutUint64(s[sqeOffOff:], unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	binary.NativeEndian.PutUint32(s[sqeOffLen:], unix.IPPROTO_UDP)
}

func (c *chain) epollAdd(epfd, fd int, ev *unix.EpollEvent) {
	s := c.push("epoll_ctl", opEpollCtl, epfd)
	binary.NativeEndian.PutUint32(s[sqeOffLen:], unix.EPOLL_CTL_ADD)
	binary.NativeEndian.PutUint64(s[sqeOffOff:], uint64(fd))
	binary.NativeEndian.PutUint64(s[sqeOffAddr:], uint64(uintptr(unsafe.Pointer(ev))))
}

// setUpUDP sets udpOptions on u's socket, binds it to s.port,
// connects it to s.server and registers the socket with the epoll
// instance epfd under u.id, in one system call. The query is not in the
// chain: it leaves in a batch (sendq_linux.go). When all that
// succeeded, the same call makes the next socket of the family, whose
// descriptor it returns as spare (-1 without one). The caller holds the
// reactor's mutex.
func (g *ring) setUpUDP(u *udpConn, s *udpSetup, epfd int) (spare int, err error) {
	a := &g.args
	var c chain
	local, remote, n := a.addrs.set(s.server, s.port)
	var buf [maxSockOpts]sockOpt
	for i, o := range udpOptions(&buf, s.server.Addr().Is6(), s.cfg) {
		name := ""
		if o.required {
			name = "setsockopt"
		}
		a.vals[i] = o.value
		c.setsockopt(name, u.fd, o.level, o.name, &a.vals[i])
	}
	c.sockaddr("bind", opBind, u.fd, local, n)
	c.sockaddr("connect", opConnect, u.fd, remote, n)
	a.ev = unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(u.id)}
	c.epollAdd(epfd, u.fd, &a.ev)
	_, family := familyIndex(s.server.Addr().Is6())
	c.socket(family)
	res, err := g.run(&c)
	if next := res[c.n-1]; next >= 0 {
		return int(next), err
	}
	return -1, err
}

// run submits c linked, waits for all its completions and reports the
// first failure of an operation that is not best effort, named after its
// system call, so that EADDRINUSE from bind reads as it does from
// bind(2). A best-effort option that fails only stops the chain when it
// was malformed; then the set-up fails with that error.
func (g *ring) run(c *chain) (res [maxChain]int32, err error) {
	tail := *g.sqTail
	for i := range c.n {
		if i < c.n-1 {
			c.ops[i][1] = sqeLink
			if c.names[i] == "" {
				c.ops[i][1] = sqeHardlink
			}
		}
		binary.NativeEndian.PutUint64(c.ops[i][sqeOffUserData:], uint64(i))
		idx := (tail + uint32(i)) & g.sqMask
		g.sqes[idx] = c.ops[i]
		g.sqArr[idx] = idx
	}
	atomic.StoreUint32(g.sqTail, tail+uint32(c.n))
	for i := range res {
		res[i] = -int32(syscall.ECANCELED)
	}
	if err := g.complete(c.n, &res); err != nil {
		g.broken = true
		return res, err
	}
	return res, chainError(c, &res)
}

// complete enters the kernel until n operations were submitted and their
// n completions reaped into res, by the index each carries.
func (g *ring) complete(n int, res *[maxChain]int32) error {
	submitted, reaped := 0, 0
	for reaped < n {
		k, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(g.fd), uintptr(n-submitted), uintptr(n-reaped), enterGetEvents, 0, 0)
		switch e {
		case 0:
			submitted += int(k)
		case unix.EINTR:
		default:
			return os.NewSyscallError("io_uring_enter", e)
		}
		head := *g.cqHead
		for tail := atomic.LoadUint32(g.cqTail); head != tail; head++ {
			c := g.cqes[head&g.cqMask]
			if c.userData >= uint64(n) {
				return fmt.Errorf("io_uring: completion for operation %d of %d", c.userData, n)
			}
			res[c.userData] = c.res
			reaped++
		}
		atomic.StoreUint32(g.cqHead, head)
	}
	return nil
}

// chainError is the set-up's failure, if a required operation did not
// succeed. Its cause is a required operation's own error (the operations
// after it read ECANCELED), else that of a best-effort option the kernel
// could not even start, which cancels the whole chain.
func chainError(c *chain, res *[maxChain]int32) error {
	failed := -1
	for i := range c.n {
		if c.names[i] != "" && res[i] < 0 {
			failed = i
			break
		}
	}
	if failed < 0 {
		return nil
	}
	cause := -1
	for i := range c.n {
		if res[i] < 0 && res[i] != -int32(syscall.ECANCELED) && (cause < 0 || c.names[i] != "") {
			cause = i
			if c.names[i] != "" {
				break
			}
		}
	}
	if cause < 0 {
		return os.NewSyscallError(c.names[failed], syscall.ECANCELED)
	}
	name := c.names[cause]
	if name == "" {
		name = "setsockopt"
	}
	return os.NewSyscallError(name, syscall.Errno(-res[cause]))
}
