package transport

import (
	"context"
	"net/netip"
	"sync"

	"github.com/miekg/dns"
)

// fakeReply is one message a fake server puts on an association.
type fakeReply struct {
	data        []byte
	reassembled bool
	from        netip.AddrPort // zero: the sender is not known, as in simnet
	err         error          // a socket error read in its place
}

// sentQuery records a query as the fake network saw it.
type sentQuery struct {
	tcp  bool
	wire []byte
	msg  *dns.Msg
}

// fakeNet is a scripted Network: every query is handed to handle, whose
// replies are then read back on that association in order. When they run
// out, reads end at once with ErrTimeout, as a simulated network may.
type fakeNet struct {
	handle    func(q *dns.Msg, tcp bool) []fakeReply
	refuseTCP bool

	mu   sync.Mutex
	sent []sentQuery // guarded by mu
}

func (f *fakeNet) queries() []sentQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentQuery(nil), f.sent...)
}

func (f *fakeNet) deliver(wire []byte, tcp bool) []fakeReply {
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		panic(err) // the Client must never send what it cannot unpack
	}
	f.mu.Lock()
	f.sent = append(f.sent, sentQuery{tcp: tcp, wire: append([]byte(nil), wire...), msg: m})
	f.mu.Unlock()
	return f.handle(m, tcp)
}

func (f *fakeNet) DialUDP(context.Context, netip.AddrPort) (PacketConn, error) {
	return &fakeConn{net: f}, nil
}

func (f *fakeNet) DialTCP(context.Context, netip.AddrPort) (StreamConn, error) {
	if f.refuseTCP {
		return nil, ErrRefused
	}
	return &fakeConn{net: f, tcp: true}, nil
}

type fakeConn struct {
	net     *fakeNet
	tcp     bool
	pending []fakeReply
}

func (c *fakeConn) Write(b []byte) error {
	c.pending = append(c.pending, c.net.deliver(b, c.tcp)...)
	return nil
}

func (c *fakeConn) WriteMsg(b []byte) error { return c.Write(b) }

func (c *fakeConn) Read(ctx context.Context) (Datagram, error) {
	if len(c.pending) == 0 {
		return Datagram{}, ErrTimeout
	}
	r := c.pending[0]
	c.pending = c.pending[1:]
	if r.err != nil {
		return Datagram{}, r.err
	}
	return Datagram{Data: r.data, Reassembled: r.reassembled, From: r.from}, nil
}

func (c *fakeConn) ReadMsg(ctx context.Context) ([]byte, error) {
	d, err := c.Read(ctx)
	return d.Data, err
}

func (c *fakeConn) Close() error { return nil }

// answer builds the genuine reply to q: the question echoed as sent and one
// A record for it, compressed against the question.
func answer(q *dns.Msg, addr string) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	r.Compress = true
	rr, err := dns.NewRR(q.Question[0].Name + " 300 IN A " + addr)
	if err != nil {
		panic(err)
	}
	r.Answer = append(r.Answer, rr)
	return r
}

func pack(m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// one wraps packed messages as replies.
func one(ms ...*dns.Msg) []fakeReply {
	var rs []fakeReply
	for _, m := range ms {
		rs = append(rs, fakeReply{data: pack(m)})
	}
	return rs
}
