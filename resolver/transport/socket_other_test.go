//go:build !linux

package transport

import (
	"net"
	"net/netip"
)

// udpAddrs returns the local and remote address of an association's socket.
func udpAddrs(pc PacketConn) (local, remote netip.AddrPort, err error) {
	c := pc.(*udpConn).conn
	return c.LocalAddr().(*net.UDPAddr).AddrPort(), c.RemoteAddr().(*net.UDPAddr).AddrPort(), nil
}
