package cache

import "github.com/miekg/dns"

// The byte bound is only as good as the estimate of what an entry costs on
// the heap. It is counted once, at Put, from the entry as stored:
//
//	entryOverhead + len(name) + Σ over RRs, Sigs, Ns of (rrOverhead + dns.Len(rr))
//
// plus extraOverhead + len(Reason) for the rare entry with a Reason or a
// Grace.
// dns.Len is the record's uncompressed wire length: owner name, the 10-byte
// fixed header and the rdata. The overheads cover what the wire form does
// not show, rounded to Go's allocation size classes on amd64. Against
// runtime.MemStats (TestSizeEstimateTracksHeap, 20,000 entries, Go 1.26)
// the estimate came out at 1.01x the heap for a single A record, 1.23x for
// a signed AAAA pair and 0.94x for a NODATA with SOA and NSEC (whose extra
// rdata names each round up to a size class): for these shapes the real
// heap overshoots MaxBytes by about 6% at worst.
const (
	// entryOverhead: the LRU's list element (144 B: its links, the hash
	// key, the 72-byte item held by value with its key, record slice
	// header, expiry and packed fields, see item.go, and the element's
	// unused expiry fields), its map slot and that slot's share of the
	// map's growth slack (about 30 B).
	entryOverhead = 176
	// rrOverhead: the interface slot in the slice (16 B), the RR_Header's
	// in-memory form beyond its 10 wire bytes (string header, padding:
	// about 24 B), and the headers and size-class rounding of the
	// separately allocated owner name and rdata (IP slices, strings).
	rrOverhead = 64
	// extraOverhead: the itemExtra of an entry with a Reason or a Grace.
	extraOverhead = 32
)

// cost is the estimate for the item, computed again when asked rather
// than kept: the item is immutable, and the field would push it a size
// class up.
func (it item) cost() int64 {
	n := entryOverhead + len(it.name)
	if it.extra != nil {
		n += extraOverhead + len(it.extra.reason)
	}
	for _, rr := range it.rrs {
		n += rrOverhead + dns.Len(rr)
	}
	return int64(n)
}
