package cache

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

const (
	wireHeaderLen = 12
	typeOPT       = 41
	// maxTTL is the largest TTL RFC 2181 §8 allows: one with the top bit
	// set reads as zero, which makes the answer uncacheable.
	maxTTL = math.MaxInt32
)

// ttlOffsets walks a packed message and appends to ttls the offset of
// every record's TTL field but the OPT's (whose "TTL" is the extended
// rcode and flags); it returns them and the smallest of those TTLs. It reads only what it must and
// fails on anything that does not parse, so Put never stores a message
// whose patch offsets could point outside it.
func ttlOffsets(msg []byte, ttls []uint16) ([]uint16, uint32, error) {
	if len(msg) < wireHeaderLen || len(msg) > math.MaxUint16 {
		return nil, 0, fmt.Errorf("%w: %d bytes", ErrNotCacheable, len(msg))
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	off := wireHeaderLen
	var err error
	for range qd {
		if off, err = skipName(msg, off); err != nil {
			return nil, 0, err
		}
		off += 4
	}
	ttls = slices.Grow(ttls, rrs)
	minTTL := uint32(maxTTL)
	for range rrs {
		if off, err = skipName(msg, off); err != nil {
			return nil, 0, err
		}
		if off+10 > len(msg) {
			return nil, 0, fmt.Errorf("%w: record header past the end", ErrNotCacheable)
		}
		if binary.BigEndian.Uint16(msg[off:]) != typeOPT {
			ttl := binary.BigEndian.Uint32(msg[off+4:])
			if ttl > maxTTL {
				ttl = 0
			}
			minTTL = min(minTTL, ttl)
			ttls = append(ttls, uint16(off+4))
		}
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
	}
	if off > len(msg) {
		return nil, 0, fmt.Errorf("%w: record data past the end", ErrNotCacheable)
	}
	return ttls, minTTL, nil
}

// skipName returns the offset just past the name at off: after its root
// label or its compression pointer.
func skipName(msg []byte, off int) (int, error) {
	for off < len(msg) {
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xC0 == 0xC0 && off+2 <= len(msg):
			return off + 2, nil
		case l&0xC0 == 0xC0:
			return 0, fmt.Errorf("%w: pointer past the end", ErrNotCacheable)
		case l&0xC0 != 0:
			return 0, fmt.Errorf("%w: label type %#x", ErrNotCacheable, l)
		}
		off += 1 + l
	}
	return 0, fmt.Errorf("%w: name past the end", ErrNotCacheable)
}
