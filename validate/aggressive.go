package validate

import (
	"slices"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// denialStore keeps the NSEC and NSEC3 records that validated Secure, per
// signing zone, for RFC 8198 aggressive use: DS lookups always consult it
// (a delegation's no-DS proof often arrives with another reply, as
// Unbound's negative cache has always used it), and Synthesize answers
// other questions from it when Config.AggressiveNSEC is set.
//
// Memory is bounded by DenialZones zones of DenialsPerZone records each;
// a record lives until its TTL, already clamped by validation to the
// RRSIG original TTL and expiration, runs out on the injected clock.
type denialStore struct {
	perZone int
	mu      sync.Mutex
	zones   *lru.Cache[string, *zoneDenials]
}

// storedRR is one remembered RRset member with its RRSIGs.
type storedRR struct {
	rr      dns.RR // *dns.NSEC, *dns.NSEC3 or *dns.SOA
	sigs    []dns.RR
	expires time.Time
	// hash and next are an NSEC3's owner and next hashes in upper case,
	// made once here rather than on every rebuild of the zone's view.
	hash, next string
}

// zoneDenials is what one zone has proven: its denial records by owner,
// the SOA of its latest validated negative answer (a synthesised
// reply needs it, RFC 8198 §5.3), and the wildcard RRsets that answered
// proven expansions (a positive answer is synthesised from them).
type zoneDenials struct {
	recs  map[string]*storedRR
	soa   *storedRR
	wilds map[wildKey]*storedSet
	// view is what lookups use (see storedView). An added record or SOA
	// makes a new view from the last one; after evictions, or when a
	// record in it expires, it is built again from recs.
	view *storedView
}

// storedView is a zone's live remembered records ready for lookups: every
// cache miss asks Synthesize and every unsigned RRset asks for a no-DS
// proof, so the NSEC3 set is prepared and sorted once, not per call from
// up to DenialsPerZone records. It is never modified once built, but a
// zone's views derive one from the other: each is made from the zone's
// current view, which it replaces, or built afresh. So a view made from
// another may append to the slices they share (live, nsec, n3's
// records): only the current view's successor writes past its length,
// and no view reads past its own.
type storedView struct {
	until time.Time // no later than the first expiry among live and soa
	live  []*storedRR
	soa   *storedRR
	nsec  []*dns.NSEC
	n3    *nsec3Set // nil without NSEC3, or when none is usable
}

// wildKey names a remembered wildcard RRset: its owner ("*.example.") and
// type.
type wildKey struct {
	owner string
	typ   uint16
}

// storedSet is a remembered wildcard RRset and its RRSIGs, owned by the
// wildcard itself. It is never modified after add.
type storedSet struct {
	rrs, sigs []dns.RR
	expires   time.Time
}

func newDenialStore(zones, perZone int) *denialStore {
	c, err := lru.New[string, *zoneDenials](zones)
	if err != nil {
		panic("validate: denial store: " + err.Error()) // zones > 0 by setDefaults
	}
	return &denialStore{perZone: perZone, zones: c}
}

// add remembers a Secure NSEC, NSEC3 or SOA RRset s of zone, copied so
// that the caller's message may change.
func (st *denialStore) add(zone string, s *rrset, now time.Time) {
	var sigs []dns.RR
	for _, sig := range s.sigs {
		sigs = append(sigs, dns.Copy(sig))
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	z := st.zone(zone)
	for _, rr := range s.rrs {
		e := &storedRR{rr: dns.Copy(rr), sigs: sigs, expires: now.Add(time.Duration(rr.Header().Ttl) * time.Second)}
		if n, ok := e.rr.(*dns.NSEC3); ok {
			e.hash, e.next = ownerHash(n), strings.ToUpper(n.NextDomain)
		}
		if s.typ == dns.TypeSOA {
			z.soa = e
			if z.view != nil {
				z.view = z.view.withSOA(e)
			}
			continue
		}
		z.put(s.name, e, st.perZone, now)
	}
}

// zone returns the record of zone, made empty if the store has none. The
// caller holds st.mu.
func (st *denialStore) zone(zone string) *zoneDenials {
	z, ok := st.zones.Get(zone)
	if !ok {
		z = &zoneDenials{recs: map[string]*storedRR{}, wilds: map[wildKey]*storedSet{}}
		st.zones.Add(zone, z)
	}
	return z
}

// addWildcard remembers s, an RRset expanded from wildcard whose expansion
// was proven, as the wildcard's own RRset: owner names put back, TTL the
// lowest of the set (already clamped by validation).
func (st *denialStore) addWildcard(zone, wildcard string, s *rrset, now time.Time) {
	set := &storedSet{}
	ttl := ^uint32(0)
	for _, rr := range s.rrs {
		c := dns.Copy(rr)
		c.Header().Name = wildcard
		ttl = min(ttl, c.Header().Ttl)
		set.rrs = append(set.rrs, c)
	}
	for _, sig := range s.sigs {
		c := dns.Copy(sig)
		c.Header().Name = wildcard
		set.sigs = append(set.sigs, c)
	}
	set.expires = now.Add(time.Duration(ttl) * time.Second)
	st.mu.Lock()
	defer st.mu.Unlock()
	z := st.zone(zone)
	k := wildKey{wildcard, s.typ}
	if _, ok := z.wilds[k]; !ok && len(z.wilds) >= st.perZone {
		z.evictWildcard(st.perZone, now)
	}
	z.wilds[k] = set
}

// evictWildcard makes room below limit by dropping the expired wildcard
// RRsets, and then the one that would expire first.
func (z *zoneDenials) evictWildcard(limit int, now time.Time) {
	var victim *wildKey
	for k, set := range z.wilds {
		if !now.Before(set.expires) {
			delete(z.wilds, k)
			continue
		}
		if victim == nil || set.expires.Before(z.wilds[*victim].expires) {
			victim = &k
		}
	}
	if victim != nil && len(z.wilds) >= limit {
		delete(z.wilds, *victim)
	}
}

// wildcard returns the live remembered RRset of zone's wildcard owner
// that answers qtype: of that type, else a CNAME.
func (st *denialStore) wildcard(zone, owner string, qtype uint16, now time.Time) *storedSet {
	st.mu.Lock()
	defer st.mu.Unlock()
	z, ok := st.zones.Get(zone)
	if !ok {
		return nil
	}
	for _, t := range []uint16{qtype, dns.TypeCNAME} {
		if set, ok := z.wilds[wildKey{owner, t}]; ok && now.Before(set.expires) {
			return set
		}
	}
	return nil
}

// put stores e under owner. A full zone first drops its expired records
// and then, by earliest expiry, a quarter of the limit: the view is
// rebuilt after evictions, and evicting one record per put would rebuild
// it on every new name of a zone with more records than the limit.
func (z *zoneDenials) put(owner string, e *storedRR, limit int, now time.Time) {
	old, ok := z.recs[owner]
	if !ok && len(z.recs) >= limit {
		z.evict(limit-max(limit/4, 1), now)
	}
	z.recs[owner] = e
	if z.view != nil {
		z.view = z.view.with(old, e)
	}
}

// evict drops the expired records, then the earliest to expire until at
// most keep are left, and the view with them.
func (z *zoneDenials) evict(keep int, now time.Time) {
	left := make([]string, 0, len(z.recs))
	for o, r := range z.recs {
		if !now.Before(r.expires) {
			delete(z.recs, o)
			continue
		}
		left = append(left, o)
	}
	if len(left) > keep {
		slices.SortFunc(left, func(a, b string) int { return z.recs[a].expires.Compare(z.recs[b].expires) })
		for _, o := range left[:len(left)-keep] {
			delete(z.recs, o)
		}
	}
	z.view = nil
}

// snapshot returns the view of the closest zone at or above name that the
// store knows, and that zone's name.
func (st *denialStore) snapshot(name string, now time.Time) (string, *storedView) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for n := name; ; n = parentName(n) {
		if z, ok := st.zones.Get(n); ok {
			if z.view == nil || !now.Before(z.view.until) {
				z.view = z.build(now)
			}
			return n, z.view
		}
		if n == "." {
			return "", nil
		}
	}
}

// build makes the view of z's records live at now. The caller holds the
// store's lock.
func (z *zoneDenials) build(now time.Time) *storedView {
	n := len(z.recs)
	vw := &storedView{until: now.Add(24 * time.Hour * 365), live: make([]*storedRR, 0, n)}
	n3 := &nsec3Set{}
	for _, r := range z.recs {
		if !now.Before(r.expires) {
			continue
		}
		vw.live = append(vw.live, r)
		vw.until = minTime(vw.until, r.expires)
		switch d := r.rr.(type) {
		case *dns.NSEC:
			vw.nsec = append(vw.nsec, d)
		case *dns.NSEC3:
			if n3.ents == nil {
				n3.ents = make([]nsec3Entry, 0, n+recentMax)
			}
			n3.add(d, r.hash, r.next)
		}
	}
	if z.soa != nil && now.Before(z.soa.expires) {
		vw.soa = z.soa
		vw.until = minTime(vw.until, z.soa.expires)
	}
	if len(vw.nsec) == 0 {
		vw.n3, _ = n3.done()
		if vw.n3 != nil {
			vw.n3.sort()
		}
	}
	return vw
}

// with returns a copy of vw with e in place of old (nil when e is new),
// or nil, for a rebuild, when old is of another type. NSEC3 records are
// used only while the zone has no NSEC, as in build.
func (vw *storedView) with(old, e *storedRR) *storedView {
	var was dns.RR
	if old != nil {
		if old.rr.Header().Rrtype != e.rr.Header().Rrtype {
			return nil
		}
		was = old.rr
	}
	c := *vw
	c.live = replaced(vw.live, old, e)
	c.until = minTime(c.until, e.expires)
	switch d := e.rr.(type) {
	case *dns.NSEC:
		prev, _ := was.(*dns.NSEC)
		c.nsec, c.n3 = replaced(vw.nsec, prev, d), nil
	case *dns.NSEC3:
		if len(c.nsec) == 0 {
			prev, _ := was.(*dns.NSEC3)
			c.n3 = vw.n3.with(prev, d, e.hash, e.next)
		}
	}
	return &c
}

// replaced is s with e in place of old, or with e added when old is nil.
// An addition appends to the array s shares with the view it came from
// (see storedView); a replacement copies.
func replaced[T comparable](s []T, old, e T) []T {
	var none T
	if old == none {
		return append(s, e)
	}
	c := make([]T, 0, len(s))
	for _, x := range s {
		if x != old {
			c = append(c, x)
		}
	}
	return append(c, e)
}

// withSOA returns a copy of vw with soa as the zone's SOA.
func (vw *storedView) withSOA(soa *storedRR) *storedView {
	c := *vw
	c.soa, c.until = soa, minTime(vw.until, soa.expires)
	return &c
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// stored is a zone's remembered denial records ready for one lookup. It
// is returned by value, its NSEC3 proof in it, so that a lookup allocates
// neither: every cache miss of a validating query makes one (issue #6).
// proofs.n3 is left nil for the caller to point at n3 when NSEC3 is
// used: a pointer into the struct itself would move it to the heap.
type stored struct {
	proofs proofs
	n3     nsec3Proof
}

// storedProofs returns the proofs of the closest known zone above name from
// the store, the zone's live records and SOA, and whether there are any.
// For DS the zone is looked for above name: the parent denies it.
func (v *Validator) storedProofs(name string, qtype uint16, w *work) (s stored, live []*storedRR, soa *storedRR, ok bool) {
	from := name
	if qtype == dns.TypeDS && name != "." {
		from = parentName(name)
	}
	zone, vw := v.denials.snapshot(from, v.now())
	if vw == nil || len(vw.live) == 0 || v.zoneBetween(zone, from) {
		return stored{}, nil, nil, false
	}
	s.proofs = proofs{zone: zone, nsec: vw.nsec[:len(vw.nsec):len(vw.nsec)]}
	if len(vw.nsec) == 0 {
		if vw.n3 == nil {
			return stored{}, nil, nil, false // only unusable NSEC3
		}
		s.n3 = vw.n3.proof(w)
		if s.n3.high {
			return stored{}, nil, nil, false // nothing is synthesised from them
		}
	}
	return s, vw.live, vw.soa, true
}

// zoneBetween reports whether the key cache knows a zone (Secure or
// Insecure) at or above name and strictly below zone: zone's denial
// records say nothing about names inside another zone, and looking there
// costs NSEC3 hashes on every name of a new unsigned zone. zone is an
// ancestor of name, as snapshot finds it: parentName reaches it.
func (v *Validator) zoneBetween(zone, name string) bool {
	for n := name; n != zone && n != "."; n = parentName(n) {
		if e := v.freshKeys(n); e != nil && e.sec != cache.Bogus {
			return true
		}
	}
	return false
}

// storedNoDS reports whether remembered denial records prove that name is
// a delegation without DS (Secure, or an opt-out span), and for how many
// seconds.
func (v *Validator) storedNoDS(name string, w *work) (bool, uint32) {
	s, live, _, ok := v.storedProofs(name, dns.TypeDS, w)
	if !ok {
		return false, 0
	}
	var noDS bool
	var vd verdict
	if s.n3.nsec3Set != nil {
		vd, noDS = s.n3.nodata(name, dns.TypeDS)
	} else {
		vd, noDS = s.proofs.nsecNODATA(name, dns.TypeDS)
	}
	if !noDS || vd.sec == cache.Bogus {
		return false, 0
	}
	return true, secondsLeft(live, v.now())
}

// secondsLeft is the lifetime left of the shortest-lived record.
func secondsLeft(recs []*storedRR, now time.Time) uint32 {
	least := time.Duration(-1)
	for _, r := range recs {
		if d := r.expires.Sub(now); least < 0 || d < least {
			least = d
		}
	}
	return uint32(max(least, 0) / time.Second)
}
