package listener

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// rawBatchConn issues recvmmsg and sendmmsg itself, with RawSyscall inside
// RawConn.Read and Write. On the listener's non-blocking socket neither
// call ever blocks, so the runtime's system-call bookkeeping buys nothing,
// and at moderate load it costs: between two wake-ups every P is idle, the
// runtime's sysmon thread parks, and x/net's syscall.Syscall woke it on
// every read (9% of the daemon's CPU at 50k qps, docs/performance.md).
// An EAGAIN still parks the read loop in the netpoller, as x/net does.
type rawBatchConn struct {
	rc syscall.RawConn
	v4 bool
	// Per-slot system-call structures, reused by every call; only the
	// read loop that owns the socket uses them.
	hdrs  [udpBatch]unix.Mmsghdr
	iovs  [udpBatch]unix.Iovec
	names [udpBatch]unix.RawSockaddrInet6 // large enough for either family
}

func newBatchConn(pc *net.UDPConn, v4 bool) batchConn {
	rc, err := pc.SyscallConn()
	if err != nil {
		return xnetBatchConn(pc, v4)
	}
	return &rawBatchConn{rc: rc, v4: v4}
}

// prepare points slot i at buf, with room for a source address.
func (c *rawBatchConn) prepare(i int, buf []byte) {
	c.iovs[i].Base = unsafe.SliceData(buf)
	c.iovs[i].SetLen(len(buf))
	h := &c.hdrs[i].Hdr
	*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&c.names[i])), Namelen: unix.SizeofSockaddrInet6, Iov: &c.iovs[i]}
	h.SetIovlen(1)
}

// ReadBatch reads up to len(ms) datagrams into ms[i].Buffers[0], their
// senders into from[i]; it allocates nothing.
func (c *rawBatchConn) ReadBatch(ms []ipv4.Message, from []netip.AddrPort) (int, error) {
	n := min(len(ms), udpBatch)
	for i := range n {
		c.prepare(i, ms[i].Buffers[0])
	}
	got, err := c.call(c.rc.Read, unix.SYS_RECVMMSG, n)
	for i := range got {
		ms[i].N = int(c.hdrs[i].Len)
		ms[i].Flags = int(c.hdrs[i].Hdr.Flags)
		from[i] = c.nameAddrPort(i)
	}
	return got, err
}

// WriteBatch sends ms[i].Buffers[0] to to[i].
func (c *rawBatchConn) WriteBatch(ms []ipv4.Message, to []netip.AddrPort) (int, error) {
	n := min(len(ms), udpBatch)
	for i := range n {
		c.prepare(i, ms[i].Buffers[0])
		c.hdrs[i].Hdr.Namelen = c.putName(i, to[i])
	}
	return c.call(c.rc.Write, unix.SYS_SENDMMSG, n)
}

// call runs one recvmmsg or sendmmsg over the first n slots through
// rawIO (RawConn.Read or Write), which waits in the netpoller on EAGAIN.
func (c *rawBatchConn) call(rawIO func(func(uintptr) bool) error, trap uintptr, n int) (int, error) {
	var got int
	var errno syscall.Errno
	err := rawIO(func(fd uintptr) bool {
		for {
			r, _, e := unix.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(&c.hdrs[0])), uintptr(n), 0, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			got, errno = int(r), e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return got, nil
}

// nameAddrPort is slot i's source address in the socket's family, as
// udpAddrPort gives it: 4 bytes on an IPv4 socket, IPv4-mapped kept on a
// dual-stack one.
func (c *rawBatchConn) nameAddrPort(i int) netip.AddrPort {
	sa := &c.names[i]
	port := getPort(&sa.Port)
	if sa.Family == unix.AF_INET {
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
}

// putName writes to into slot i's name in the socket's family and returns
// its length.
func (c *rawBatchConn) putName(i int, to netip.AddrPort) uint32 {
	sa := &c.names[i]
	if c.v4 {
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*in4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: to.Addr().Unmap().As4()}
		putPort(&in4.Port, to.Port())
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: to.Addr().As16()}
	putPort(&sa.Port, to.Port())
	return unix.SizeofSockaddrInet6
}

// getPort and putPort read and write a sockaddr's port, which is in
// network byte order whatever the host's (mips routers are big-endian).
func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}
