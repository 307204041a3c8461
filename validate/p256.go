package validate

// This file owns ECDSA P-256 (DNSSEC algorithm 13) verification (issue
// #6). crypto/ecdsa multiplies the key by a scalar from scratch on every
// call, rebuilding the key's point from big.Ints first, and that was a
// third of the daemon's CPU on a cold signed zone. A zone key signs many
// answers, so a key that has verified p256TableAfter signatures gets a
// table of its multiples, which turns the variable-base multiplication
// into table additions. Everything here is public data, so none of it
// needs to run in constant time.

import (
	"crypto/elliptic"
	"math/big"
	"sync"
	"sync/atomic"

	"filippo.io/nistec"
)

const (
	// p256Window is the width of the signed digits of u2; each window
	// holds the multiples 1..p256Half of 2^(p256Window·i)·Q. Measured
	// (docs/performance.md): 4 bits verify in about 35 µs and build in
	// 150 µs (49 KB), 5 bits in 31 and 240 µs (80 KB), 6 bits in 28 and
	// 330 µs (135 KB); 5 is the narrowest that halves crypto/ecdsa's 63 µs.
	p256Window  = 5
	p256Half    = 1 << (p256Window - 1)
	p256Windows = (256 + p256Window) / p256Window // 257 bits: the last carry
	// p256TableAfter is how many signatures a key verifies before it gets
	// a table: a build costs what the table saves over about nine
	// verifications (27 µs each), so a key never pays much more than
	// twice the best choice made in hindsight, and the keys of a cold
	// zone's delegations, which verify about six signatures each, never
	// build one.
	p256TableAfter = 8
	// p256MaxTables bounds the tables held at once: 32 of 80 KiB, 2.5 MiB.
	p256MaxTables = 32
)

var p256N = elliptic.P256().Params().N

// p256Key is the state of one algorithm 13 key, shared by the copies of
// its zoneKey.
type p256Key struct {
	q     nistec.P256Point
	uses  atomic.Uint32 // verifications since made or since its table was evicted
	table atomic.Pointer[p256Table]
}

// p256Table holds k·2^(p256Window·i)·Q for k in 1..p256Half at
// [i·p256Half + k-1].
type p256Table struct {
	points [p256Windows * p256Half]nistec.P256Point
	owner  *p256Key
	used   atomic.Bool // since the budget's clock hand last passed
}

// newP256Key decodes an RFC 6605 public key; nil if it is not a point of
// the curve.
func newP256Key(pub []byte) *p256Key {
	if len(pub) != 64 {
		return nil
	}
	var enc [65]byte
	enc[0] = 4
	copy(enc[1:], pub)
	k := new(p256Key)
	if _, err := k.q.SetBytes(enc[:]); err != nil {
		return nil
	}
	return k
}

// verify reports whether sig (r then s, halves of equal length as in RFC
// 6605) signs the SHA-256 digest e with k, as ecdsa.Verify would.
func (k *p256Key) verify(e, sig []byte) bool {
	t := k.table.Load()
	if t != nil {
		// Read first: a store on every verification would bounce the
		// cache line between the cores verifying with the key.
		if !t.used.Load() {
			t.used.Store(true)
		}
	} else if k.uses.Add(1) == p256TableAfter {
		// After this verification: its caller waits for the build once,
		// every other verifier goes on without the table meanwhile.
		defer k.buildTable()
	}
	return k.verifyWith(t, e, sig)
}

// verifyWith is verify with t, or without a table when t is nil. Without
// one it computes u2·Q itself rather than call crypto/ecdsa, which took
// as long (docs/performance.md) and would decode the key every time.
func (k *p256Key) verifyWith(t *p256Table, e, sig []byte) bool {
	u1, u2, r, ok := p256Scalars(e, sig[:len(sig)/2], sig[len(sig)/2:])
	if !ok {
		return false
	}
	var acc nistec.P256Point
	if _, err := acc.ScalarBaseMult(u1[:]); err != nil {
		return false
	}
	if t != nil {
		t.addMult(&acc, &u2)
	} else {
		var p nistec.P256Point
		if _, err := p.ScalarMult(&k.q, u2[:]); err != nil {
			return false
		}
		acc.Add(&acc, &p)
	}
	x, err := acc.BytesX() // fails at infinity
	if err != nil {
		return false
	}
	v := new(big.Int).SetBytes(x)
	if v.Cmp(p256N) >= 0 {
		v.Sub(v, p256N)
	}
	return v.Cmp(r) == 0
}

// p256Scalars checks that r and s are in [1, n-1] and returns u1 = e/s
// and u2 = r/s mod n, with e the leftmost 256 bits of the digest.
func p256Scalars(e, rb, sb []byte) (u1, u2 [32]byte, r *big.Int, ok bool) {
	r, s := new(big.Int).SetBytes(rb), new(big.Int).SetBytes(sb)
	if r.Sign() == 0 || s.Sign() == 0 || r.Cmp(p256N) >= 0 || s.Cmp(p256N) >= 0 {
		return u1, u2, nil, false
	}
	w := s.ModInverse(s, p256N)
	ev := new(big.Int).SetBytes(e[:min(len(e), 32)])
	ev.Mul(ev, w).Mod(ev, p256N).FillBytes(u1[:])
	w.Mul(w, r).Mod(w, p256N).FillBytes(u2[:])
	return u1, u2, r, true
}

// p256Digits recodes scalar into signed digits in [-p256Half, p256Half],
// least significant first: scalar = Σ d[i]·2^(p256Window·i).
func p256Digits(scalar *[32]byte) [p256Windows]int8 {
	var d [p256Windows]int8
	carry := 0
	for i := range d {
		c := carry
		for b := range p256Window {
			bit := i*p256Window + b
			if bit < 256 {
				c += int(scalar[31-bit/8]>>(bit%8)&1) << b
			}
		}
		carry = 0
		if c > p256Half {
			c -= 1 << p256Window
			carry = 1
		}
		d[i] = int8(c)
	}
	return d
}

// addMult adds u·Q to acc.
func (t *p256Table) addMult(acc *nistec.P256Point, u *[32]byte) {
	var neg nistec.P256Point
	for i, d := range p256Digits(u) {
		switch {
		case d > 0:
			acc.Add(acc, &t.points[i*p256Half+int(d)-1])
		case d < 0:
			acc.Add(acc, neg.Negate(&t.points[i*p256Half-int(d)-1]))
		}
	}
}

// buildTable computes k's table and publishes it in the budget.
func (k *p256Key) buildTable() {
	p256Tables.admit(newP256Table(k))
}

// newP256Table doubles and adds its way up the rows; even multiples are
// doublings of smaller ones, three times cheaper than additions.
func newP256Table(k *p256Key) *p256Table {
	t := &p256Table{owner: k}
	base := new(nistec.P256Point).Set(&k.q)
	for i := range p256Windows {
		row := t.points[i*p256Half : (i+1)*p256Half]
		row[0].Set(base)
		for m := 2; m <= p256Half; m++ {
			if m%2 == 0 {
				row[m-1].Double(&row[m/2-1])
			} else {
				row[m-1].Add(&row[m-2], base)
			}
		}
		base.Double(&row[p256Half-1])
	}
	return t
}

// p256Budget holds the published tables, at most p256MaxTables. A new
// table takes the place of one not used since the clock hand last passed
// it (CLOCK replacement); the evicted key counts to p256TableAfter again
// before it rebuilds, so keys that each verify a few signatures cannot
// spend more than one build per p256TableAfter verifications.
type p256Budget struct {
	mu     sync.Mutex
	tables [p256MaxTables]*p256Table
	hand   int
}

var p256Tables p256Budget

func (b *p256Budget) admit(t *p256Table) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Verifiers keep marking tables used while the hand turns, so after
	// two turns the table under it goes anyway.
	for turn := 0; ; turn++ {
		i := b.hand
		b.hand = (i + 1) % p256MaxTables
		old := b.tables[i]
		if old != nil && old.used.Swap(false) && turn < 2*p256MaxTables {
			continue
		}
		if old != nil && old.owner.table.CompareAndSwap(old, nil) {
			old.owner.uses.Store(0)
		}
		b.tables[i] = t
		t.owner.table.Store(t)
		return
	}
}
