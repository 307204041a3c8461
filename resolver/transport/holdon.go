package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Hold-On (Duan et al. 2012) against on-path injection: an injector sees
// the query, so port, ID, 0x20 and even the cookie are no obstacle, but it
// cannot stop the genuine reply, which follows its forgery on the same
// association. After the first acceptable UDP reply the socket therefore
// stays open for a window; a second, different acceptable reply in it means
// one of the two was injected.
//
// The window ends 1.5 × the expected RTT after the send (without an
// estimate, HoldOnMax after it) and never after the exchange's deadline.
// The expected RTT is the larger of the resolver's estimate (Query.RTT) and
// the transport's own slowRTT, which an injector can only pull down slowly.
//
// Whether the client waits: it waits out the window, and on a conflict (as
// soon as one arrives) re-asks over TCP and returns that answer, when the
// server had an injection within InjectionMemory, or when the first reply
// was early: before half the expected RTT (the paper's test: a forgery from
// a box on the path beats the server) and, once the server's fastest
// replies are known (fastRTT), before half their time too. The second test
// is for queueing: under load the expected RTT sits at the spikes, and a
// reply before half of it is no sign of a forgery (bench/run's cold runs
// waited on 35-60% of their exchanges), while one twice as fast as the
// server's fastest still is: no genuine reply crosses the path in half
// its shortest time. Both tests take the time the reply reached the kernel
// (Datagram.At, SO_TIMESTAMPNS), not the time it was read: on a loaded
// machine a forgery read late would look as late as the genuine reply.
// Otherwise the first reply is returned at once, so a clean path pays no
// latency; the socket is still watched (by the sweeper, sweep.go) until
// the window ends, so Response.Next can hand the resolver a later reply
// when the first fails validation, and a conflict seen then is counted,
// logged and makes the server suspect, which holds every later reply
// from it. The price: the first reply from a server
// without RTT history, or one whose forgery arrives later than half the
// RTT or half the fastest, is not held and can be injected once; an
// injector that first trains fastRTT down with early copies of genuine
// replies (no conflict) pays an eighth of the distance per reply, as for
// slowRTT.

// suspectFloor is the shortest window for a suspect server: its RTT
// estimate may have been dragged down by forgeries, and the genuine reply
// of a fast path still needs time to arrive behind the injected one.
const suspectFloor = 50 * time.Millisecond

// fastWindow is how long fastRTT keeps a minimum no reply has undercut
// (TCP BBR keeps its minimum RTT for 10 s for the same reason: a path's
// fastest time changes rarely, its queueing delay all the time).
const fastWindow = 10 * time.Second

// maxHeld bounds the later replies one window keeps for Next, and
// maxWatchReads the datagrams it reads, so a flood costs bounded work.
const (
	maxHeld       = 4
	maxWatchReads = 64
)

// hold is one association kept open after its first acceptable reply.
type hold struct {
	c     *Client
	q     Query
	p     plan
	wq    *wireQuery
	conn  PacketConn
	first *accepted
	start time.Time

	end time.Time // the window's end

	mu    sync.Mutex
	state holdState   // guarded by mu
	found []heldReply // what the sweeper kept for Next; guarded by mu
	reads int         // datagrams the window read; guarded by mu until a watcher owns h
	seen  bool        // a conflict was counted as an injection

	listed bool // in the sweeper's ready list; guarded by the sweeper's mu

	// A watcher's: different acceptable replies, for Next, and closed
	// when it has closed conn.
	later chan heldReply
	done  chan struct{}
}

// windowReader is a PacketConn that waits for a datagram until a given
// time without a context of its own (the real sockets: a timer of the
// socket's own, or its read deadline, ends the wait). A context with the
// window's deadline would run a second timer, and at the window's end a
// goroutine for the socket's cancellation hook, on every exchange (issue
// #6).
type windowReader interface {
	ReadUntil(ctx context.Context, end time.Time) (Datagram, error)
}

// readUntil reads conn until end or until ctx ends.
func readUntil(ctx context.Context, conn PacketConn, end time.Time) (Datagram, error) {
	if wr, ok := conn.(windowReader); ok {
		return wr.ReadUntil(ctx, end)
	}
	if d, ok := ctx.Deadline(); ok && !end.Before(d) {
		return conn.Read(ctx)
	}
	wctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	return conn.Read(wctx)
}

// read reads the held association until the window ends or ctx does.
func (h *hold) read(ctx context.Context) (Datagram, error) { return readUntil(ctx, h.conn, h.end) }

type heldReply struct {
	got *accepted
	rtt time.Duration
}

// holdOn decides the fate of an accepted UDP reply's association: closed
// at once, watched in the background (by the sweeper, or by a watcher
// goroutine where it cannot) while resp goes back with Next set,
// or waited on before resp (or a TCP plan, on a conflict) is returned.
func (c *Client) holdOn(ctx context.Context, q *Query, p plan, h *hold, resp *Response, arrived time.Duration) (*Response, plan, error) {
	end, wait := c.holdWindow(q, arrived, h.start)
	if c.cfg.DisableHoldOn || c.life.Err() != nil || !time.Now().Before(end) {
		_ = h.conn.Close()
		c.noteRTT(q, resp.RTT, arrived)
		return resp, p, nil
	}
	h.q, h.p, h.end = *q, p, end
	if wait {
		c.n.holdOnWaits.Add(1)
		conflict := c.awaitConflict(ctx, h)
		// What the wait counted belongs to this exchange.
		q.unwanted = h.q.unwanted
		if conflict {
			tcp := p
			tcp.tcp = true
			return nil, tcp, nil
		}
		c.noteRTT(q, resp.RTT, arrived)
		return resp, p, nil
	}
	c.noteRTT(q, resp.RTT, arrived)
	if conn, ok := h.conn.(armable); !ok {
		c.startWatch(h)
	} else if !c.enqueue(h, conn) {
		// The Client is closing: a watcher started now could outlive
		// Close's wait for them.
		_ = h.conn.Close()
		return resp, p, nil
	}
	resp.Next = func(ctx context.Context) (*Response, error) { return c.next(ctx, h) }
	return resp, p, nil
}

// awaitConflict reads a held association in the exchange's own goroutine
// until a second, different reply arrives or the window (or ctx) ends,
// closes it and reports whether one came. The exchange waits anyway, so a
// watcher goroutine would only add a hand-over per query (issue #6). A
// conflict ends the wait at once: it already proves the injection, and the
// rest of the window would only delay the TCP answer (ONP-1: genuine delay
// + the TCP round trip, not 1.5 RTT more).
func (c *Client) awaitConflict(ctx context.Context, h *hold) bool {
	defer h.conn.Close()
	return c.readHeld(ctx, h) != nil
}

// readHeld reads h's association until a different acceptable reply
// arrives, which it returns, or until the window, ctx or the read bound
// ends (nil). The bound counts the window's reads wherever they were
// made: Next must not buy a flood another maxWatchReads after the
// sweeper's share.
func (c *Client) readHeld(ctx context.Context, h *hold) *accepted {
	for h.reads < maxWatchReads {
		dg, err := h.read(ctx)
		h.reads++
		if socketReport(err) {
			continue
		}
		if err != nil {
			return nil
		}
		if got := c.held(h, dg); got != nil {
			return got
		}
	}
	return nil
}

// socketReport reports whether err is a socket error that must not end a
// window: ECONNREFUSED from an ICMP report, which anyone on the path can
// send, timed by an injector to follow its forgery, would otherwise hide
// the genuine reply behind it. The window's read bound counts it.
func socketReport(err error) bool { return errors.Is(err, ErrRefused) }

// held judges one datagram read in h's window and returns it when it is a
// different acceptable reply, counted as a conflict (the window's first
// also as an injection).
func (c *Client) held(h *hold, dg Datagram) *accepted {
	c.n.lateReplies.Add(1)
	got := c.judgeLate(h, dg)
	if got != nil {
		c.conflict(&h.q, !h.seen)
		h.seen = true
	}
	return got
}

// holdWindow returns when the window of a reply that took first ends,
// and whether the client waits it out (see the comment at the top).
func (c *Client) holdWindow(q *Query, first time.Duration, start time.Time) (time.Time, bool) {
	info := c.servers.get(q.Server)
	expect := max(q.RTT, info.slowRTT)
	suspect := c.cfg.Clock.Now().Before(info.suspectUntil)
	span := c.cfg.HoldOnMax
	if expect > 0 {
		span = min(span, expect*3/2)
	}
	if suspect {
		span = max(span, min(c.cfg.HoldOnMax, suspectFloor))
	}
	end := start.Add(span)
	if q.end.Before(end) {
		end = q.end
	}
	return end, suspect || (expect > 0 && first < expect/2 && (info.fastRTT == 0 || first < info.fastRTT/2))
}

// watch reads the held association until the window ends or the Client
// closes, keeping every acceptable reply that differs from the first.
func (c *Client) watch(h *hold) {
	defer c.watchers.Done()
	defer close(h.done)
	defer h.conn.Close()
	for got := c.readHeld(c.life, h); got != nil; got = c.readHeld(c.life, h) {
		select {
		case h.later <- heldReply{got: got, rtt: time.Since(h.start)}:
		default:
		}
	}
}

// judgeLate applies the checks of the first reply to a later datagram and
// returns it when it is acceptable and differs from the first.
func (c *Client) judgeLate(h *hold, dg Datagram) *accepted {
	switch c.judge(h.wq, h.q.Server, dg) {
	case verdictAccept:
	case verdictWrongID, verdictWrongQuestion, verdictWrongSource:
		c.noteUnwanted(&h.q)
		return nil
	default:
		return nil
	}
	if bytes.Equal(dg.Data, h.first.data) {
		c.n.duplicates.Add(1)
		return nil
	}
	got, _ := c.judgeUDP(&h.q, h.wq, dg.Data)
	return got
}

// conflict counts a second, different acceptable reply; the first of an
// exchange also counts an injection, makes the server suspect and is
// logged as a warning naming the server and the name.
func (c *Client) conflict(q *Query, first bool) {
	c.n.conflicts.Add(1)
	if !first {
		return
	}
	c.n.injections.Add(1)
	until := c.cfg.Clock.Now().Add(c.cfg.InjectionMemory)
	c.servers.update(q.Server, func(s *serverInfo) { s.suspectUntil = until })
	c.log.Warn("two different replies to one query: on-path injection",
		zap.Stringer("server", q.Server), zap.String("name", q.Name), zap.Uint16("type", q.Type))
}

// next is Response.Next of a watched association: the next different
// acceptable reply, or ErrTimeout when the window ends without one.
func (c *Client) next(ctx context.Context, h *hold) (*Response, error) {
	if r, ok, swept := c.claim(h); swept {
		if ok {
			return c.heldResponse(h, r), nil
		}
		return nil, errNoOther(h)
	}
	select {
	case r := <-h.later:
		return c.heldResponse(h, r), nil
	case <-h.done:
		select {
		case r := <-h.later:
			return c.heldResponse(h, r), nil
		default:
		}
		return nil, errNoOther(h)
	case <-ctx.Done():
		return nil, timeoutErr(ctx, &h.q, ctx.Err())
	}
}

func errNoOther(h *hold) error {
	return fmt.Errorf("hold on %s for %s: no other reply in the window: %w", h.q.Server, h.q.Name, ErrTimeout)
}

func (c *Client) heldResponse(h *hold, r heldReply) *Response {
	c.n.accepted.Add(1)
	c.noteRTT(&h.q, r.rtt, r.rtt)
	return &Response{Msg: r.got.msg, RTT: r.rtt, EDNS: h.p.edns, ServerCookie: r.got.cookie == cookieValid,
		Next: func(ctx context.Context) (*Response, error) { return c.next(ctx, h) }}
}

// noteRTT feeds slowRTT and fastRTT. slowRTT takes a larger sample at
// once and moves an eighth of the way to a smaller one, so forged early
// replies drag the Hold-On window down only slowly while a genuine slower
// path is learned at once. fastRTT falls as slowly and rises only when
// fastWindow passed without a faster reply: then it starts again from the
// sample. A rise by a fraction of each slower sample settled far above the
// fastest replies when the slow ones were a hundred times slower (bench/run:
// 30 µs replies, 10 ms queueing spikes, fastRTT 200-900 µs). rtt is the
// time to the reply's read, arrived to its arrival (Datagram.At): fastRTT,
// which earliness is judged against, takes the arrival, as holdWindow's
// first reply does; slowRTT, which sizes the window the reads must fit in,
// takes the read.
func (c *Client) noteRTT(q *Query, rtt, arrived time.Duration) {
	if rtt <= 0 {
		return
	}
	now := c.cfg.Clock.Now()
	c.servers.update(q.Server, func(s *serverInfo) {
		switch {
		case arrived <= 0: // no arrival to learn from
		case arrived < s.fastRTT:
			s.fastRTT -= (s.fastRTT - arrived) / 8
			s.fastAt = now
		case s.fastRTT == 0 || now.Sub(s.fastAt) > fastWindow:
			s.fastRTT, s.fastAt = arrived, now
		}
		if rtt > s.slowRTT {
			s.slowRTT = rtt
			return
		}
		s.slowRTT -= (s.slowRTT - rtt) / 8
	})
}
