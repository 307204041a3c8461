//go:build !linux

package transport

import (
	"errors"
	"net"
	"net/netip"
)

// udpAddrs returns the local and remote address of an association's socket.
func udpAddrs(pc PacketConn) (local, remote netip.AddrPort, err error) {
	c := pc.(*udpConn).conn
	return c.LocalAddr().(*net.UDPAddr).AddrPort(), c.RemoteAddr().(*net.UDPAddr).AddrPort(), nil
}

// ringMissing says why nw has no ring: only Linux has io_uring.
func ringMissing(*socketNetwork) error { return errors.New("io_uring is Linux's") }
