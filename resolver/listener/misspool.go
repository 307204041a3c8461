package listener

import (
	"sync"
	"time"
)

// missWorkerIdle is how long a miss worker waits for the next miss before
// it ends, give or take one period (missPool.sweep).
const missWorkerIdle = 10 * time.Second

// missPool keeps the idle miss workers. Workers outlive their query
// because a resolution's call stack is deep: a goroutine per miss grew
// its stack by copying on every query, a tenth of the daemon's CPU per
// cold name. An idle worker waits on a channel of its own, on a stack, so
// that a miss goes to the worker that finished last, whose stack the
// CPU's caches still hold, and is taken with a plain receive. Workers
// that waited in a select over one shared channel, their idle timer and
// the shutdown channel paid about 300 ns more per miss with 100 of them
// waiting, and the one woken was the one idle longest (issue #6).
type missPool struct {
	mu     sync.Mutex
	idle   []*missWorker // the last to finish on top; guarded by mu
	sweeps uint64        // guarded by mu
	closed bool          // guarded by mu
}

// missWorker is one miss worker's hand-off channel and the reply room it
// reuses from one miss to the next.
type missWorker struct {
	jobs chan missJob // capacity 1, so a hand-off never waits
	room []byte
	// parked is the pool's sweep count when the worker went idle.
	parked uint64
}

// missReplyRoom is the room a miss worker keeps for its replies: enough
// for most answers; a larger one is packed into an allocation of its own.
const missReplyRoom = 512

func newMissWorker() *missWorker {
	return &missWorker{jobs: make(chan missJob, 1), room: make([]byte, missReplyRoom)}
}

// take removes the idle worker that finished last, or returns nil when
// none is idle. The caller hands it a job.
func (p *missPool) take() *missWorker {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	w := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return w
}

// park makes w idle; false once the pool is closed, when w must end.
func (p *missPool) park(w *missWorker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	w.parked = p.sweeps
	p.idle = append(p.idle, w)
	return true
}

// sweep ends the workers that stayed idle since the sweep before this
// one: they have been idle for one to two periods. A worker parks on top
// of the stack, so those are its bottom.
func (p *missPool) sweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweeps++
	old := 0
	for old < len(p.idle) && p.idle[old].parked+1 < p.sweeps {
		close(p.idle[old].jobs)
		old++
	}
	n := copy(p.idle, p.idle[old:])
	clear(p.idle[n:])
	p.idle = p.idle[:n]
}

// close ends the idle workers and makes the busy ones end when their miss
// is answered.
func (p *missPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, w := range p.idle {
		close(w.jobs)
	}
	p.idle = nil
}
