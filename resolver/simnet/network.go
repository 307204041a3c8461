package simnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// Network is a simulated internet of authoritative servers, one per
// address. It implements transport.Network in memory: a query is answered
// synchronously inside Write, so no goroutine runs per query and results
// are deterministic. Listen additionally serves every server on real
// loopback sockets.
type Network struct {
	instant bool   // immutable after New
	port    uint16 // immutable after New

	mu      sync.RWMutex
	servers map[netip.Addr]*Server // guarded by mu
	roots   []dns.RR               // root NS and addresses for LameUpward; guarded by mu

	assoc atomic.Uint32 // numbers associations for synthetic source ports
}

var _ transport.Network = (*Network)(nil)

// Option configures a Network.
type Option func(*Network)

// InstantTimeouts makes a read that no reply will ever satisfy return
// transport.ErrTimeout at once instead of when the context ends, so that
// tests of dead servers cost no real time.
func InstantTimeouts() Option { return func(n *Network) { n.instant = true } }

// ListenPort sets the port servers use, in memory and on real sockets
// (default 53), for runs without the privilege to bind port 53.
func ListenPort(port uint16) Option { return func(n *Network) { n.port = port } }

// New returns an empty Network.
func New(opts ...Option) *Network {
	n := &Network{port: 53, servers: map[netip.Addr]*Server{}}
	for _, o := range opts {
		o(n)
	}
	return n
}

// Port returns the port the servers answer on.
func (n *Network) Port() uint16 { return n.port }

// AddServer returns the server at addr, creating it if needed, and makes it
// authoritative for zones.
func (n *Network) AddServer(addr netip.Addr, zones ...*Zone) *Server {
	addr = addr.Unmap()
	n.mu.Lock()
	s := n.servers[addr]
	if s == nil {
		s = &Server{addr: addr, net: n}
		n.servers[addr] = s
	}
	n.mu.Unlock()
	s.AddZone(zones...)
	return s
}

// Server returns the server at addr, or nil.
func (n *Network) Server(addr netip.Addr) *Server {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.servers[addr.Unmap()]
}

// Servers returns every server, ordered by address.
func (n *Network) Servers() []*Server {
	n.mu.RLock()
	out := make([]*Server, 0, len(n.servers))
	for _, s := range n.servers {
		out = append(out, s)
	}
	n.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].addr.Less(out[j].addr) })
	return out
}

// SetRoots sets the root NS records and addresses that LameUpward servers
// refer to. The Hierarchy sets them from its root zone.
func (n *Network) SetRoots(rrs []dns.RR) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.roots = rrs
}

func (n *Network) upwardReferral(m *dns.Msg) {
	n.mu.RLock()
	roots := n.roots
	n.mu.RUnlock()
	if len(roots) == 0 {
		roots = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 518400}, Ns: "a.root-servers.net."}}
	}
	for _, rr := range roots {
		if rr.Header().Rrtype == dns.TypeNS {
			m.Ns = append(m.Ns, rr)
		} else {
			m.Extra = append(m.Extra, rr)
		}
	}
}

func (n *Network) lookup(server netip.AddrPort) *Server {
	if server.Port() != n.port {
		return nil
	}
	return n.Server(server.Addr())
}

// DialUDP opens an in-memory association. It never fails: datagrams to an
// address without a server are lost, as on a real network.
func (n *Network) DialUDP(_ context.Context, server netip.AddrPort) (transport.PacketConn, error) {
	return &memConn{n: n, srv: n.lookup(server), to: server, from: syntheticPort(n.assoc.Add(1))}, nil
}

// DialTCP opens an in-memory connection; it is refused when there is no
// server at the address or the server is Dead.
func (n *Network) DialTCP(ctx context.Context, server netip.AddrPort) (transport.StreamConn, error) {
	s := n.lookup(server)
	if s == nil {
		return nil, fmt.Errorf("simnet: connect %s: %w", server, transport.ErrRefused)
	}
	if ok, silent := s.acceptsTCP(); !ok {
		if !silent {
			return nil, fmt.Errorf("simnet: connect %s: %w", server, transport.ErrRefused)
		}
		return nil, n.timeout(ctx, server)
	}
	return &memConn{n: n, srv: s, to: server, from: syntheticPort(n.assoc.Add(1)), tcp: true}, nil
}

// timeout waits for ctx unless timeouts are instant.
func (n *Network) timeout(ctx context.Context, server netip.AddrPort) error {
	if !n.instant {
		<-ctx.Done()
	}
	return fmt.Errorf("simnet: no reply from %s: %w", server, transport.ErrTimeout)
}

// memConn is one in-memory UDP association or TCP connection. Replies are
// computed when the query is written and queued until their latency passes.
type memConn struct {
	n        *Network
	srv      *Server // nil: nobody listens
	to, from netip.AddrPort
	tcp      bool

	mu     sync.Mutex
	queue  []pending // guarded by mu
	closed bool      // guarded by mu
}

type pending struct {
	data  []byte
	ready <-chan time.Time // nil when there is no latency
}

func (c *memConn) Write(b []byte) error { return c.send(b) }

func (c *memConn) WriteMsg(b []byte) error { return c.send(b) }

func (c *memConn) send(b []byte) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	if c.srv == nil {
		return nil
	}
	reply, delay := c.srv.handle(b, c.from, c.tcp)
	if reply == nil {
		return nil
	}
	p := pending{data: reply}
	if delay > 0 {
		p.ready = time.After(delay)
	}
	c.mu.Lock()
	c.queue = append(c.queue, p)
	c.mu.Unlock()
	return nil
}

func (c *memConn) Read(ctx context.Context) (transport.Datagram, error) {
	b, err := c.receive(ctx)
	return transport.Datagram{Data: b}, err
}

func (c *memConn) ReadMsg(ctx context.Context) ([]byte, error) { return c.receive(ctx) }

func (c *memConn) receive(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, net.ErrClosed
	}
	if len(c.queue) == 0 {
		c.mu.Unlock()
		return nil, c.n.timeout(ctx, c.to)
	}
	p := c.queue[0]
	c.mu.Unlock()
	if p.ready != nil {
		select {
		case <-p.ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("simnet: no reply from %s in time: %w", c.to, transport.ErrTimeout)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.queue) == 0 {
		return nil, net.ErrClosed
	}
	c.queue = c.queue[1:]
	return p.data, nil
}

func (c *memConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed, c.queue = true, nil
	return nil
}
