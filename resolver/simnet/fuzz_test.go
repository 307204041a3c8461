package simnet

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzServerHandle feeds arbitrary bytes to a signed server's whole answer
// path: it must never panic, and whatever it sends must parse.
func FuzzServerHandle(f *testing.F) {
	h, _ := signedHierarchy(f, SignOptions{NSEC3: true})
	h.Zone("other.test.", []string{"127.53.1.1"}, exampleZone)
	srv := h.Server("127.53.1.1")
	for _, q := range []*dns.Msg{
		query("www.example.test.", dns.TypeA, true),
		query("x.wild.example.test.", dns.TypeMX, true),
		query("a.d.other.test.", dns.TypeA, false),
		query("nope.example.test.", dns.TypeDS, true),
	} {
		b, _ := q.Pack()
		f.Add(b, false)
	}
	from := netip.MustParseAddrPort("127.0.0.1:1024")
	f.Fuzz(func(t *testing.T, wire []byte, tcp bool) {
		reply, _ := srv.handle(wire, from, tcp)
		srv.Reset()
		if reply == nil {
			return
		}
		if len(reply) < 12 {
			t.Fatalf("reply of %d bytes", len(reply))
		}
	})
}

func BenchmarkServerAnswer(b *testing.B) {
	h, _ := signedHierarchy(b, SignOptions{NSEC3: true})
	srv := h.Server("127.53.1.1")
	wire, _ := query("nope.example.test.", dns.TypeA, true).Pack()
	from := netip.MustParseAddrPort("127.0.0.1:1024")
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := srv.handle(wire, from, false); r == nil {
			b.Fatal("no reply")
		}
		srv.Reset()
	}
}
