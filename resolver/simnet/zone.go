package simnet

import (
	"fmt"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Zone is the authoritative data of one zone, as an authoritative server
// holds it. It is safe for concurrent use: tests may add or remove records
// while servers answer from it.
type Zone struct {
	origin string // lower case, fully qualified; immutable

	mu      sync.RWMutex
	base    []dns.RR // records parsed or added by the test; guarded by mu
	derived []dns.RR // delegations and addresses the Hierarchy inserts; guarded by mu
	idx     *index   // rebuilt on every change; guarded by mu
}

// index is the lookup structure an answer is computed from. It is never
// modified once built, so an answer holds it without the lock.
type index struct {
	origin string
	// sets maps a lower-case owner to its RRsets by type. RRSIGs and NSEC3
	// records are kept apart: they are proofs, not data at a name.
	sets map[string]map[uint16][]dns.RR
	// sigs maps a lower-case owner to its RRSIGs by covered type.
	sigs map[string]map[uint16][]dns.RR
	// nodes holds every owner and every empty non-terminal between an owner
	// and the origin (RFC 4592 §2.2.2: an empty non-terminal exists).
	nodes  map[string]bool
	nsecs  []*dns.NSEC
	nsec3s []nsec3Entry
	signed bool
}

// nsec3Entry is an NSEC3 record with its owner hash split off, upper case
// like NextDomain.
type nsec3Entry struct {
	rr   *dns.NSEC3
	hash string
}

type nsec3Params struct {
	hash       uint8
	iterations uint16
	salt       string
}

// ParseZone reads zone-file text (RFC 1035 §5 master format) whose relative
// owners are relative to origin. Records without a TTL get 3600. Every owner
// must be at or below origin.
func ParseZone(origin, text string) (*Zone, error) {
	origin = strings.ToLower(dns.Fqdn(origin))
	rrs, err := parseRecords(origin, text)
	if err != nil {
		return nil, err
	}
	z := &Zone{origin: origin}
	if err := z.Add(rrs...); err != nil {
		return nil, err
	}
	return z, nil
}

func parseRecords(origin, text string) ([]dns.RR, error) {
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	zp.SetDefaultTTL(3600)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("zone %s: %w", origin, err)
	}
	return rrs, nil
}

// Origin returns the zone's apex name, lower case and fully qualified.
func (z *Zone) Origin() string { return z.origin }

// Signed reports whether the zone holds DNSSEC records (RRSIG, NSEC or
// NSEC3), in which case DO queries get signatures and denial proofs.
func (z *Zone) Signed() bool {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return z.idx.signed
}

// Add inserts records. It fails, adding nothing, if an owner is outside
// the zone.
func (z *Zone) Add(rrs ...dns.RR) error {
	for _, rr := range rrs {
		if !dns.IsSubDomain(z.origin, rr.Header().Name) {
			return fmt.Errorf("zone %s: record %q is outside the zone", z.origin, rr.String())
		}
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	z.base = append(z.base, rrs...)
	z.reindex()
	return nil
}

// Remove deletes the RRset of qtype at name (and, for RRSIG, every
// signature at name). qtype dns.TypeANY removes every record at name.
func (z *Zone) Remove(name string, qtype uint16) {
	name = strings.ToLower(dns.Fqdn(name))
	z.mu.Lock()
	defer z.mu.Unlock()
	keep := z.base[:0:0]
	for _, rr := range z.base {
		h := rr.Header()
		if strings.ToLower(h.Name) == name && (qtype == dns.TypeANY || h.Rrtype == qtype) {
			continue
		}
		keep = append(keep, rr)
	}
	z.base = keep
	z.reindex()
}

// RRset returns copies of the records of qtype at name (for RRSIG, all
// signatures at name), so a test can read keys or build trust anchors.
func (z *Zone) RRset(name string, qtype uint16) []dns.RR {
	name = strings.ToLower(dns.Fqdn(name))
	var out []dns.RR
	for _, rr := range z.Records() {
		if strings.ToLower(rr.Header().Name) == name && rr.Header().Rrtype == qtype {
			out = append(out, rr)
		}
	}
	return out
}

// Records returns copies of every record of the zone, those the Hierarchy
// inserted included.
func (z *Zone) Records() []dns.RR {
	z.mu.RLock()
	defer z.mu.RUnlock()
	out := make([]dns.RR, 0, len(z.base)+len(z.derived))
	for _, rr := range z.base {
		out = append(out, dns.Copy(rr))
	}
	for _, rr := range z.derived {
		out = append(out, dns.Copy(rr))
	}
	return out
}

// baseRecords returns the zone's own records, shared: callers must not
// modify them.
func (z *Zone) baseRecords() []dns.RR {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return z.base[:len(z.base):len(z.base)]
}

// setDerived replaces the records the Hierarchy manages.
func (z *Zone) setDerived(rrs []dns.RR) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.derived = rrs
	z.reindex()
}

// hasBase reports whether the zone's own records, not the derived ones,
// hold an RRset.
func (z *Zone) hasBase(name string, qtype uint16) bool {
	name = strings.ToLower(name)
	z.mu.RLock()
	defer z.mu.RUnlock()
	for _, rr := range z.base {
		if rr.Header().Rrtype == qtype && strings.ToLower(rr.Header().Name) == name {
			return true
		}
	}
	return false
}

func (z *Zone) index() *index {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return z.idx
}

// reindex rebuilds the lookup index; the caller holds mu for writing.
func (z *Zone) reindex() {
	ix := &index{
		origin: z.origin,
		sets:   map[string]map[uint16][]dns.RR{},
		sigs:   map[string]map[uint16][]dns.RR{},
		nodes:  map[string]bool{z.origin: true},
	}
	for _, rrs := range [][]dns.RR{z.base, z.derived} {
		for _, rr := range rrs {
			ix.insert(rr)
		}
	}
	z.idx = ix
}

func (ix *index) insert(rr dns.RR) {
	owner := strings.ToLower(rr.Header().Name)
	switch r := rr.(type) {
	case *dns.RRSIG:
		ix.signed = true
		addTo(ix.sigs, owner, r.TypeCovered, rr)
		return
	case *dns.NSEC3:
		ix.signed = true
		label, _ := dns.NextLabel(owner, 0)
		ix.nsec3s = append(ix.nsec3s, nsec3Entry{rr: r, hash: strings.ToUpper(owner[:max(label-1, 0)])})
		return
	case *dns.NSEC:
		ix.signed = true
		ix.nsecs = append(ix.nsecs, r)
	}
	addTo(ix.sets, owner, rr.Header().Rrtype, rr)
	for n := owner; n != ix.origin && !ix.nodes[n]; n = parent(n) {
		ix.nodes[n] = true
	}
}

func addTo(m map[string]map[uint16][]dns.RR, owner string, t uint16, rr dns.RR) {
	byType := m[owner]
	if byType == nil {
		byType = map[uint16][]dns.RR{}
		m[owner] = byType
	}
	for _, old := range byType[t] {
		if dns.IsDuplicate(old, rr) {
			return
		}
	}
	byType[t] = append(byType[t], rr)
}

// parent strips the first label of a fully qualified, non-root name.
func parent(name string) string {
	if name == "." {
		return "."
	}
	off, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[off:]
}
