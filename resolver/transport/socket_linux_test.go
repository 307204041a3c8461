package transport

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUDPSocketAsksKernelToReportReassembly(t *testing.T) {
	tests := []struct {
		name       string
		server     string
		level, opt int
	}{
		{"IPv4", "127.0.0.1:53", unix.IPPROTO_IP, ipRecvFragSize},
		{"IPv6", "[::1]:53", unix.IPPROTO_IPV6, ipv6RecvFragSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := NewSocketNetwork(SocketConfig{}).DialUDP(context.Background(), netip.MustParseAddrPort(tt.server))
			if err != nil {
				t.Skipf("no %s: %v", tt.name, err)
			}
			defer pc.Close()
			v, gerr := unix.GetsockoptInt(pc.(*udpConn).fd, tt.level, tt.opt)
			if gerr != nil || v != 1 {
				t.Fatalf("fragment-size option = %d, %v; want 1", v, gerr)
			}
		})
	}
}

// udpAddrs returns the local and remote address of an association's
// socket, as the kernel has them.
func udpAddrs(pc PacketConn) (local, remote netip.AddrPort, err error) {
	fd := pc.(*udpConn).fd
	lsa, lerr := unix.Getsockname(fd)
	rsa, rerr := unix.Getpeername(fd)
	if lerr != nil || rerr != nil {
		return local, remote, fmt.Errorf("getsockname: %v, getpeername: %v", lerr, rerr)
	}
	return sockaddrAddr(lsa), sockaddrAddr(rsa), nil
}

func sockaddrAddr(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

func cmsg(level, typ int, value uint32) []byte {
	b := make([]byte, unix.CmsgSpace(4))
	lenSize := unix.SizeofCmsghdr - 8 // Len is a size_t, Level and Type are ints
	if lenSize == 8 {
		binary.NativeEndian.PutUint64(b, uint64(unix.CmsgLen(4)))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(unix.CmsgLen(4)))
	}
	binary.NativeEndian.PutUint32(b[lenSize:], uint32(level))
	binary.NativeEndian.PutUint32(b[lenSize+4:], uint32(typ))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], value)
	return b
}

func TestReassemblyDetectedFromControlMessages(t *testing.T) {
	tests := []struct {
		name string
		oob  []byte
		want bool
	}{
		{"NoControlData", nil, false},
		{"IPv4FragmentSize", cmsg(unix.IPPROTO_IP, ipRecvFragSize, 1276), true},
		{"IPv6FragmentSize", cmsg(unix.IPPROTO_IPV6, ipv6RecvFragSize, 1232), true},
		{"OtherIPOption", cmsg(unix.IPPROTO_IP, unix.IP_TTL, 64), false},
		{"FragmentSizeAfterAnotherOption", append(cmsg(unix.IPPROTO_IP, unix.IP_TTL, 64), cmsg(unix.IPPROTO_IP, ipRecvFragSize, 572)...), true},
		{"CutShortOfItsLength", cmsg(unix.IPPROTO_IP, ipRecvFragSize, 1276)[:unix.CmsgLen(0)], true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reassembled(tt.oob); got != tt.want {
				t.Fatalf("reassembled = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestReadBufferSetsTheSocketsReceiveBuffer: Linux doubles the asked size
// for its bookkeeping; the default is far larger than what is asked here.
func TestReadBufferSetsTheSocketsReceiveBuffer(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  SocketConfig
		want func(int) bool
	}{
		{"Asked", SocketConfig{ReadBuffer: 4096}, func(v int) bool { return v == 8192 }},
		{"KernelDefault", SocketConfig{}, func(v int) bool { return v > 8192 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := NewSocketNetwork(tt.cfg).DialUDP(context.Background(), netip.MustParseAddrPort("127.0.0.1:53"))
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			v, gerr := unix.GetsockoptInt(pc.(*udpConn).fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if !tt.want(v) {
				t.Fatalf("SO_RCVBUF = %d", v)
			}
		})
	}
}
