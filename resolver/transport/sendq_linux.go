package transport

import (
	"os"
	"runtime"
	"sync"
	"time"
)

// sendQueue sends the first datagrams of a Network's new sockets in
// batches. A socket's set-up (call by call, or the ring's) queues its
// datagram instead of writing it; the first socket of a scheduling round
// yields once, as the listener's outbox does for replies
// (resolver/listener/outbox.go), so that the goroutines ready to run
// queue theirs, and then writes the queue, one write(2) after another.
// A server woken by the first datagram of a batch is still at work when
// the next ones arrive, where datagrams sent one at a time found it
// asleep most of the time; and its wake-up, a cross-CPU interrupt on a
// virtual machine, was paid inside our write(2). On bench/run's
// cold-flat set NSD woke for 0.52-0.87 of our queries before and
// 0.05-0.16 after (Knot Resolver and Unbound, which send from an event
// loop a batch at a time: about half), and a cold name took 6-16% less
// of our CPU (docs/performance.md, Sixteenth round). With the ring the
// write is one system call more than the chain that carried the query
// as its last link; the batch still took 12-17% off on this machine.
//
// The lock is held across the writes, so that Close, which takes it
// before the descriptor is closed, never meets a write to a descriptor
// number that was closed and reused. The socket's owner learns of a
// failed write at its next read, and SentAt gives the time the batch
// began, when the query's clock starts (Hold-On's tests compare the
// arrival of a reply with the send).
type sendQueue struct {
	mu       sync.Mutex
	pending  []*udpConn // with their first datagrams (udpConn.first)
	flushing bool       // a goroutine yields or writes for the queue
}

// push queues b, u's first datagram, and writes the queue unless another
// goroutine already will.
func (q *sendQueue) push(u *udpConn, b []byte) {
	q.mu.Lock()
	u.first = b
	q.pending = append(q.pending, u)
	if q.flushing {
		q.mu.Unlock()
		return
	}
	q.flushing = true
	q.mu.Unlock()
	q.flush()
}

// flush yields once, then writes every datagram queued. What is queued
// after it lets go of the lock starts the next batch: looping until a
// yield found none would keep this goroutine's own exchange from its
// reply for as long as the load lasts.
func (q *sendQueue) flush() {
	runtime.Gosched()
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	for i, u := range q.pending {
		q.pending[i] = nil
		if u.first == nil {
			continue // closed while it waited
		}
		u.sent = now
		if err := write(u.fd, u.first); err != nil {
			u.sendErr.Store(&os.SyscallError{Syscall: "write", Err: err})
			u.ready()
		}
		u.first = nil
	}
	q.pending = q.pending[:0]
	q.flushing = false
}

// forget takes u's datagram out of the queue, if it is still there.
func (q *sendQueue) forget(u *udpConn) {
	q.mu.Lock()
	u.first = nil
	q.mu.Unlock()
}

// sentAt is when the batch that wrote u's first datagram began; zero
// while it waits.
func (q *sendQueue) sentAt(u *udpConn) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	return u.sent
}
