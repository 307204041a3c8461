package transport

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Socket options that make the kernel report, with each datagram, the
// largest fragment it was rebuilt from (Linux 4.14+). An unfragmented
// datagram carries no such message (threat model c5).
const (
	ipRecvFragSize   = 25 // IP_RECVFRAGSIZE, level IPPROTO_IP
	ipv6RecvFragSize = 77 // IPV6_RECVFRAGSIZE, level IPPROTO_IPV6
)

// enableFragSize is a net.Dialer Control hook: it runs through the raw
// connection, never (*net.UDPConn).File, which would make the socket
// blocking and break deadlines. A kernel without the option still gets a
// working socket: the EDNS size of 1232 remains the first defense.
func enableFragSize(network, _ string, c syscall.RawConn) error {
	level, opt := unix.IPPROTO_IP, ipRecvFragSize
	if network == "udp6" {
		level, opt = unix.IPPROTO_IPV6, ipv6RecvFragSize
	}
	return c.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), level, opt, 1)
	})
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

// shareFixedPort lets the sockets of the fixed-port test mode bind the same
// port at once, as one shared socket would be used by a resolver without
// port randomisation.
func shareFixedPort(network, address string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	return enableFragSize(network, address, c)
}
