package validate

import (
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
}

// zoneDenials is what one zone has proven: its denial records by owner,
// the SOA of its latest validated negative answer (a synthesised
// reply needs it, RFC 8198 §5.3), and the wildcard RRsets that answered
// proven expansions (a positive answer is synthesised from them).
type zoneDenials struct {
	recs  map[string]*storedRR
	soa   *storedRR
	wilds map[wildKey]*storedSet
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
		if s.typ == dns.TypeSOA {
			z.soa = e
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

// put stores e under owner, making room by dropping expired records and
// then the one that would expire first.
func (z *zoneDenials) put(owner string, e *storedRR, limit int, now time.Time) {
	if _, ok := z.recs[owner]; !ok && len(z.recs) >= limit {
		victim := ""
		for o, r := range z.recs {
			if !now.Before(r.expires) {
				delete(z.recs, o)
				continue
			}
			if victim == "" || r.expires.Before(z.recs[victim].expires) {
				victim = o
			}
		}
		if len(z.recs) >= limit {
			delete(z.recs, victim)
		}
	}
	z.recs[owner] = e
}

// snapshot returns the live records of the closest zone at or above name
// that the store knows, and that zone's name.
func (st *denialStore) snapshot(name string, now time.Time) (string, []*storedRR, *storedRR) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for n := name; ; n = parentName(n) {
		if z, ok := st.zones.Get(n); ok {
			var live []*storedRR
			for _, r := range z.recs {
				if now.Before(r.expires) {
					live = append(live, r)
				}
			}
			soa := z.soa
			if soa != nil && !now.Before(soa.expires) {
				soa = nil
			}
			return n, live, soa
		}
		if n == "." {
			return "", nil, nil
		}
	}
}

// storedProofs builds the proofs of the closest known zone above name from
// the store. For DS the zone is looked for above name: the parent denies it.
func (v *Validator) storedProofs(name string, qtype uint16, w *work) (*proofs, []*storedRR, *storedRR) {
	from := name
	if qtype == dns.TypeDS && name != "." {
		from = parentName(name)
	}
	zone, live, soa := v.denials.snapshot(from, v.now())
	if len(live) == 0 {
		return nil, nil, nil
	}
	p := &proofs{zone: zone}
	var n3 []*dns.NSEC3
	for _, r := range live {
		switch d := r.rr.(type) {
		case *dns.NSEC:
			p.nsec = append(p.nsec, d)
		case *dns.NSEC3:
			n3 = append(n3, d)
		}
	}
	if len(n3) > 0 && len(p.nsec) == 0 {
		n, vd := newNSEC3Proof(n3, w)
		if vd.sec != cache.Secure || n.high {
			return nil, nil, nil // nothing is synthesised from them
		}
		p.n3 = n
	}
	return p, live, soa
}

// storedNoDS reports whether remembered denial records prove that name is
// a delegation without DS (Secure, or an opt-out span), and for how many
// seconds.
func (v *Validator) storedNoDS(name string, w *work) (bool, uint32) {
	p, live, _ := v.storedProofs(name, dns.TypeDS, w)
	if p == nil {
		return false, 0
	}
	var noDS bool
	var vd verdict
	if p.n3 != nil {
		vd, noDS = p.n3.nodata(name, dns.TypeDS)
	} else {
		vd, noDS = p.nsecNODATA(name, dns.TypeDS)
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
