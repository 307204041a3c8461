package simnet

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// socketOptions binds port 53 as root (CI) and a high port otherwise.
func socketOptions() []Option {
	if os.Geteuid() == 0 {
		return nil
	}
	return []Option{ListenPort(5353)}
}

func TestRealSocketsServeUDPAndTCP(t *testing.T) {
	h := NewHierarchy(socketOptions()...)
	h.Zone(".", []string{"127.53.201.1"}, ``)
	h.Zone("example.test.", []string{"127.53.201.2"}, exampleZone)
	if err := h.Net.Listen(); err != nil {
		t.Fatal(err)
	}
	defer h.Net.Close()
	port := h.Net.Port()

	for _, proto := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		r, _, err := c.Exchange(query("www.example.test.", dns.TypeA, false), fmt.Sprintf("127.53.201.2:%d", port))
		if err != nil || summary(r.Answer) != "www.example.test./A" || !r.Authoritative {
			t.Fatalf("%s: reply %v err %v", proto, r, err)
		}
		r, _, err = c.Exchange(query("www.example.test.", dns.TypeA, false), fmt.Sprintf("127.53.201.1:%d", port))
		if err != nil || summary(r.Ns) != "example.test./NS" {
			t.Fatalf("%s: root reply %v err %v", proto, r, err)
		}
	}
	q := h.Server("127.53.201.2").Queries()
	if len(q) != 2 || q[0].TCP || !q[1].TCP || !q[0].From.Addr().IsLoopback() {
		t.Fatalf("log %+v", q)
	}
}

func TestRealSocketKnobsApply(t *testing.T) {
	h := NewHierarchy(socketOptions()...)
	h.Zone("example.test.", []string{"127.53.201.3"}, exampleZone)
	if err := h.Net.Listen(); err != nil {
		t.Fatal(err)
	}
	defer h.Net.Close()
	addr := fmt.Sprintf("127.53.201.3:%d", h.Net.Port())
	srv := h.Server("127.53.201.3")

	srv.SetKnobs(Knobs{Truncate: true, Latency: 20 * time.Millisecond})
	r, rtt, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(query("www.example.test.", dns.TypeA, false), addr)
	if err != nil || !r.Truncated || rtt < 20*time.Millisecond {
		t.Fatalf("truncated reply %v rtt %v err %v", r, rtt, err)
	}
	srv.SetKnobs(Knobs{Dead: true})
	if _, _, err := (&dns.Client{Net: "udp", Timeout: 100 * time.Millisecond}).Exchange(query("www.example.test.", dns.TypeA, false), addr); err == nil {
		t.Fatal("dead server answered UDP")
	}
	if _, _, err := (&dns.Client{Net: "tcp", Timeout: 500 * time.Millisecond}).Exchange(query("www.example.test.", dns.TypeA, false), addr); err == nil {
		t.Fatal("dead server answered TCP")
	}
}

func TestListenReportsAddressInUse(t *testing.T) {
	a := New(socketOptions()...)
	a.AddServer(mustAddr("127.53.201.4"))
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := New(socketOptions()...)
	b.AddServer(mustAddr("127.53.201.4"))
	err := b.Listen()
	defer b.Close()
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("second listen: %v, want an address-in-use error", err)
	}
}

func TestListenRefusesNonLoopback(t *testing.T) {
	n := New()
	n.AddServer(mustAddr("192.0.2.1"))
	if err := n.Listen(); err == nil {
		t.Fatal("listened beyond loopback")
	}
}

func TestCloseStopsTheSockets(t *testing.T) {
	n := New(socketOptions()...)
	n.AddServer(mustAddr("127.53.201.5"))
	if err := n.Listen(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.53.201.5:%d", n.Port())
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("TCP still accepted after Close")
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
