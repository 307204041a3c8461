package cache

import (
	"net"
	"time"

	"github.com/miekg/dns"
)

// item is an Entry as a shard stores it: its key and fields packed into
// 72 bytes, held by value in the LRU's list element (144 B in all, where
// an Entry beside its Key and the element took 240). Its records are never
// modified after Put copies them in, which is why Get may copy them after
// releasing the shard's lock.
type item struct {
	name     string
	rrs      []dns.RR   // the RRs, then the Sigs, then the Ns
	expires  int64      // unix nanoseconds
	extra    *itemExtra // nil unless the entry has a Reason or a Grace
	qtype    uint16
	qclass   uint16
	nRRs     uint16
	nSigs    uint16
	rcode    uint16
	side     Side
	rank     Rank
	security Security
}

// itemExtra holds the fields few entries use: only Bogus entries have a
// Reason, only a TTL-0 DNAME a Grace.
type itemExtra struct {
	reason string
	grace  time.Duration
}

func (it *item) key() Key {
	return Key{Name: it.name, Type: it.qtype, Class: it.qclass, Side: it.side}
}

// newItem copies e, which expires at the unix nanosecond expires. A
// record whose owner name equals the key's shares the key's string: the
// question's name and the reply's owner name are otherwise two copies of
// the same bytes. The caller has checked that e's records fit a uint16.
func newItem(k Key, e *Entry, expires int64) item {
	it := item{
		name: k.Name, qtype: k.Type, qclass: k.Class, side: k.Side,
		expires: expires, rank: e.Rank, security: e.Security, rcode: uint16(e.Rcode),
		nRRs: uint16(len(e.RRs)), nSigs: uint16(len(e.Sigs)),
	}
	if e.Reason != "" || e.Grace > 0 {
		it.extra = &itemExtra{reason: e.Reason, grace: e.Grace}
	}
	if len(e.RRs) == 1 && len(e.Sigs)+len(e.Ns) == 0 {
		it.rrs = copyOne(e.RRs[0])
	} else {
		it.rrs = make([]dns.RR, 0, len(e.RRs)+len(e.Sigs)+len(e.Ns))
		for _, set := range [3][]dns.RR{e.RRs, e.Sigs, e.Ns} {
			for _, rr := range set {
				it.rrs = append(it.rrs, copyRR(rr))
			}
		}
	}
	for _, rr := range it.rrs {
		if h := rr.Header(); h.Name == k.Name {
			h.Name = k.Name
		}
	}
	return it
}

// entry returns a deep copy of the stored entry with every record's TTL
// set to ttl. The three record slices share one backing array, capped so
// that a caller's append to one cannot overwrite another.
func (it *item) entry(ttl uint32) Entry {
	out := it.view()
	var all []dns.RR
	if len(it.rrs) == 1 {
		all = copyOne(it.rrs[0])
	} else {
		all = make([]dns.RR, len(it.rrs))
		for i, rr := range it.rrs {
			all[i] = copyRR(rr)
		}
	}
	for _, rr := range all {
		rr.Header().Ttl = ttl
	}
	out.RRs, out.Sigs, out.Ns = it.split(all)
	return out
}

// view is the entry with its records as stored, shared with the cache.
func (it *item) view() Entry {
	out := Entry{
		Rcode:    int(it.rcode),
		Rank:     it.rank,
		Security: it.security,
		Expires:  time.Unix(0, it.expires),
	}
	if it.extra != nil {
		out.Reason, out.Grace = it.extra.reason, it.extra.grace
	}
	out.RRs, out.Sigs, out.Ns = it.split(it.rrs)
	return out
}

// split cuts all, laid out as it.rrs is, into the RRs, Sigs and Ns.
func (it *item) split(all []dns.RR) (rrs, sigs, ns []dns.RR) {
	n1, n2 := int(it.nRRs), int(it.nRRs)+int(it.nSigs)
	if n1 > 0 {
		rrs = all[0:n1:n1]
	}
	if n2 > n1 {
		sigs = all[n1:n2:n2]
	}
	if len(all) > n2 {
		ns = all[n2:len(all):len(all)]
	}
	return rrs, sigs, ns
}

// copyRR is dns.Copy, but an address record and its address come in one
// allocation instead of two: most records stored and handed out are
// addresses, copied on every Put and Get (issue #6). An address keeps its
// length (an IPv4 address parsed from text is in its 16-byte form).
func copyRR(rr dns.RR) dns.RR {
	switch v := rr.(type) {
	case *dns.A:
		if v.A != nil && len(v.A) <= net.IPv6len {
			one := new(withIP[dns.A])
			one.rr = dns.A{Hdr: v.Hdr, A: one.keep(v.A)}
			return &one.rr
		}
	case *dns.AAAA:
		if v.AAAA != nil && len(v.AAAA) <= net.IPv6len {
			one := new(withIP[dns.AAAA])
			one.rr = dns.AAAA{Hdr: v.Hdr, AAAA: one.keep(v.AAAA)}
			return &one.rr
		}
	}
	return dns.Copy(rr)
}

// copyOne returns a slice holding a copy of rr alone. For an address
// record the slice, the record and its address come in one allocation:
// most entries are one address, copied on every Put and Get (issue #6).
func copyOne(rr dns.RR) []dns.RR {
	switch v := rr.(type) {
	case *dns.A:
		if v.A != nil && len(v.A) <= net.IPv6len {
			one := new(loneIP[dns.A])
			one.rr = dns.A{Hdr: v.Hdr, A: one.keep(v.A)}
			one.slot[0] = &one.rr
			return one.slot[:]
		}
	case *dns.AAAA:
		if v.AAAA != nil && len(v.AAAA) <= net.IPv6len {
			one := new(loneIP[dns.AAAA])
			one.rr = dns.AAAA{Hdr: v.Hdr, AAAA: one.keep(v.AAAA)}
			one.slot[0] = &one.rr
			return one.slot[:]
		}
	}
	return []dns.RR{copyRR(rr)}
}

// loneIP is an address record, its address and the one-record slice
// holding it, allocated as one.
type loneIP[T dns.A | dns.AAAA] struct {
	withIP[T]
	slot [1]dns.RR
}

// withIP is an address record and the bytes of its address, allocated
// as one.
type withIP[T dns.A | dns.AAAA] struct {
	rr T
	ip [net.IPv6len]byte
}

// keep copies ip into w's own bytes and returns the copy, capped at its
// length.
func (w *withIP[T]) keep(ip net.IP) net.IP {
	n := copy(w.ip[:], ip)
	return w.ip[:n:n]
}
