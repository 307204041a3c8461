package attack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// spoofer forges UDP datagrams from any source through a raw IPPROTO_RAW
// socket (threat model a1: checksums are verified on lo, so it computes
// them). Its budget bounds every test: maxPackets in all, maxRate per
// second, and a deadline.
type spoofer struct {
	fd         int
	maxPackets int
	maxRate    int
	deadline   time.Time
	sent       int
	buf        []byte
	// rate limiting: tokens refilled per elapsed time
	since time.Time
}

var errBudget = errors.New("spoofer budget spent")

func newSpoofer(maxPackets, maxRate int, within time.Duration) (*spoofer, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	return &spoofer{fd: fd, maxPackets: maxPackets, maxRate: maxRate, deadline: time.Now().Add(within),
		buf: make([]byte, 28+1500), since: time.Now()}, nil
}

func (s *spoofer) Close() error { return unix.Close(s.fd) }

// allowedDest is the rule the loopback spoofer obeys: loopback only (the
// fragment scenarios' raw senders keep to their own namespaces'
// 198.18.0.0/15, see frag_test.go).
func allowedDest(a netip.Addr) bool {
	return a.Is4() && a.IsLoopback()
}

// send forges one datagram carrying payload from src to dst.
func (s *spoofer) send(src, dst netip.AddrPort, payload []byte) error {
	if !allowedDest(dst.Addr()) {
		return fmt.Errorf("spoofer: refusing to send to %s: only 127.0.0.0/8", dst)
	}
	if s.sent >= s.maxPackets || time.Now().After(s.deadline) {
		return errBudget
	}
	if s.maxRate > 0 {
		if ahead := time.Duration(s.sent)*time.Second/time.Duration(s.maxRate) - time.Since(s.since); ahead > time.Millisecond {
			time.Sleep(ahead)
		}
	}
	n := buildIPv4UDP(s.buf, src, dst, payload)
	sa := &unix.SockaddrInet4{Addr: dst.Addr().As4()}
	for {
		err := unix.Sendto(s.fd, s.buf[:n], 0, sa)
		if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
			time.Sleep(50 * time.Microsecond)
			continue
		}
		if err != nil {
			return fmt.Errorf("spoofer: sendto %s: %w", dst, err)
		}
		break
	}
	s.sent++
	return nil
}

// buildIPv4UDP writes an IPv4 header, a UDP header with a correct checksum
// and the payload into b and returns the length.
func buildIPv4UDP(b []byte, src, dst netip.AddrPort, payload []byte) int {
	total := 20 + 8 + len(payload)
	b[0], b[1] = 0x45, 0
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	binary.BigEndian.PutUint16(b[4:], 0) // ID: the kernel fills it
	binary.BigEndian.PutUint16(b[6:], 0x4000)
	b[8], b[9] = 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(b[10:], 0) // header checksum: the kernel fills it
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:16], s4[:])
	copy(b[16:20], d4[:])
	u := b[20:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	binary.BigEndian.PutUint16(u[6:], 0)
	copy(u[8:], payload)
	binary.BigEndian.PutUint16(u[6:], udpChecksum(s4, d4, u[:8+len(payload)]))
	return total
}

func udpChecksum(src, dst [4]byte, seg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += unix.IPPROTO_UDP + uint32(len(seg))
	add(seg)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	c := ^uint16(sum)
	if c == 0 {
		c = 0xffff
	}
	return c
}
