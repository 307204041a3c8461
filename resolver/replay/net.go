package replay

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// Upstream is one query the resolver sent to a scripted server.
type Upstream struct {
	Server netip.AddrPort
	TCP    bool
	Msg    *dns.Msg // nil when the bytes did not unpack
	Step   int      // the step number it was matched at
	// reply receives the answer bytes; closed without one means the query
	// timed out, and err says why when it failed otherwise.
	reply chan []byte
	err   error
	done  bool
	// outcome says how the script answered, for failure reports.
	outcome string
}

// String renders the query and its outcome on one line.
func (u *Upstream) String() string {
	proto := "UDP"
	if u.TCP {
		proto = "TCP"
	}
	q := "(unparsed)"
	if u.Msg != nil {
		q = questionText(u.Msg.Question)
		if opt := u.Msg.IsEdns0(); opt != nil && opt.Do() {
			q += " DO"
		}
	}
	return fmt.Sprintf("step %d %s %s %s: %s", u.Step, proto, u.Server.Addr(), q, u.outcome)
}

// Network is the scenario's simulated internet: it implements
// transport.Network and answers every query from the RANGE entries of the
// current step by the dialect's rules (FORMAT.md §6).
type Network struct {
	sc *Scenario
	// hold keeps unmatched queries pending for CHECK_OUT_QUERY, REPLY and
	// TIMEOUT steps (Unbound scenarios that use them); otherwise they time
	// out at once, so that replayed timeouts cost no real time.
	hold bool

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every event; guarded by mu
	step    int           // guarded by mu
	log     []*Upstream   // guarded by mu
	pending []*Upstream   // guarded by mu
	used    map[*Entry]bool
	// replies are Deckard's one-shot STEP REPLY entries not yet used.
	replies []*Step
}

func newNetwork(sc *Scenario, hold bool) *Network {
	n := &Network{sc: sc, hold: hold, changed: make(chan struct{}), used: map[*Entry]bool{}}
	for _, st := range sc.Steps {
		if st.Type == "REPLY" && sc.Dialect == Deckard {
			n.replies = append(n.replies, st)
		}
	}
	return n
}

// setStep sets the step number that range windows are matched against.
func (n *Network) setStep(s int) {
	n.mu.Lock()
	n.step = s
	n.mu.Unlock()
}

// notify wakes every waiter; callers hold mu.
func (n *Network) notify() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// send records a query and answers it if the script can.
func (n *Network) send(server netip.AddrPort, b []byte, tcp bool) *Upstream {
	u := &Upstream{Server: server, TCP: tcp, reply: make(chan []byte, 1)}
	m := new(dns.Msg)
	if m.Unpack(b) == nil {
		u.Msg = m
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	u.Step = n.step
	n.log = append(n.log, u)
	defer n.notify()
	u.outcome = "no entry matched: timed out"
	if u.Msg == nil {
		u.finish(nil, nil)
		return u
	}
	if ans, ok := n.answer(u); ok {
		u.outcome = "answered"
		u.finish(ans, nil)
		return u
	}
	if n.hold {
		u.outcome = "held for the script"
		n.pending = append(n.pending, u)
		return u
	}
	u.finish(nil, nil)
	return u
}

// finish delivers the outcome of u once: b nil means a timeout unless err
// is set.
func (u *Upstream) finish(b []byte, err error) {
	if u.done {
		return
	}
	u.done, u.err = true, err
	if b != nil {
		u.reply <- b
	}
	close(u.reply)
}

// answer finds the scripted reply to u by the dialect's rules; callers
// hold mu.
func (n *Network) answer(u *Upstream) ([]byte, bool) {
	if n.sc.Dialect == Deckard {
		return n.deckardAnswer(u)
	}
	for i := len(n.sc.Ranges) - 1; i >= 0; i-- {
		rg := n.sc.Ranges[i]
		if !rg.fits(n.step, u.Server.Addr(), false) {
			continue
		}
		if e := n.firstMatch(rg.Entries, u); e != nil {
			return e.reply(u.Msg, Unbound), true
		}
	}
	return nil, false
}

// deckardAnswer: the first fitting range (file order) with a matching
// entry, else an unused STEP REPLY, else SERVFAIL.
func (n *Network) deckardAnswer(u *Upstream) ([]byte, bool) {
	anyAddr := !n.listed(u.Server.Addr())
	for _, rg := range n.sc.Ranges {
		if !rg.fits(n.step, u.Server.Addr(), anyAddr) {
			continue
		}
		if e := n.firstMatch(rg.Entries, u); e != nil {
			return e.reply(u.Msg, Deckard), true
		}
	}
	for i, st := range n.replies {
		if st.N >= n.step && st.Entry.mismatch(u.Msg, u.TCP, Deckard) == "" {
			n.replies = append(n.replies[:i], n.replies[i+1:]...)
			return st.Entry.reply(u.Msg, Deckard), true
		}
	}
	u.outcome = "no entry matched: SERVFAIL"
	fail := new(dns.Msg)
	fail.SetRcode(u.Msg, dns.RcodeServerFailure)
	b, _ := fail.Pack()
	return b, true
}

func (n *Network) firstMatch(entries []*Entry, u *Upstream) *Entry {
	for _, e := range entries {
		if e.mismatch(u.Msg, u.TCP, n.sc.Dialect) == "" {
			n.used[e] = true
			return e
		}
	}
	return nil
}

// listed reports whether any range names addr.
func (n *Network) listed(addr netip.Addr) bool {
	for _, rg := range n.sc.Ranges {
		for _, a := range rg.Addrs {
			if a == addr.Unmap() {
				return true
			}
		}
	}
	return false
}

// fits reports whether the range serves step and addr; anyAddr lets a
// Deckard query to an unlisted server reach every range.
func (rg *Range) fits(step int, addr netip.Addr, anyAddr bool) bool {
	if step < rg.From || step > rg.To {
		return false
	}
	if len(rg.Addrs) == 0 || anyAddr {
		return true
	}
	for _, a := range rg.Addrs {
		if a == addr.Unmap() {
			return true
		}
	}
	return false
}

// resolvePending answers (b non-nil), times out (b and err nil) or fails
// the newest pending query matching e (any when e is nil). It reports
// whether there was one.
func (n *Network) resolvePending(e *Entry, b func(q *dns.Msg) []byte, err error) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := len(n.pending) - 1; i >= 0; i-- {
		u := n.pending[i]
		if e != nil && e.mismatch(u.Msg, u.TCP, Unbound) != "" {
			continue
		}
		n.pending = append(n.pending[:i], n.pending[i+1:]...)
		var ans []byte
		u.outcome = "timed out by the script"
		if b != nil {
			ans = b(u.Msg)
			u.outcome = "answered by the script"
		}
		u.finish(ans, err)
		n.notify()
		return true
	}
	return false
}

// sent reports whether a query matching e was sent (to addr, when valid).
func (n *Network) sent(e *Entry, addr netip.Addr) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, u := range n.log {
		if u.Msg != nil && (!addr.IsValid() || u.Server.Addr() == addr) && e.mismatch(u.Msg, u.TCP, n.sc.Dialect) == "" {
			return true
		}
	}
	return false
}

// state returns the channel closed at the next event and the number of
// pending queries.
func (n *Network) state() (<-chan struct{}, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed, len(n.pending)
}

// trace renders every query sent so far.
func (n *Network) trace() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, len(n.log))
	for i, u := range n.log {
		out[i] = u.String()
	}
	return out
}

// unusedMandatory names the MANDATORY entries no query used.
func (n *Network) unusedMandatory() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, rg := range n.sc.Ranges {
		for _, e := range rg.Entries {
			if e.Mandatory && !n.used[e] {
				out = append(out, questionText(e.Question))
			}
		}
	}
	return out
}

// DialUDP implements transport.Network.
func (n *Network) DialUDP(ctx context.Context, server netip.AddrPort) (transport.PacketConn, error) {
	return &simConn{n: n, server: server}, nil
}

// DialTCP implements transport.Network.
func (n *Network) DialTCP(ctx context.Context, server netip.AddrPort) (transport.StreamConn, error) {
	return &simConn{n: n, server: server, tcp: true}, nil
}

// simConn is one association with a scripted server; it is used by one
// goroutine, as transport.PacketConn requires.
type simConn struct {
	n      *Network
	server netip.AddrPort
	tcp    bool
	queue  []*Upstream
}

func (c *simConn) Write(b []byte) error {
	c.queue = append(c.queue, c.n.send(c.server, b, c.tcp))
	return nil
}

func (c *simConn) WriteMsg(b []byte) error { return c.Write(b) }

func (c *simConn) Read(ctx context.Context) (transport.Datagram, error) {
	b, err := c.ReadMsg(ctx)
	return transport.Datagram{Data: b}, err
}

// ReadMsg returns the answer to the oldest unanswered query of this
// association, or ErrTimeout at once when the script gives none.
func (c *simConn) ReadMsg(ctx context.Context) ([]byte, error) {
	for len(c.queue) > 0 {
		u := c.queue[0]
		select {
		case b, ok := <-u.reply:
			if ok {
				return b, nil
			}
			c.queue = c.queue[1:]
			if u.err != nil {
				return nil, u.err
			}
		case <-ctx.Done():
			return nil, transport.ErrTimeout
		}
	}
	return nil, transport.ErrTimeout
}

func (c *simConn) Close() error { return nil }
