package listener

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

func TestRawBatchReadsSendersAndRepliesToThem(t *testing.T) {
	for _, tc := range []struct {
		name, network, host string
		v4                  bool
	}{{"IPv4", "udp4", "127.0.0.1", true}, {"IPv6", "udp6", "[::1]", false}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := net.ListenPacket(tc.network, tc.host+":0")
			if err != nil {
				t.Skipf("no %s loopback: %v", tc.name, err)
			}
			defer srv.Close()
			bc := newBatchConn(srv.(*net.UDPConn), tc.v4)
			if _, ok := bc.(*rawBatchConn); !ok {
				t.Fatalf("newBatchConn gave %T", bc)
			}
			var clients []*net.UDPConn
			for i := range 3 {
				c, err := net.DialUDP(tc.network, nil, srv.LocalAddr().(*net.UDPAddr))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write([]byte{byte(i), 'q'}); err != nil {
					t.Fatal(err)
				}
				clients = append(clients, c)
			}
			in, from := make([]ipv4.Message, 8), make([]netip.AddrPort, 8)
			for i := range in {
				in[i].Buffers = [][]byte{make([]byte, 512)}
			}
			got := 0
			deadline := time.Now().Add(3 * time.Second)
			srv.SetReadDeadline(deadline)
			for got < len(clients) {
				n, err := bc.ReadBatch(in[got:], from[got:])
				if err != nil {
					t.Fatalf("read after %d: %v", got, err)
				}
				got += n
			}
			out := make([]ipv4.Message, got)
			for i := range got {
				m := in[i]
				b := m.Buffers[0][:m.N]
				c := clients[b[0]]
				if sent := c.LocalAddr().(*net.UDPAddr).AddrPort(); from[i] != sent {
					t.Errorf("datagram %d from %v, sent by %v", b[0], from[i], sent)
				}
				out[i] = ipv4.Message{Buffers: [][]byte{append([]byte{b[0]}, 'r')}}
			}
			if n, err := bc.WriteBatch(out, from[:got]); err != nil || n != got {
				t.Fatalf("wrote %d of %d: %v", n, got, err)
			}
			for i, c := range clients {
				c.SetReadDeadline(deadline)
				buf := make([]byte, 16)
				n, err := c.Read(buf)
				if err != nil || !bytes.Equal(buf[:n], []byte{byte(i), 'r'}) {
					t.Errorf("client %d got %q, %v", i, buf[:n], err)
				}
			}
		})
	}
}
