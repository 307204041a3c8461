package transport

import (
	"container/heap"
	"sync"
	"time"
)

// The sweeper watches the Hold-On windows of replies that went back at
// once, with one goroutine and one timer for all of them. Each association
// asks its Network to report its next datagram to the sweeper (on Linux
// the reactor's epoll instance does, reactor_linux.go), so a late reply is
// judged when it arrives and a conflict makes the server suspect at once,
// as a reader parked on the socket would; the timer ends the windows in
// the order they fall due and closes their sockets. A watcher goroutine
// per exchange, parked on its socket with a timer and a cancellation hook
// of its own, cost about a tenth of the daemon's CPU per cold name
// (issue #6).
//
// Next must read a later reply as it arrives, so a window still queued
// when Next is called is handed to a watcher goroutine (claim); the
// sweeper leaves it alone from then on. A PacketConn that cannot report
// its readiness (other systems, the simulated networks) gets a watcher
// for every window.

// sweepSlack lets a window end up to this late, so that one wake-up ends
// the windows of many exchanges. Ending late only watches longer.
const sweepSlack = time.Millisecond

// armable is a PacketConn the sweeper can take.
type armable interface {
	// Poll returns a datagram already queued; ok is false when none is.
	Poll() (dg Datagram, ok bool)
	// notify arranges for r.datagramQueued to run, on another goroutine,
	// whenever a datagram arrives, and at once on the caller's for one
	// that arrived unread; with r nil, reads of the association are woken
	// instead.
	notify(r queueWatcher)
}

// queueWatcher is told that an association has a datagram queued. An
// interface, not a func: a closure per held window was an allocation per
// exchange (issue #6).
type queueWatcher interface {
	datagramQueued()
}

// holdState says who owns a held association.
type holdState uint8

const (
	holdQueued  holdState = iota // the sweeper's, unless Next claims it first
	holdWatched                  // a watcher goroutine reads it (Next, or no sweeper)
	holdSwept                    // ended; found holds what the sweeper kept
)

// sweeper is the Client's set of swept windows.
type sweeper struct {
	mu      sync.Mutex
	holds   holdHeap // by end; guarded by mu
	ready   []*hold  // reported to have a datagram queued; guarded by mu
	running bool     // a sweep goroutine is live; guarded by mu
	closing bool     // the Client is closing; guarded by mu
	wake    chan struct{}
}

// enqueue hands h to the sweeper, starting its goroutine when none runs
// (it ends whenever no window is left, so an idle Client runs none). It
// reports false when the Client is closing.
func (c *Client) enqueue(h *hold, conn armable) bool {
	start, ok := c.sweeper.push(h, &c.watchers)
	if !ok {
		return false
	}
	if start {
		go c.sweep()
	}
	// After the push, outside the sweeper's lock: a datagram that arrived
	// unread is reported at once, and reporting takes the lock.
	conn.notify(h)
	return true
}

// push queues h; start says the caller must start the sweep goroutine,
// which push has counted in watchers. ok is false when the Client is
// closing.
func (s *sweeper) push(h *hold, watchers *sync.WaitGroup) (start, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false, false
	}
	heap.Push(&s.holds, h)
	switch {
	case !s.running:
		if s.wake == nil {
			s.wake = make(chan struct{}, 1)
		}
		s.running = true
		watchers.Add(1)
		return true, true
	case s.holds[0] == h:
		s.poke()
	}
	return false, true
}

// datagramQueued reports h to the sweeper of its Client.
func (h *hold) datagramQueued() { h.c.reported(h) }

// reported queues h, whose association has a datagram, for the sweeper.
// A window is listed once however many reports come before the sweeper
// runs, and not at all when no sweeper runs: its socket is closed already.
func (c *Client) reported(h *hold) {
	s := &c.sweeper
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || h.listed {
		return
	}
	h.listed = true
	s.ready = append(s.ready, h)
	s.poke()
}

// poke wakes the sweep goroutine; s.mu is held.
func (s *sweeper) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// sweep judges late datagrams as they are reported and ends windows as
// they fall due, until none is left; when the Client closes it ends them
// all.
func (c *Client) sweep() {
	defer c.watchers.Done()
	s := &c.sweeper
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due, ready []*hold
	for {
		due, ready = s.take(due[:0], ready[:0], time.Now())
		for _, h := range ready {
			c.lateRead(h)
		}
		for _, h := range due {
			c.endWindow(h)
		}
		clear(due)
		clear(ready)
		next, ok := s.plan()
		if !ok {
			return
		}
		timer.Reset(time.Until(next) + sweepSlack)
		select {
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// take moves the reported windows to ready and the windows that ended by
// now (all of them once the Client is closing) to due.
func (s *sweeper) take(due, ready []*hold, now time.Time) ([]*hold, []*hold) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.ready {
		h.listed = false
	}
	ready = append(ready, s.ready...)
	clear(s.ready)
	s.ready = s.ready[:0]
	for len(s.holds) > 0 && (s.closing || !s.holds[0].end.After(now)) {
		due = append(due, heap.Pop(&s.holds).(*hold))
	}
	return due, ready
}

// plan returns the earliest end still queued; with no window left it marks
// the sweep goroutine ended, under the lock enqueue takes to decide on a
// new one.
func (s *sweeper) plan() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.holds) == 0 && len(s.ready) == 0 {
		s.running = false
		return time.Time{}, false
	}
	if s.closing || len(s.holds) == 0 {
		return time.Now(), true
	}
	return s.holds[0].end, true
}

// lateRead judges what a window's association queued; the Network
// reports every datagram that arrives after.
func (c *Client) lateRead(h *hold) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state == holdQueued {
		c.readQueued(h)
	}
}

// endWindow closes a window's association unless Next gave it a watcher,
// which closes it itself.
func (c *Client) endWindow(h *hold) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != holdQueued {
		return
	}
	h.state = holdSwept
	_ = h.conn.Close()
}

// readQueued reads what h's association queued, judging each datagram as
// watch does and keeping the first different replies for Next.
func (c *Client) readQueued(h *hold) {
	p := h.conn.(armable)
	for ; h.reads < maxWatchReads; h.reads++ {
		dg, ok := p.Poll()
		if !ok {
			return
		}
		if got := c.held(h, dg); got != nil {
			if len(h.found) < maxHeld {
				h.found = append(h.found, heldReply{got: got, rtt: time.Since(h.start)})
			}
		}
	}
}

// claim makes sure Next is served by a watcher goroutine or by what the
// sweeper kept: it returns the next kept reply, with swept true once the
// sweeper has ended the window (ok false: none left).
func (c *Client) claim(h *hold) (r heldReply, ok, swept bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch h.state {
	case holdQueued:
		if conn, ok := h.conn.(armable); ok {
			conn.notify(nil) // the watcher reads it from now on
		}
		c.startWatch(h)
	case holdSwept:
		if len(h.found) == 0 {
			return heldReply{}, false, true
		}
		r, h.found = h.found[0], h.found[1:]
		return r, true, true
	}
	return heldReply{}, false, false
}

// startWatch hands h, with the replies the sweeper kept, to a watcher
// goroutine of its own.
func (c *Client) startWatch(h *hold) {
	h.state = holdWatched
	h.later, h.done = make(chan heldReply, maxHeld), make(chan struct{})
	for _, r := range h.found {
		h.later <- r
	}
	h.found = nil
	c.watchers.Add(1)
	go c.watch(h)
}

// shut makes the sweep goroutine end every window now, and enqueue refuse
// new ones (Client.Close).
func (s *sweeper) shut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	s.poke()
}

// holdHeap orders windows by their end.
type holdHeap []*hold

func (q holdHeap) Len() int           { return len(q) }
func (q holdHeap) Less(i, j int) bool { return q[i].end.Before(q[j].end) }
func (q holdHeap) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *holdHeap) Push(x any)        { *q = append(*q, x.(*hold)) }
func (q *holdHeap) Pop() any {
	old := *q
	h := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return h
}
