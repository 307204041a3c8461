package cache

import "github.com/miekg/dns"

// The byte bound is only as good as the estimate of what an entry costs on
// the heap. It is counted once, at Put, from the entry as stored:
//
//	entryOverhead + len(name) + len(Reason) + Σ over RRs, Sigs, Ns of (rrOverhead + dns.Len(rr))
//
// dns.Len is the record's uncompressed wire length: owner name, the 10-byte
// fixed header and the rdata. The overheads cover what the wire form does
// not show, rounded to Go's allocation size classes on amd64. Against
// runtime.MemStats (TestSizeEstimateTracksHeap, 20,000 entries, Go 1.26)
// the estimate came out at 1.00x the heap for a single A record, 1.13x for
// a signed AAAA pair and 0.95x for a NODATA with SOA and NSEC (whose extra
// rdata names each round up to a size class): for these shapes the real
// heap overshoots MaxBytes by about 5% at worst.
const (
	// entryOverhead: the item with its Entry (about 144 B: three slice
	// headers, Reason, Expires), the LRU list element holding Key and
	// pointer (80 B), the map slot and its share of growth slack (about
	// 64 B), the Key's string header (16 B) and the slice backing array
	// header rounding.
	entryOverhead = 320
	// rrOverhead: the interface slot in the slice (16 B), the RR_Header's
	// in-memory form beyond its 10 wire bytes (string header, padding:
	// about 24 B), and the headers and size-class rounding of the
	// separately allocated owner name and rdata (IP slices, strings).
	rrOverhead = 64
)

// entrySize estimates the heap bytes an entry holds while cached.
func entrySize(k Key, e *Entry) int64 {
	n := entryOverhead + len(k.Name) + len(e.Reason)
	for _, set := range [3][]dns.RR{e.RRs, e.Sigs, e.Ns} {
		for _, rr := range set {
			n += rrOverhead + dns.Len(rr)
		}
	}
	return int64(n)
}
