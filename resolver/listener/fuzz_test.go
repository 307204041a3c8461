package listener

import (
	"context"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzProcess feeds arbitrary bytes from an allowed client to the packet
// path: it must never panic, and any reply must unpack, answer the query's
// ID and fit the transport.
func FuzzProcess(f *testing.F) {
	seed := func(m *dns.Msg) []byte { b, _ := m.Pack(); return b }
	f.Add(seed(query("example.", dns.TypeA)), true)
	f.Add(seed(query("big.", dns.TypeA)), true)
	f.Add(seed(withEDNS(query("big.", dns.TypeA), 4096, 0)), true)
	f.Add(seed(withEDNS(query("example.", dns.TypeA), 1232, 3)), false)
	f.Add(seed(withTwoOPT(query("example.", dns.TypeA))), true)
	f.Add(seed(withOpcode(query("example.", dns.TypeA), dns.OpcodeNotify)), true)
	f.Add([]byte{0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0}, true)
	f.Add([]byte{1, 2, 3}, false)
	s := New(Config{}, newFakeHandler())
	client := netip.MustParseAddrPort("127.0.0.1:5300")
	f.Fuzz(func(t *testing.T, raw []byte, udp bool) {
		out := s.process(raw, client, udp)
		if out == nil {
			return
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(out); err != nil {
			t.Fatalf("reply %x does not unpack: %v", out, err)
		}
		if !resp.Response || resp.Id != uint16(raw[0])<<8|uint16(raw[1]) {
			t.Fatalf("reply QR=%v ID=%d does not answer the query", resp.Response, resp.Id)
		}
		if udp && len(out) > ednsBufferSize {
			t.Fatalf("UDP reply of %d bytes exceeds %d", len(out), ednsBufferSize)
		}
	})
}

func BenchmarkProcessQuery(b *testing.B) {
	s := New(Config{}, newFakeHandler())
	raw := pack(b, withEDNS(query("example.", dns.TypeA), 1232, 0))
	b.ReportAllocs()
	for b.Loop() {
		if s.process(raw, loopback, true) == nil {
			b.Fatal("no reply")
		}
	}
}

// BenchmarkProcessQueryWithOPT is BenchmarkProcessQuery with a Handler
// that, as the resolver does, answers an EDNS query with its own OPT.
func BenchmarkProcessQueryWithOPT(b *testing.B) {
	s := New(Config{}, optHandler{newFakeHandler()})
	raw := pack(b, withEDNS(query("example.", dns.TypeA), 1232, 0))
	b.ReportAllocs()
	for b.Loop() {
		if s.process(raw, loopback, true) == nil {
			b.Fatal("no reply")
		}
	}
}

type optHandler struct{ *fakeHandler }

func (h optHandler) Answer(ctx context.Context, req *dns.Msg) *dns.Msg {
	resp := h.fakeHandler.Answer(ctx, req)
	if o := req.IsEdns0(); o != nil {
		resp.SetEdns0(ednsBufferSize, o.Do())
	}
	return resp
}
