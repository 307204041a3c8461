package transport

import (
	"container/heap"
	"sync"
	"time"
)

// The sweeper watches the Hold-On windows of replies that went back at
// once, with one goroutine, one epoll instance and one deadline for all of
// them: each association is added to the epoll instance, which reports a
// late datagram as it arrives (so a conflict makes the server suspect at
// once, as a reader parked on the socket would), and the deadline ends
// the windows in the order they fall due. A watcher goroutine per
// exchange, parked on its socket with a timer and a cancellation hook of
// its own, cost about a tenth of the daemon's CPU per cold name (issue #6).
//
// Next must read a later reply as it arrives, so a window still queued
// when Next is called is handed to a watcher goroutine (claim); the
// sweeper leaves it alone from then on. Without an epoll instance (other
// systems) or for a PacketConn it cannot watch (the simulated networks),
// every window gets a watcher.

// sweepSlack lets a window end up to this late, so that one wake-up ends
// the windows of many exchanges. Ending late only watches longer.
const sweepSlack = time.Millisecond

// sweepBatch bounds the readiness events taken in one system call.
const sweepBatch = 64

// armable is a PacketConn the sweeper can take: its queued datagrams can
// be read without waiting, and its readiness watched by the sweeper's
// epoll instance.
type armable interface {
	// Poll returns a datagram already queued; ok is false when none is.
	Poll() (dg Datagram, ok bool)
	// arm asks the epoll instance ep to report once, under id, that a
	// datagram is queued; add for a socket ep does not know yet.
	arm(ep *epoller, id uint32, add bool) error
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
	ep      *epoller         // made at the first window; guarded by mu
	holds   holdHeap         // by end; guarded by mu
	armed   map[uint32]*hold // by epoll id; guarded by mu
	lastID  uint32           // guarded by mu
	running bool             // a sweep goroutine is live; guarded by mu
	closing bool             // the Client is closing; guarded by mu
}

// enqueue hands h to the sweeper, starting its goroutine when none runs
// (it ends whenever no window is left, so an idle Client runs none). It
// reports false when h must get a watcher instead.
func (c *Client) enqueue(h *hold, conn armable) bool {
	s := &c.sweeper
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || !s.open() {
		return false
	}
	s.lastID++
	for s.armed[s.lastID] != nil {
		s.lastID++
	}
	if err := conn.arm(s.ep, s.lastID, true); err != nil {
		return false
	}
	h.id = s.lastID
	s.armed[h.id] = h
	heap.Push(&s.holds, h)
	if !s.running {
		s.running = true
		c.watchers.Add(1)
		go c.sweep()
	} else if s.holds[0] == h {
		s.ep.setDeadline(h.end.Add(sweepSlack))
	}
	return true
}

// open makes the epoll instance when there is none yet.
func (s *sweeper) open() bool {
	if s.ep != nil {
		return true
	}
	ep, err := newEpoller()
	if err != nil {
		return false
	}
	s.ep, s.armed = ep, make(map[uint32]*hold)
	return true
}

// sweep reads late datagrams as they arrive and ends windows as they fall
// due, until none is left; when the Client closes it ends them all.
func (c *Client) sweep() {
	defer c.watchers.Done()
	s := &c.sweeper
	var due, ready []*hold
	for {
		due = s.due(due[:0], time.Now())
		for i, h := range due {
			c.endWindow(h)
			due[i] = nil
		}
		if !s.plan() {
			return
		}
		ready = s.wait(ready[:0])
		for i, h := range ready {
			c.lateRead(h)
			ready[i] = nil
		}
	}
}

// due removes the windows that ended by now (all of them once the Client
// is closing) from the queue and appends them to out.
func (s *sweeper) due(out []*hold, now time.Time) []*hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.holds) > 0 && (s.closing || !s.holds[0].end.After(now)) {
		h := heap.Pop(&s.holds).(*hold)
		delete(s.armed, h.id)
		out = append(out, h)
	}
	return out
}

// plan sets the wait's deadline to the earliest window's end; with no
// window left it marks the sweep goroutine ended, under the lock enqueue
// takes to decide on a new one, and returns false.
func (s *sweeper) plan() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.holds) == 0 {
		s.running = false
		return false
	}
	if !s.closing {
		s.ep.setDeadline(s.holds[0].end.Add(sweepSlack))
	}
	return true
}

// wait blocks until a watched association has a datagram queued or the
// deadline passes, and appends the windows reported ready to out.
func (s *sweeper) wait(out []*hold) []*hold {
	var ids [sweepBatch]uint32
	n := s.ep.wait(ids[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids[:n] {
		if h := s.armed[id]; h != nil {
			out = append(out, h)
		}
	}
	return out
}

// lateRead judges what a window's association queued and asks to hear
// of the next datagram while the window lasts.
func (c *Client) lateRead(h *hold) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != holdQueued {
		return
	}
	if c.readQueued(h) {
		s := &c.sweeper
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.armed[h.id] == h {
			_ = h.conn.(armable).arm(s.ep, h.id, false)
		}
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
// watch does and keeping the first different replies for Next. It
// returns whether the window may still read more.
func (c *Client) readQueued(h *hold) bool {
	p := h.conn.(armable)
	for ; h.reads < maxWatchReads; h.reads++ {
		dg, ok := p.Poll()
		if !ok {
			return true
		}
		c.n.lateReplies.Add(1)
		if got := c.judgeLate(h, dg); got != nil {
			c.conflict(&h.q, !h.seen)
			h.seen = true
			if len(h.found) < maxHeld {
				h.found = append(h.found, heldReply{got: got, rtt: time.Since(h.start)})
			}
		}
	}
	return false
}

// claim makes sure Next is served by a watcher goroutine or by what the
// sweeper kept: it returns the next kept reply, with swept true once the
// sweeper has ended the window (ok false: none left).
func (c *Client) claim(h *hold) (r heldReply, ok, swept bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch h.state {
	case holdQueued:
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
	if s.ep != nil {
		s.ep.setDeadline(time.Unix(1, 0))
	}
}

// close releases the epoll instance once no sweep goroutine runs.
func (s *sweeper) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ep != nil {
		s.ep.close()
		s.ep = nil
	}
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
