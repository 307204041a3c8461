package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func fuzzSeedReply(name string, f func(*dns.Msg)) []byte {
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	q.Id = 0x1234
	m := answer(q, "192.0.2.1")
	f(m)
	return pack(m)
}

// FuzzMatchReply feeds a query's parameters and arbitrary reply bytes to
// the matcher and the unpacking behind it: neither may panic, and an
// accepted reply must echo the ID and the question exactly as sent.
func FuzzMatchReply(f *testing.F) {
	const name = "www.example.com."
	f.Add(name, uint16(dns.TypeA), uint16(0x1234), []byte{0xff, 0}, fuzzSeedReply(name, func(*dns.Msg) {}))
	f.Add(name, uint16(dns.TypeA), uint16(0x1234), []byte{0}, fuzzSeedReply("WWW.example.com.", func(*dns.Msg) {}))
	f.Add(name, uint16(dns.TypeA), uint16(0x1234), []byte{}, fuzzSeedReply(name, func(m *dns.Msg) { m.Question = nil }))
	f.Add("a.", uint16(dns.TypeNS), uint16(0), []byte{1}, []byte{0, 0, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0xc0, 12})
	f.Fuzz(func(t *testing.T, name string, qtype, id uint16, bits, reply []byte) {
		q := &Query{Name: name, Type: qtype, Class: dns.ClassINET}
		wq, err := packQuery(new(wireQuery), q, id, true, 1232, bits, nil)
		if err != nil {
			t.Skip()
		}
		v := matchReply(wq, reply)
		if v == verdictAccept {
			if !bytes.Equal(reply[:2], wq.wire[:2]) || !bytes.Equal(reply[headerLen:wq.qEnd], wq.wire[headerLen:wq.qEnd]) {
				t.Fatalf("accepted a reply that does not echo the query: %x vs %x", reply, wq.wire)
			}
		}
		if v != verdictAccept && v != verdictWrongCase {
			return
		}
		m, err := unpackReply(q, wq, reply)
		if err == nil && (len(m.Question) != 1 || m.Question[0].Name != name || m.Question[0].Qtype != qtype) {
			t.Fatalf("unpacked question %v, want %s %d", m.Question, name, qtype)
		}
	})
}

func TestFlipCaseTouchesOnlyLetters(t *testing.T) {
	q := &Query{Name: `a-1\.b.X_y.`, Type: dns.TypeA, Class: dns.ClassINET}
	plain, err := packQuery(new(wireQuery), q, 1, false, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mixed, err := packQuery(new(wireQuery), q, 1, false, 0, []byte{0xff, 0xff}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := headerLen; i < plain.nameEnd; i++ {
		p, m := plain.wire[i], mixed.wire[i]
		isLetter := (p|0x20) >= 'a' && (p|0x20) <= 'z'
		if isLetter != (p != m) {
			t.Fatalf("byte %d: %q became %q", i, p, m)
		}
	}
	if matchReply(plain, withQR(mixed.wire)) != verdictWrongCase {
		t.Fatal("a reply differing only in case was not classed wrong-case")
	}
}

func withQR(b []byte) []byte {
	r := append([]byte(nil), b...)
	r[2] |= flagQR
	return r
}

// echoNet answers every query with the query itself turned into a reply:
// the cheapest Network, so the benchmark measures the Client alone.
type echoNet struct{}

func (echoNet) DialUDP(context.Context, netip.AddrPort) (PacketConn, error) { return &echoConn{}, nil }
func (echoNet) DialTCP(context.Context, netip.AddrPort) (StreamConn, error) { return nil, ErrRefused }

type echoConn struct{ reply []byte }

func (c *echoConn) Write(b []byte) error { c.reply = echoReply(b); return nil }

// echoReply turns a query into a reply that passes every check: QR set,
// and a client-only cookie answered with a fixed server cookie. A query
// that already carries a server cookie is echoed as it is.
func echoReply(b []byte) []byte {
	r := withQR(b)
	n := len(r)
	if n < headerLen+14 || binary.BigEndian.Uint16(r[n-12:]) != dns.EDNS0COOKIE || binary.BigEndian.Uint16(r[n-10:]) != 8 {
		return r
	}
	binary.BigEndian.PutUint16(r[n-14:], binary.BigEndian.Uint16(r[n-14:])+8)
	binary.BigEndian.PutUint16(r[n-10:], 16)
	return append(r, "servercookie"[:8]...)
}

func (c *echoConn) Read(context.Context) (Datagram, error) {
	if c.reply == nil {
		return Datagram{}, ErrTimeout
	}
	r := c.reply
	c.reply = nil
	return Datagram{Data: r}, nil
}

func (c *echoConn) Close() error { return nil }

func BenchmarkExchangeEchoNetwork(b *testing.B) {
	c := NewExchanger(echoNet{}, Config{}, nil)
	q := Query{Server: testServer, Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET, DO: true}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Exchange(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCaseMixAndMatch(b *testing.B) {
	q := &Query{Name: "abcdefghijklmnop.example.com.", Type: dns.TypeA, Class: dns.ClassINET}
	wq, err := packQuery(new(wireQuery), q, 7, true, 1232, []byte{0x5a, 0xa5, 0x0f, 0xf0}, nil)
	if err != nil {
		b.Fatal(err)
	}
	reply := withQR(wq.wire)
	bits := []byte{1, 2, 3, 4}
	b.ReportAllocs()
	for b.Loop() {
		flipCase(wq.wire[headerLen:wq.nameEnd], bits)
		flipCase(reply[headerLen:wq.nameEnd], bits)
		if matchReply(wq, reply) != verdictAccept {
			b.Fatal("echo rejected")
		}
	}
}
