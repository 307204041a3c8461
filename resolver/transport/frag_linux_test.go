package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// errNoNetns marks a host where the test cannot make a network namespace.
var errNoNetns = errors.New("cannot create a network namespace")

// inFragmentingNetns runs f on a thread moved into a new network namespace
// whose loopback has an MTU of 1280, so that larger datagrams really are
// fragmented and reassembled by the kernel (threat model c5/c7). The
// thread is never unlocked: it dies with the goroutine, and the namespace
// with it.
func inFragmentingNetns(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("%w: %w", errNoNetns, err)
			return
		}
		if err := setLoopback(1280); err != nil {
			errc <- fmt.Errorf("%w: %w", errNoNetns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

func setLoopback(mtu uint32) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint32(mtu)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr); err != nil {
		return fmt.Errorf("set lo mtu: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func runFragmenting(t *testing.T, f func() error) {
	t.Helper()
	err := inFragmentingNetns(f)
	if errors.Is(err, errNoNetns) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestSocketReportsReassembledDatagrams(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			runFragmenting(t, func() error {
				for _, size := range []int{500, 3000} {
					got, err := sendAndRead(host, size)
					if err != nil {
						return err
					}
					if want := size > 1280; got != want {
						return fmt.Errorf("%d-byte datagram: reassembled = %v, want %v", size, got, want)
					}
				}
				return nil
			})
		})
	}
}

// sendAndRead sends one datagram of size bytes from a server socket to a
// socket of the real Network and reports whether it arrived reassembled.
func sendAndRead(host string, size int) (bool, error) {
	server, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(host)})
	if err != nil {
		return false, err
	}
	defer server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pc, err := NewSocketNetwork(SocketConfig{}).DialUDP(ctx, server.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		return false, err
	}
	defer pc.Close()
	local, _, err := udpAddrs(pc)
	if err != nil {
		return false, err
	}
	if _, err := server.WriteToUDPAddrPort(make([]byte, size), local); err != nil {
		return false, err
	}
	d, err := pc.Read(ctx)
	if err != nil || len(d.Data) != min(size, maxUDPReply) {
		return false, fmt.Errorf("read %d bytes of %d: %w", len(d.Data), size, err)
	}
	return d.Reassembled, nil
}

// TestFragmentedReplyDroppedAndAnsweredOverTCP: a server that ignores the
// EDNS size sends a reply that is fragmented on the way; the Client must
// drop it and take the answer over TCP (FRAG-2's defense).
func TestFragmentedReplyDroppedAndAnsweredOverTCP(t *testing.T) {
	runFragmenting(t, func() error {
		big := func(w dns.ResponseWriter, q *dns.Msg) {
			r := answer(q, "192.0.2.1")
			for i := range 20 {
				txt, _ := dns.NewRR(fmt.Sprintf("%s 300 IN TXT %q", q.Question[0].Name, strings.Repeat("x", 200)+fmt.Sprint(i)))
				r.Extra = append(r.Extra, txt)
			}
			_ = w.WriteMsg(r)
		}
		srv, stop, err := newLocalServer("127.0.0.1", big)
		if err != nil {
			return err
		}
		defer stop()
		c := NewExchanger(NewSocketNetwork(SocketConfig{}), Config{}, nil)
		t.Cleanup(c.Close)
		q := Query{Server: srv.addr, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET}
		r, err := c.Exchange(context.Background(), q)
		if err != nil {
			return err
		}
		if s := c.Stats(); !r.TCP || s.ReassembledDropped != 1 {
			return fmt.Errorf("tcp=%v, stats %+v: want the UDP reply dropped and TCP used", r.TCP, s)
		}
		return nil
	})
}

// TestOversizedDatagramTreatedAsReassembled: on plain loopback nothing is
// fragmented, but a datagram beyond maxUDPReply would have been on any real
// path, and is only ever sent by a server ignoring our EDNS size.
func TestOversizedDatagramTreatedAsReassembled(t *testing.T) {
	for _, size := range []int{maxUDPReply, maxUDPReply + 1, 20000} {
		got, err := sendAndRead("127.0.0.1", size)
		if err != nil {
			t.Fatal(err)
		}
		if want := size > maxUDPReply; got != want {
			t.Fatalf("%d-byte datagram: reassembled = %v, want %v", size, got, want)
		}
	}
}
