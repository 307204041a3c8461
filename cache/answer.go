package cache

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math/bits"
	"strings"
	"sync/atomic"
	"time"
)

// The answer cache holds whole client answers in wire form, so that a hit
// is a copy and a few patches instead of an unpack, a record-cache walk and
// a pack. It sits in front of the record cache and never replaces it: the
// record cache keeps ranks and DNSSEC status per RRset, the answer cache only
// remembers what was last sent for a question. Entries are keyed by the
// question in wire form (name lowered) and the flags that change the answer
// (EDNS present, DO, CD), see AppendAnswerKey.

// Answer key flags: the parts of a query besides the question that change
// the answer the resolver gives.
const (
	KeyEDNS uint8 = 1 << iota // the query carried an OPT record
	KeyDO                     // DNSSEC OK: signatures are wanted
	KeyCD                     // checking disabled
)

// MaxAnswerKey is the longest answer key: a 255-byte name, type, class and
// the flags byte.
const MaxAnswerKey = 255 + 5

// AppendAnswerKey appends the key of (qname, qtype, qclass, flags) to dst.
// qname is in uncompressed wire form, any letter case; ASCII letters are
// lowered so that 0x20-mixed queries share one entry.
func AppendAnswerKey(dst, qname []byte, qtype, qclass uint16, flags uint8) []byte {
	for _, c := range qname {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return append(dst, byte(qtype>>8), byte(qtype), byte(qclass>>8), byte(qclass), flags)
}

// AnswerConfig sizes an AnswerCache. The zero value of each field means its
// default.
type AnswerConfig struct {
	// Shards is rounded up to a power of two, then halved while a shard
	// would get less than 16 KiB. Default 64.
	Shards int
	// MaxBytes bounds the held answers by the estimate of answerSize.
	// Default 16 MiB.
	MaxBytes int64
	// MaxStale keeps an expired answer this long for serve-stale (RFC 8767
	// §4 suggests 1 to 3 days). Zero keeps no expired answer.
	MaxStale time.Duration
	// AdmitFirst stores a question's answer at its first Put. By default
	// it is stored only at the second within a recent window, see
	// doorkeeper.go: the first is refused with ErrNotAdmitted.
	AdmitFirst bool
}

const defaultAnswerBytes = 16 << 20

// answerOverhead is what an entry costs beyond its key, message and TTL
// offsets: the Answer struct (48 B), the LRU's list element (80 B), its
// map slot and that slot's share of the map's growth slack, and the
// size-class rounding of its one buffer (see
// TestAnswerSizeEstimateTracksHeap).
const answerOverhead = 168

// Answer is one cached answer. Everything but the refresh claim is
// immutable once stored, so a hit copies it without holding a lock.
type Answer struct {
	// data is the key, then the message as first sent (ID and question
	// case are patched per hit), then the offset of every TTL field but
	// the OPT's as two big-endian bytes: one allocation per answer.
	data           string
	born           int64  // unix nanoseconds when stored
	lifeSecs       uint32 // the smallest TTL in the message
	keyLen, msgLen uint16
	// SecurityKnown is false when the answer was given to a client that
	// asked for no AD bit, so its AD bit says nothing of the data.
	securityKnown, secure bool
	refreshing            atomic.Bool
}

func (a *Answer) cost() int64 { return int64(len(a.data)) + answerOverhead }

func (a *Answer) key() string { return a.data[:a.keyLen] }
func (a *Answer) msg() string { return a.data[a.keyLen : int(a.keyLen)+int(a.msgLen)] }

// ttls is the TTL offsets, two bytes each.
func (a *Answer) ttls() string { return a.data[int(a.keyLen)+int(a.msgLen):] }

// life is the answer's lifetime in nanoseconds.
func (a *Answer) life() int64 { return int64(a.lifeSecs) * int64(time.Second) }

// AnswerMeta is what the caller knows of an answer beyond its bytes.
type AnswerMeta struct {
	// SecurityKnown says Secure is meaningful: the answer was made for a
	// client that asked for AD (DO or AD set, CD clear).
	SecurityKnown bool
	// Secure is whether the data validated.
	Secure bool
}

// Len is the answer's size in bytes.
func (a *Answer) Len() int { return int(a.msgLen) }

// Security returns the AnswerMeta the answer was stored with.
func (a *Answer) Security() AnswerMeta {
	return AnswerMeta{SecurityKnown: a.securityKnown, Secure: a.secure}
}

// Stale reports whether the answer is past its lifetime at now.
func (a *Answer) Stale(now time.Time) bool { return now.UnixNano()-a.born >= a.life() }

// InLastTenth reports whether a live answer has less than a tenth of its
// lifetime left, Unbound's prefetch window.
func (a *Answer) InLastTenth(now time.Time) bool {
	return now.UnixNano()-a.born >= a.life()-a.life()/10
}

// ClaimRefresh reports whether the caller is the first to ask to refresh
// this answer; it stays claimed until ReleaseRefresh or replacement.
func (a *Answer) ClaimRefresh() bool { return a.refreshing.CompareAndSwap(false, true) }

// ReleaseRefresh lets the next hit claim the refresh again, after one that
// brought no replacement.
func (a *Answer) ReleaseRefresh() { a.refreshing.Store(false) }

// CopyTo copies the answer into dst with every TTL counted down to now, or
// set to staleTTL once the answer is stale, and returns the bytes written.
// dst must hold Len bytes.
func (a *Answer) CopyTo(dst []byte, now time.Time, staleTTL uint32) int {
	n := copy(dst, a.msg())
	elapsed := now.UnixNano() - a.born
	if elapsed < int64(time.Second) {
		return n
	}
	ttls := a.ttls()
	if elapsed >= a.life() {
		for i := 0; i+1 < len(ttls); i += 2 {
			binary.BigEndian.PutUint32(dst[int(ttls[i])<<8|int(ttls[i+1]):], staleTTL)
		}
		return n
	}
	dec := uint32(elapsed / int64(time.Second))
	for i := 0; i+1 < len(ttls); i += 2 {
		off := int(ttls[i])<<8 | int(ttls[i+1])
		binary.BigEndian.PutUint32(dst[off:], binary.BigEndian.Uint32(dst[off:])-dec)
	}
	return n
}

// AnswerCache is the sharded cache of wire answers. It is safe for
// concurrent use.
type AnswerCache struct {
	seed     maphash.Seed
	mask     uint64
	maxStale int64
	door     *doorkeeper // nil with AdmitFirst
	shards   shardSet[*Answer]
}

// NewAnswerCache returns an empty AnswerCache sized by cfg.
func NewAnswerCache(cfg AnswerConfig) *AnswerCache {
	if cfg.Shards <= 0 {
		cfg.Shards = defaultShards
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = defaultAnswerBytes
	}
	shards := 1 << bits.Len(uint(min(cfg.Shards, maxShards)-1))
	for shards > 1 && cfg.MaxBytes/int64(shards) < minShardBytes {
		shards /= 2
	}
	c := &AnswerCache{
		seed:     maphash.MakeSeed(),
		mask:     uint64(shards - 1),
		maxStale: int64(max(cfg.MaxStale, 0)),
		shards:   newShardSet[*Answer](shards, cfg.MaxBytes),
	}
	if !cfg.AdmitFirst {
		c.door = newDoorkeeper()
	}
	return c
}

// Get returns the answer under key if it is live or, with MaxStale, stale
// for less than MaxStale. The shard's LRU is keyed by a seeded 64-bit hash
// and the key compared in full, so a collision is a miss, never a wrong
// answer.
func (c *AnswerCache) Get(key []byte, now time.Time) (*Answer, bool) {
	h := maphash.Bytes(c.seed, key)
	s := &c.shards[h&c.mask]
	s.mu.Lock()
	a, ok := s.lru.Get(h)
	if ok && now.UnixNano()-a.born >= a.life()+c.maxStale {
		s.lru.Remove(h)
		ok = false
	}
	s.mu.Unlock()
	if !ok || a.key() != string(key) {
		return nil, false
	}
	return a, true
}

// ErrNotCacheable is wrapped by Put's errors.
var ErrNotCacheable = errors.New("answer not cacheable")

// ErrNotAdmitted is Put's refusal of a question not seen before.
var ErrNotAdmitted = errors.New("answer not admitted: its question was not seen recently")

// Put stores msg, a packed answer, under key. Its lifetime is the smallest
// TTL of its records (the OPT's excepted); an answer with no record or a
// zero TTL, a key longer than MaxAnswerKey, or larger than a shard's
// budget, is refused, and so is, unless AdmitFirst, a new key's first
// Put within the doorkeeper's window.
func (c *AnswerCache) Put(key, msg []byte, meta AnswerMeta, now time.Time) error {
	// Most answers have few records: their offsets fit on the stack, and
	// every answer the doorkeeper refuses, most cold names' first, costs
	// no allocation for them (issue #6).
	var buf [16]uint16
	ttls, minTTL, err := ttlOffsets(msg, buf[:0])
	if err != nil {
		return err
	}
	if len(ttls) == 0 || minTTL == 0 || len(key) > MaxAnswerKey {
		return ErrNotCacheable
	}
	h := maphash.Bytes(c.seed, key)
	s := &c.shards[h&c.mask]
	if !c.admits(s, h) {
		return ErrNotAdmitted
	}
	var b strings.Builder
	b.Grow(len(key) + len(msg) + 2*len(ttls))
	b.Write(key)
	b.Write(msg)
	for _, off := range ttls {
		b.WriteByte(byte(off >> 8))
		b.WriteByte(byte(off))
	}
	a := &Answer{
		data:          b.String(),
		born:          now.UnixNano(),
		lifeSecs:      minTTL,
		keyLen:        uint16(len(key)),
		msgLen:        uint16(len(msg)),
		securityKnown: meta.SecurityKnown,
		secure:        meta.Secure,
	}
	cost := a.cost()
	if cost > s.budget {
		return ErrNotCacheable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(h, a, cost)
	return nil
}

// admits reports whether an answer under h may be stored in s: with no
// doorkeeper, when the doorkeeper has seen h, or when s holds h already,
// which a refresh replaces whatever the filter has forgotten since.
func (c *AnswerCache) admits(s *shard[*Answer], h uint64) bool {
	if c.door == nil || c.door.admit(h) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Contains(h)
}

// Len returns the number of answers held, stale ones included.
func (c *AnswerCache) Len() int { return c.shards.len() }

// Bytes returns the estimated memory held; it never exceeds MaxBytes.
func (c *AnswerCache) Bytes() int64 { return c.shards.bytes() }

// Flush removes every answer and forgets every question seen.
func (c *AnswerCache) Flush() {
	c.shards.flush()
	if c.door != nil {
		c.door.clear()
	}
}
