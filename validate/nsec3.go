package validate

import (
	"crypto/sha1"
	"encoding/base32"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// nsec3Set is the usable part of a group of validated NSEC3 records, with
// what lookups compare prepared once. It is never modified once built, so
// the remembered records' set is shared by every lookup until they change.
type nsec3Set struct {
	zone string
	ents []nsec3Entry
	// ents[:nSorted] ascend by owner hash, so that lookups search them by
	// halves: a zone's remembered set holds up to DenialsPerZone records.
	// The rest are scanned: a reply's few records, or those added to a
	// remembered set since it was last sorted (with).
	nSorted int
	iter    uint16
	salt    string
	// wireSalt is salt decoded, once per set; saltOK is false when it
	// is not hex, and then every hash is "", as dns.HashName's.
	wireSalt []byte
	saltOK   bool
}

// nsec3Entry is a record with its owner hash and next hash in upper case,
// made once rather than on every comparison.
type nsec3Entry struct {
	rec         *dns.NSEC3
	owner, next string
}

// nsec3Proof evaluates NSEC3 denial (RFC 5155 §8) over a set of validated
// NSEC3 records. Every name hash is charged to the call's budget; when the
// budget runs out capped is set and lookups fail.
type nsec3Proof struct {
	*nsec3Set
	hashes hashMemo
	w      *work
	capped *verdict
	high   bool // iterations above NSEC3MaxIterations: see above
}

// newNSEC3Set keeps the records with SHA-1 hashing, known flags and the
// parameters of the first one (RFC 5155 §8.2). A verdict other than Secure
// means the records cannot be used.
func newNSEC3Set(recs []*dns.NSEC3) (*nsec3Set, verdict) {
	p := &nsec3Set{}
	for _, r := range recs {
		p.add(r, ownerHash(r), strings.ToUpper(r.NextDomain))
	}
	return p.done()
}

// add keeps r, whose owner and next hashes in upper case are given, if it
// is usable with the records kept so far.
func (p *nsec3Set) add(r *dns.NSEC3, owner, next string) {
	if p.usable(r) {
		p.ents = append(p.ents, nsec3Entry{r, owner, next})
	}
}

// usable reports whether r can join the set, taking the parameters of the
// first record when the set is empty.
func (p *nsec3Set) usable(r *dns.NSEC3) bool {
	if r.Hash != dns.SHA1 || r.Flags&^1 != 0 {
		return false
	}
	if len(p.ents) == 0 {
		p.zone, p.iter, p.salt = parentName(canonical(r.Hdr.Name)), r.Iterations, strings.ToUpper(r.Salt)
		ws, err := hex.DecodeString(p.salt)
		p.wireSalt, p.saltOK = ws, err == nil
	}
	return r.Iterations == p.iter && strings.EqualFold(r.Salt, p.salt)
}

func (p *nsec3Set) done() (*nsec3Set, verdict) {
	if len(p.ents) == 0 {
		return nil, insecure(0, "NSEC3 records use only unknown hash algorithms or flags")
	}
	return p, secure()
}

// sort orders the set for search by halves.
func (p *nsec3Set) sort() {
	slices.SortFunc(p.ents, func(a, b nsec3Entry) int { return strings.Compare(a.owner, b.owner) })
	p.nSorted = len(p.ents)
}

// find is the index of the first sorted entry whose owner is not below h,
// and whether it is h.
func (p *nsec3Set) find(h string) (int, bool) {
	return slices.BinarySearchFunc(p.ents[:p.nSorted], h, func(e nsec3Entry, h string) int { return strings.Compare(e.owner, h) })
}

// recentMax bounds the records a remembered set holds unsorted.
const recentMax = 16

// with returns a copy of the set p (nil for none) with r, whose hashes are
// given, in place of old (nil for none), the record it replaces at the
// same owner. A zone's remembered view changes by one record at a time,
// for every new delegation of a signed zone (issue #6): a new record is
// appended to the records p shares with its copy, unsorted, and only for
// a replacement or once recentMax records are unsorted are they all
// copied and sorted. The sharing is safe because a zone's views derive
// one from the other (storedView): only p's successor appends past p's
// records, and no view reads past its own. r stays out when its
// parameters differ from the set's; a set left empty is nil.
func (p *nsec3Set) with(old, r *dns.NSEC3, owner, next string) *nsec3Set {
	if p != nil && old == nil && len(p.ents)-p.nSorted < recentMax && p.at(owner) == nil {
		c := *p
		if c.usable(r) {
			c.ents = append(p.ents, nsec3Entry{r, owner, next})
		}
		return &c
	}
	c := &nsec3Set{}
	if p != nil {
		*c = *p
		c.ents = make([]nsec3Entry, len(p.ents), len(p.ents)+recentMax+1)
		copy(c.ents, p.ents)
		c.sort()
	}
	// old sits at r's owner, so one search finds both places: the
	// deletion leaves i where r goes.
	i, found := c.find(owner)
	if found && old != nil && c.ents[i].rec == old {
		c.ents, found = slices.Delete(c.ents, i, i+1), false
	}
	if c.usable(r) {
		if found {
			c.ents[i] = nsec3Entry{r, owner, next}
		} else {
			c.ents = slices.Insert(c.ents, i, nsec3Entry{r, owner, next})
		}
	}
	c.nSorted = len(c.ents)
	c, _ = c.done()
	return c
}

// newNSEC3Proof is newNSEC3Set's records, ready for lookups charged to w.
func newNSEC3Proof(recs []*dns.NSEC3, w *work) (*nsec3Proof, verdict) {
	set, vd := newNSEC3Set(recs)
	if set == nil {
		return nil, vd
	}
	p := set.proof(w)
	return &p, vd
}

// proof starts lookups over s charged to w.
func (s *nsec3Set) proof(w *work) nsec3Proof {
	return nsec3Proof{nsec3Set: s, w: w, high: int(s.iter) > w.cfg.NSEC3MaxIterations}
}

// above turns the verdict of a proof over records whose iterations exceed
// NSEC3MaxIterations into what RFC 9276 §3.2 allows: Insecure (EDE 27)
// when it proved its point or ran out of hash budget. A proof the records
// themselves refute stays Bogus: checking costs at most MaxNSEC3Hashes,
// and without the check any signed NSEC3 of the zone, replayed in place of
// a delegation's DS, would make the child Insecure.
func (p *nsec3Proof) above(vd verdict) verdict {
	if !p.high || vd.sec == cache.Bogus && !vd.transient {
		return vd
	}
	return insecure(edeUnsupportedNSEC3Itr, "%s: NSEC3 iterations %d above %d", p.zone, p.iter, p.w.cfg.NSEC3MaxIterations)
}

func (p *nsec3Proof) hash(name string) string {
	if h, ok := p.hashes.get(name); ok {
		return h
	}
	if p.capped != nil {
		return ""
	}
	if vd, ok := p.w.spendHashes(int(p.iter)+1, name); !ok {
		// A copy: &vd would put every hash's verdict on the heap.
		capped := vd
		p.capped = &capped
		return ""
	}
	h := p.hashName(name)
	p.hashes.put(name, h)
	return h
}

// hashMemo is a proof's name hashes. A proof hashes a few names (the
// name, its ancestors up to the closest encloser, a wildcard): they are
// kept inline and scanned, and a map takes over past memoScan.
type hashMemo struct {
	n     int
	small [memoScan][2]string
	more  map[string]string
}

const memoScan = 8

func (m *hashMemo) get(name string) (string, bool) {
	for _, e := range m.small[:m.n] {
		if e[0] == name {
			return e[1], true
		}
	}
	h, ok := m.more[name]
	return h, ok
}

func (m *hashMemo) put(name, h string) {
	if m.n < memoScan {
		m.small[m.n] = [2]string{name, h}
		m.n++
		return
	}
	if m.more == nil {
		m.more = map[string]string{}
	}
	m.more[name] = h
}

// hashName is dns.HashName(name, dns.SHA1, p.iter, p.salt) on the stack:
// miekg's allocates six times per name.
func (p *nsec3Set) hashName(name string) string {
	var buf [20 + 255]byte
	if !p.saltOK {
		return ""
	}
	n, err := dns.PackDomainName(strings.ToLower(name), buf[:255], 0, nil, false)
	if err != nil {
		return ""
	}
	sum := sha1.Sum(append(buf[:n], p.wireSalt...))
	for range p.iter {
		sum = sha1.Sum(append(append(buf[:0], sum[:]...), p.wireSalt...))
	}
	var out [32]byte
	base32.HexEncoding.Encode(out[:], sum[:])
	return string(out[:])
}

func ownerHash(r *dns.NSEC3) string {
	owner := r.Hdr.Name
	if i := strings.IndexByte(owner, '.'); i > 0 {
		owner = owner[:i]
	}
	return strings.ToUpper(owner)
}

func (p *nsec3Proof) match(name string) *dns.NSEC3 {
	h := p.hash(name)
	if h == "" {
		return nil
	}
	return p.at(h)
}

// at is the record whose owner hash is h, or nil.
func (p *nsec3Set) at(h string) *dns.NSEC3 {
	if i, ok := p.find(h); ok {
		return p.ents[i].rec
	}
	for _, e := range p.ents[p.nSorted:] {
		if e.owner == h {
			return e.rec
		}
	}
	return nil
}

// cover returns a record whose span covers name's hash. Of the sorted
// records only the span from the nearest owner below the hash (the last
// owner, when none is below: its span wraps) is tried; of a zone's
// consistent chain that is the one span, and should remembered records of
// two versions of the chain overlap, missing a wider stale span only sends
// the question upstream. The unsorted records are all tried.
func (p *nsec3Proof) cover(name string) *dns.NSEC3 {
	h := p.hash(name)
	if h == "" {
		return nil
	}
	if p.nSorted > 0 {
		i, _ := p.find(h)
		if i == 0 {
			i = p.nSorted
		}
		if e := p.ents[i-1]; covers(e, h) {
			return e.rec
		}
	}
	for _, e := range p.ents[p.nSorted:] {
		if covers(e, h) {
			return e.rec
		}
	}
	return nil
}

// covers reports whether the span of e covers hash h, wrapping at the end
// of the chain.
func covers(e nsec3Entry, h string) bool {
	o, next := e.owner, e.next
	return o < next && o < h && h < next || o >= next && h != o && (h > o || h < next)
}

// closestEncloser finds the closest encloser of name (the longest existing
// ancestor, matched), the next closer name one label below it and the
// record covering that (RFC 5155 §8.3). The search gives up at stop, an
// ancestor that reach found no closest encloser can be at or above ("" for
// none).
func (p *nsec3Proof) closestEncloser(name, stop string) (ce string, m *dns.NSEC3, nc string, ncCover *dns.NSEC3) {
	if !isSubDomain(p.zone, name) {
		return "", nil, "", nil
	}
	prev, n := "", name
	for range dns.CountLabel(name) - dns.CountLabel(p.zone) + 1 {
		if n == stop {
			return "", nil, "", nil
		}
		if m = p.match(n); m != nil {
			ce, nc = n, prev
			break
		}
		if p.capped != nil {
			return "", nil, "", nil
		}
		prev, n = n, parentName(n)
	}
	if m != nil && nc != "" {
		ncCover = p.cover(nc)
	}
	return ce, m, nc, ncCover
}

func optOut(r *dns.NSEC3) bool { return r.Flags&1 != 0 }

// reach says, with one hash, how far up the records can prove anything
// about name, from its top: its ancestor one label below the zone. Out
// when the top is a delegation or DNAME, or an opt-out span covers it: the
// names under it belong to another zone, or may. The search from name
// upward (closestEncloser) comes to the same end only after hashing every
// ancestor on the way, and every cold name below a delegation of an
// opt-out zone (a large TLD, say) is asked that way (issue #6). When no
// record matches or covers the top, stop is the top: a closest encloser
// can then only lie below it (one at the apex needs the top covered, one
// at the top its match), and the zone's apex need not be hashed, which
// every name of a delegation not yet seen would otherwise do.
func (p *nsec3Proof) reach(name string) (out bool, stop string) {
	below := dns.CountLabel(name) - dns.CountLabel(p.zone) - 1
	if below < 1 || !isSubDomain(p.zone, name) {
		return false, ""
	}
	top := name
	for range below {
		top = parentName(top)
	}
	if m := p.match(top); m != nil {
		return cutsBelow(m.TypeBitMap), ""
	}
	if c := p.cover(top); c != nil {
		return optOut(c), ""
	}
	if p.capped != nil {
		return false, ""
	}
	return false, top
}

// nxdomain proves name does not exist, nor a wildcard that could answer it.
func (p *nsec3Proof) nxdomain(name string) verdict {
	ce, m, nc, ncCover := p.closestEncloser(name, "")
	switch {
	case p.capped != nil:
		return *p.capped
	case m == nil:
		return bogus(edeNSECMissing, "no NSEC3 in %s proves a closest encloser of %s", p.zone, name)
	case ce == name:
		return bogus(edeBogus, "NXDOMAIN for %s but an NSEC3 matches it", name)
	case cutsBelow(m.TypeBitMap):
		return bogus(edeBogus, "NSEC3 closest encloser %s of %s is a delegation or DNAME", ce, name)
	case ncCover == nil:
		return bogus(edeNSECMissing, "no NSEC3 in %s covers %s", p.zone, nc)
	}
	wc := wildcardAt(ce)
	if p.cover(wc) == nil {
		if p.capped != nil {
			return *p.capped
		}
		return bogus(edeNSECMissing, "no NSEC3 in %s denies wildcard %s", p.zone, wc)
	}
	if optOut(ncCover) {
		return insecure(0, "opt-out NSEC3 in %s covers %s", p.zone, nc)
	}
	return secure()
}

// nodata proves name has no qtype data; delegation reports an unsigned
// delegation point (a DS denial with the NS bit, or opt-out).
func (p *nsec3Proof) nodata(name string, qtype uint16) (verdict, bool) {
	if m := p.match(name); m != nil {
		return bitmapNODATA(name, qtype, m.TypeBitMap, "NSEC3")
	}
	ce, m, nc, ncCover := p.closestEncloser(name, "")
	if p.capped != nil {
		return *p.capped, false
	}
	if m != nil && ncCover != nil {
		wm := p.match(wildcardAt(ce))
		switch {
		case wm == nil && qtype == dns.TypeDS && optOut(ncCover):
			// RFC 5155 §8.6: a DS denial by opt-out is an unsigned delegation.
			return insecure(0, "opt-out NSEC3 in %s covers delegation %s", p.zone, nc), true
		case wm == nil && optOut(ncCover):
			// An unsigned delegation may hide in the opt-out span, and name
			// may be data below it (RFC 5155 §9.2): no AD, as Unbound.
			return insecure(0, "opt-out NSEC3 in %s covers %s", p.zone, nc), false
		case wm != nil:
			vd, _ := bitmapNODATA(wildcardAt(ce), qtype, wm.TypeBitMap, "NSEC3")
			if vd.sec == cache.Secure && optOut(ncCover) {
				vd = insecure(0, "opt-out NSEC3 in %s covers %s, so wildcard %s may not apply", p.zone, nc, wildcardAt(ce))
			}
			return vd, false
		}
	}
	if p.capped != nil {
		return *p.capped, false
	}
	return bogus(edeNSECMissing, "no NSEC3 in %s proves %s/%s empty", p.zone, name, dns.TypeToString[qtype]), false
}

// wildcard proves that the next closer name of owner below the wildcard's
// parent does not exist (RFC 5155 §8.8).
func (p *nsec3Proof) wildcard(owner, wildcard string) verdict {
	parent := canonical(wildcard[2:])
	nc := lastLabels(owner, dns.CountLabel(parent)+1)
	if c := p.cover(nc); c != nil {
		if optOut(c) {
			// An unsigned delegation in the span could own nc: the
			// expansion is unproven but not forged (RFC 5155 §9.2).
			return insecure(0, "opt-out NSEC3 in %s covers %s, answered from %s", p.zone, nc, wildcard)
		}
		return secure()
	}
	if p.capped != nil {
		return *p.capped
	}
	return bogus(edeNSECMissing, "no NSEC3 in %s denies %s, answered from %s", p.zone, nc, wildcard)
}
