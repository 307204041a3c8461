package transport

import (
	"crypto/rand"
	"sync"
)

// entropy hands out crypto/rand bytes from a buffer, so that the two bytes
// of a query ID and the few bytes of 0x20 case bits do not each cost a
// getrandom call. Every bit is a fresh CSPRNG bit: an off-path attacker
// must learn nothing about the next ID, port or case from earlier ones.
type entropy struct {
	mu  sync.Mutex
	buf [512]byte
	off int // next unread byte of buf; guarded by mu
}

func newEntropy() *entropy {
	return &entropy{off: len(entropy{}.buf)}
}

// read fills p with random bytes.
func (e *entropy) read(p []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(p) > 0 {
		if e.off == len(e.buf) {
			// crypto/rand.Read never returns an error since Go 1.24.
			_, _ = rand.Read(e.buf[:])
			e.off = 0
		}
		n := copy(p, e.buf[e.off:])
		e.off += n
		p = p[n:]
	}
}

// uint16 returns a uniformly random 16-bit value.
func (e *entropy) uint16() uint16 {
	var b [2]byte
	e.read(b[:])
	return uint16(b[0])<<8 | uint16(b[1])
}

// below returns a uniformly random value in [0, n), n in [1, 65536], by
// rejection so that no value is favoured.
func (e *entropy) below(n int) int {
	mask := 1
	for mask < n {
		mask <<= 1
	}
	mask--
	for {
		if v := int(e.uint16()) & mask; v < n {
			return v
		}
	}
}
