package transport

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// echoServer answers every datagram on 127.0.0.1 with the datagram itself
// turned into a reply: the cheapest server that passes every check, so a
// benchmark over it measures the client's sockets and checks.
func echoServer(b *testing.B) *net.UDPConn {
	b.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Skipf("no IPv4 loopback: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDPAddrPort(echoReply(buf[:n]), from)
		}
	}()
	b.Cleanup(func() { pc.Close(); <-done })
	return pc
}

// processCPU is the user and system time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per op since start, client and
// echo server together: wall time includes the Hold-On waits, which cost
// no CPU.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkUDPExchangeLoopback is one whole UDP exchange of the Client over
// real loopback sockets: a fresh random port, the query, the reply and its
// checks, and the Hold-On window's watch.
func BenchmarkUDPExchangeLoopback(b *testing.B) { benchUDPExchange(b, Config{}) }

// BenchmarkUDPExchangeLoopbackNoHoldOn is the exchange without the Hold-On
// window: the difference to BenchmarkUDPExchangeLoopback is what the window
// costs.
func BenchmarkUDPExchangeLoopbackNoHoldOn(b *testing.B) {
	benchUDPExchange(b, Config{DisableHoldOn: true})
}

func benchUDPExchange(b *testing.B, cfg Config) {
	srv := echoServer(b)
	c := NewExchanger(NewSocketNetwork(SocketConfig{}), cfg, nil)
	b.Cleanup(c.Close)
	q := Query{Server: srv.LocalAddr().(*net.UDPAddr).AddrPort(), Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET, DO: true}
	ctx := context.Background()
	b.ReportAllocs()
	start := processCPU(b)
	for b.Loop() {
		if _, err := c.Exchange(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
	b.ReportMetric(float64(c.Stats().HoldOnWaits)/float64(b.N), "waits/op")
}

// BenchmarkUDPSocketLoopback is the socket layer of one exchange alone:
// open and connect a socket on a random port and send the query, read the
// reply, close; its set-up through the ring and call by call (the
// sub-benchmark "ring" skips where the kernel has none).
func BenchmarkUDPSocketLoopback(b *testing.B) {
	srv := echoServer(b)
	server := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, mode := range []string{"ring", "calls"} {
		b.Run(mode, func(b *testing.B) {
			nw := NewSocketNetwork(SocketConfig{IOURing: ringMode(mode == "ring")}).(*socketNetwork)
			benchUDPSocket(b, nw, server)
			if err := ringMissing(nw); mode == "ring" && err != nil {
				b.Skipf("no io_uring set-up here: %v", err)
			}
		})
	}
}

func benchUDPSocket(b *testing.B, nw sendDialer, server netip.AddrPort) {
	query := make([]byte, 40)
	ctx := context.Background()
	b.ReportAllocs()
	start := processCPU(b)
	for b.Loop() {
		pc, err := nw.DialUDPSend(ctx, server, query)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pc.Read(ctx); err != nil {
			b.Fatal(err)
		}
		_ = pc.Close()
	}
	reportCPU(b, start)
}
