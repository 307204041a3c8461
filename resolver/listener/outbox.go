package listener

import (
	"net"
	"net/netip"
	"runtime"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/net/ipv4"
)

// outbox sends the replies of one worker socket's misses. Misses finish
// in bursts, because one wake-up of the upstream reactor hands several
// replies to their resolutions, so the first reply of a burst yields to
// the goroutines already runnable and then sends every reply queued
// meanwhile with one sendmmsg. A sendto per reply woke the client's
// reader once per reply; a batch wakes it once (issue #6).
//
// The yield bounds the wait: the runtime takes a yielded goroutine back
// once the runnable ones have had their turn (and at least every 61
// scheduling rounds), before it polls the network, so a queued reply
// waits for work that is ready to run, never for I/O.
type outbox struct {
	s  *Server // its log and batch writer
	pc *net.UDPConn
	bc batchConn // only the flushing goroutine uses it

	mu       sync.Mutex
	queued   replyBatch // replies not yet taken by a flush
	spare    replyBatch // the batch a flush hands back when it is done
	flushing bool       // a goroutine is yielding or writing for the box
}

// replyBatch holds copies of replies, so that a miss worker may reuse its
// room as soon as its reply is queued.
type replyBatch struct {
	msgs []ipv4.Message
	tos  []netip.AddrPort
}

func (s *Server) newOutbox(pc *net.UDPConn, v4 bool) *outbox {
	return &outbox{s: s, pc: pc, bc: newBatchConn(pc, v4)}
}

// send queues out for to, and flushes the box unless another goroutine
// already does.
func (b *outbox) send(out []byte, to netip.AddrPort) {
	b.mu.Lock()
	if len(b.queued.msgs) >= udpBatch {
		// A box holds one sendmmsg's worth, so its memory is bounded;
		// past that a reply goes on its own.
		b.mu.Unlock()
		if _, err := b.pc.WriteToUDPAddrPort(out, to); err != nil {
			b.s.log.Debug("udp write", zap.Stringer("client", to), zap.Error(err))
		}
		return
	}
	b.queued.add(out, to)
	if b.flushing {
		b.mu.Unlock()
		return
	}
	b.flushing = true
	b.mu.Unlock()
	b.flush()
}

// flush yields, then writes what is queued, and again until a yield
// leaves the box empty.
func (b *outbox) flush() {
	for {
		runtime.Gosched()
		b.mu.Lock()
		if len(b.queued.msgs) == 0 {
			b.flushing = false
			b.mu.Unlock()
			return
		}
		batch := b.queued
		b.queued, b.spare = b.spare.reset(), replyBatch{}
		b.mu.Unlock()
		b.s.writeBatch(b.bc, batch.msgs, batch.tos)
		b.mu.Lock()
		b.spare = batch
		b.mu.Unlock()
	}
}

// add appends a copy of out, reusing the buffer a slot held before.
func (r *replyBatch) add(out []byte, to netip.AddrPort) {
	i := len(r.msgs)
	if i < cap(r.msgs) {
		r.msgs = r.msgs[:i+1]
	} else {
		r.msgs = append(r.msgs, ipv4.Message{})
	}
	m := &r.msgs[i]
	if m.Buffers == nil {
		m.Buffers = [][]byte{make([]byte, 0, missReplyRoom)}
	}
	m.Buffers[0] = append(m.Buffers[0][:0], out...)
	r.tos = append(r.tos, to)
}

func (r replyBatch) reset() replyBatch {
	return replyBatch{msgs: r.msgs[:0], tos: r.tos[:0]}
}
