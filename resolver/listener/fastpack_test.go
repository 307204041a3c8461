package listener

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// addressReply builds a reply to name's qtype whose answer holds an
// address record for each 4 (A) or 16 (AAAA) bytes of ips, owned by owner.
func addressReply(name, owner string, qtype uint16, ips []byte, ttl uint32, bits uint16, rcode uint8, opt, do bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = bits ^ 0x5a5a
	m.Response, m.Authoritative, m.Truncated = bits&1 != 0, bits&2 != 0, bits&4 != 0
	m.RecursionDesired, m.RecursionAvailable, m.Zero = bits&8 != 0, bits&16 != 0, bits&32 != 0
	m.AuthenticatedData, m.CheckingDisabled = bits&64 != 0, bits&128 != 0
	m.Opcode = int(bits>>8) & 0xF
	m.Rcode = int(rcode)
	size := 4
	if qtype == dns.TypeAAAA {
		size = 16
	}
	for ; len(ips) >= size; ips = ips[size:] {
		h := dns.RR_Header{Name: owner, Rrtype: qtype, Class: dns.ClassINET, Ttl: ttl}
		ip := net.IP(bytes.Clone(ips[:size]))
		if qtype == dns.TypeAAAA {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: h, AAAA: ip})
		} else {
			m.Answer = append(m.Answer, &dns.A{Hdr: h, A: ip})
		}
	}
	if opt {
		m.SetEdns0(ednsBufferSize, do)
	}
	return m
}

// libraryPack is what the listener packs when packAddresses declines.
func libraryPack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	m.Compress = true
	out, err := m.Copy().PackBuffer(make([]byte, 512))
	if err != nil {
		t.Fatalf("library pack: %v", err)
	}
	return out
}

func TestAddressRepliesPackAsTheLibraryPacksThem(t *testing.T) {
	v4 := []byte{192, 0, 2, 1, 192, 0, 2, 2}
	v6 := bytes.Repeat([]byte{0x20, 0x01, 0x0d, 0xb8}, 4)
	tests := []struct {
		name string
		msg  *dns.Msg
		fast bool // packAddresses takes it
	}{
		{"TwoAddressesWithOPT", addressReply("h1.leaf.bench.", "h1.leaf.bench.", dns.TypeA, v4, 300, 0x19, 0, true, false), true},
		{"AAAAWithDO", addressReply("Www.Example.", "Www.Example.", dns.TypeAAAA, v6, 60, 0x59, 0, true, true), true},
		{"NoOPTAndEveryFlag", addressReply("a.b.", "a.b.", dns.TypeA, v4[:4], 1, 0xff, 5, false, false), true},
		{"NoAnswer", addressReply("a.b.", "a.b.", dns.TypeA, nil, 1, 0x19, 0, true, false), true},
		{"OwnerSpelledOtherwise", addressReply("WWW.example.", "www.example.", dns.TypeA, v4, 300, 0x19, 0, true, false), false},
		{"OwnerAnotherName", addressReply("www.example.", "mail.example.", dns.TypeA, v4, 300, 0x19, 0, true, false), false},
		{"RootName", addressReply(".", ".", dns.TypeA, v4, 300, 0x19, 0, true, false), false},
		{"EscapedName", addressReply(`a\.b.example.`, `a\.b.example.`, dns.TypeA, v4, 300, 0x19, 0, true, false), false},
		{"ExtendedRcode", addressReply("a.b.", "a.b.", dns.TypeA, nil, 1, 0x19, 0, true, false), false},
	}
	tests[len(tests)-1].msg.Rcode = dns.RcodeBadCookie
	cname := addressReply("www.example.", "www.example.", dns.TypeA, nil, 300, 0x19, 0, true, false)
	cname.Answer = []dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "web.example."}}
	authority := addressReply("www.example.", "www.example.", dns.TypeA, v4, 300, 0x19, 0, true, false)
	authority.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns.example."}}
	withEDE := addressReply("www.example.", "www.example.", dns.TypeA, v4, 300, 0x19, 0, true, false)
	withEDE.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeStaleAnswer}}
	tests = append(tests, []struct {
		name string
		msg  *dns.Msg
		fast bool
	}{{"CNAME", cname, false}, {"Authority", authority, false}, {"OPTWithOption", withEDE, true}}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := libraryPack(t, tc.msg)
			got, ok := packAddresses(make([]byte, 0, 512), tc.msg.Copy())
			if ok != tc.fast {
				t.Fatalf("packAddresses took it: %v, want %v", ok, tc.fast)
			}
			if ok && !bytes.Equal(got, want) {
				t.Fatalf("packAddresses = %x\nlibrary       = %x", got, want)
			}
		})
	}
}

func TestAddressReplyOutgrowingItsRoomStillPacks(t *testing.T) {
	m := addressReply("h1.leaf.bench.", "h1.leaf.bench.", dns.TypeAAAA, bytes.Repeat([]byte{1}, 16*8), 300, 0x19, 0, true, false)
	got, ok := packAddresses(make([]byte, 0, 40), m.Copy())
	if !ok || !bytes.Equal(got, libraryPack(t, m)) {
		t.Fatalf("packAddresses into a small room = %x, %v; want the library's bytes", got, ok)
	}
}

// FuzzPackAddressesMatchesTheLibrary holds packAddresses to the library's
// bytes for every reply it takes.
func FuzzPackAddressesMatchesTheLibrary(f *testing.F) {
	f.Add("h1.leaf.bench.", uint8(0), false, []byte{192, 0, 2, 1}, uint32(300), uint16(0x19), uint8(0), true, false)
	f.Add("Www.Example.", uint8(1), true, bytes.Repeat([]byte{0x20}, 32), uint32(60), uint16(0x59), uint8(3), true, true)
	f.Add("a.b.", uint8(2), false, []byte{}, uint32(0), uint16(0xfff), uint8(15), false, false)
	f.Fuzz(func(t *testing.T, name string, ownerCase uint8, aaaa bool, ips []byte, ttl uint32, bits uint16, rcode uint8, opt, do bool) {
		owner := name
		switch ownerCase % 3 {
		case 1:
			owner = strings.ToLower(name)
		case 2:
			owner = strings.ToUpper(name)
		}
		qtype := dns.TypeA
		if aaaa {
			qtype = dns.TypeAAAA
		}
		m := addressReply(name, owner, qtype, ips, ttl, bits, rcode, opt, do)
		m.Compress = true
		want, err := m.Copy().PackBuffer(nil)
		got, ok := packAddresses(nil, m.Copy())
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("packAddresses took a reply the library refuses (%v): %x", err, got)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("packAddresses = %x\nlibrary       = %x", got, want)
		}
	})
}

// BenchmarkPackAddressReply packs a cold name's usual reply both ways.
func BenchmarkPackAddressReply(b *testing.B) {
	m := addressReply("h1234.leaf.bench.", "h1234.leaf.bench.", dns.TypeA, []byte{10, 0, 4, 210}, 86400, 0x19, 0, true, false)
	m.Compress = true
	room := make([]byte, 0, missReplyRoom)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := packAddresses(room, m); !ok {
				b.Fatal("packAddresses declined the reply")
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.PackBuffer(room[:cap(room)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
