package validate

import (
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// Synthesize answers qname/qtype from remembered Secure NSEC and NSEC3
// records (RFC 8198 aggressive use): an NXDOMAIN when a record covers the
// name and another denies the wildcard at its closest encloser, a NODATA
// when a record matches the name (or, NSEC only, shows it an empty
// non-terminal) without qtype or CNAME in its bitmap, or when the name is
// proven absent and the wildcard that would answer lacks qtype and CNAME,
// and a positive answer expanded from a remembered wildcard RRset of
// qtype or CNAME when the name is proven absent below the wildcard's
// parent (RFC 4035 §5.3.4, RFC 5155 §8.8). NSEC3 needs a next closer span
// that is not opt-out.
//
// A negative reply holds the zone's SOA from the validated negative
// answer it came with and the records used, each with its RRSIGs, in the
// authority section, TTLs lowered to what the records have left and to
// the SOA minimum (RFC 2308 §5); a positive one holds the expansion in
// the answer section and the records proving it in the authority
// section. It reports false when Config.AggressiveNSEC is off, the name is
// under a negative trust anchor, or nothing remembered proves the answer;
// the resolver then asks upstream as usual.
func (v *Validator) Synthesize(qname string, qtype uint16) (*dns.Msg, cache.Security, bool) {
	name := canonical(qname)
	if !v.cfg.AggressiveNSEC || v.negativeAnchored(name) {
		return nil, cache.Unchecked, false
	}
	w := &work{cfg: &v.cfg}
	// Synthesize hashes names too; Stats counts them so that a question's
	// whole NSEC3 cost shows.
	defer func() { v.stats.hashes.Add(uint64(w.hashes)) }()
	st, live, soa, ok := v.storedProofs(name, qtype, w)
	if !ok {
		return nil, cache.Unchecked, false
	}
	var s synthesis
	p := st.proofs
	if st.n3.nsec3Set != nil {
		p.n3 = &st.n3
		s, ok = v.nsec3Synthesize(&p, name, qtype)
	} else {
		s, ok = v.nsecSynthesize(&p, name, qtype)
	}
	if !ok || s.wild == nil && soa == nil {
		return nil, cache.Unchecked, false
	}
	return v.synthesizedReply(qname, qtype, s, live, soa), cache.Secure, true
}

// synthesis is what proves a synthesised answer: the denial records used
// and, for a wildcard expansion, the wildcard's RRset.
type synthesis struct {
	rcode int
	used  []dns.RR
	wild  *storedSet
}

// expands reports whether a wildcard may answer qtype by expansion: DS
// lives at the parent side of a cut and ANY is answered upstream.
func expands(qtype uint16) bool {
	return qtype != dns.TypeDS && qtype != dns.TypeANY
}

// nsecSynthesize picks the NSEC records that prove the answer.
func (v *Validator) nsecSynthesize(p *proofs, name string, qtype uint16) (synthesis, bool) {
	if m := p.nsecMatching(name); m != nil {
		return synthesis{used: []dns.RR{m}}, matchProvesNODATA(name, qtype, m.TypeBitMap, "NSEC")
	}
	c := p.nsecCovering(name)
	if c == nil {
		return synthesis{}, false
	}
	if next := canonical(c.NextDomain); next != name && isSubDomain(name, next) {
		return synthesis{used: []dns.RR{c}}, true // empty non-terminal
	}
	wc := wildcardAt(nsecEncloser(name, c))
	if set := v.denials.wildcard(p.zone, wc, qtype, v.now()); set != nil && expands(qtype) {
		return synthesis{used: []dns.RR{c}, wild: set}, true
	}
	if m := p.nsecMatching(wc); m != nil {
		vd, _ := bitmapNODATA(wc, qtype, m.TypeBitMap, "NSEC")
		return synthesis{used: distinct(c, m)}, vd.sec == cache.Secure
	}
	wcCover := p.nsecCovering(wc)
	if wcCover == nil {
		return synthesis{}, false
	}
	return synthesis{rcode: dns.RcodeNameError, used: distinct(c, wcCover)}, true
}

// matchProvesNODATA reports whether a record matching name proves qtype
// absent. Never for ANY: the match shows the name owns data (the record's
// own RRset at least), which only its servers can list.
func matchProvesNODATA(name string, qtype uint16, bitmap []uint16, kind string) bool {
	if qtype == dns.TypeANY {
		return false
	}
	vd, _ := bitmapNODATA(name, qtype, bitmap, kind)
	return vd.sec == cache.Secure
}

// nsec3Synthesize refuses a name the records cannot reach, with one hash,
// before searching for its proof, and searches no higher than they reach.
func (v *Validator) nsec3Synthesize(p *proofs, name string, qtype uint16) (synthesis, bool) {
	out, stop := p.n3.reach(name)
	if out {
		return synthesis{}, false
	}
	return v.nsec3Prove(p, name, qtype, stop)
}

// nsec3Prove picks the NSEC3 records that prove the answer, giving up on
// a closest encloser at stop ("" for none; see reach).
func (v *Validator) nsec3Prove(p *proofs, name string, qtype uint16, stop string) (synthesis, bool) {
	n := p.n3
	if m := n.match(name); m != nil {
		return synthesis{used: []dns.RR{m}}, matchProvesNODATA(name, qtype, m.TypeBitMap, "NSEC3")
	}
	if s, ok := v.nsec3Expansion(p, name, qtype, stop); ok {
		return s, true
	}
	ce, m, _, ncCover := n.closestEncloser(name, stop)
	if m == nil || ncCover == nil || optOut(ncCover) || cutsBelow(m.TypeBitMap) {
		return synthesis{}, false
	}
	wc := wildcardAt(ce)
	if wm := n.match(wc); wm != nil {
		vd, _ := bitmapNODATA(wc, qtype, wm.TypeBitMap, "NSEC3")
		return synthesis{used: distinct(m, ncCover, wm)}, vd.sec == cache.Secure
	}
	wcCover := n.cover(wc)
	if wcCover == nil {
		return synthesis{}, false
	}
	return synthesis{rcode: dns.RcodeNameError, used: distinct(m, ncCover, wcCover)}, true
}

// nsec3Expansion answers name from the remembered wildcard at its nearest
// ancestor that has one for qtype: the wildcard's RRSIG proved that
// ancestor exists, so a next closer name covered by a span that is not
// opt-out makes it the closest encloser (RFC 5155 §8.8). A nearer
// ancestor that exists leaves the next closer name matched, not covered.
// At stop as the next closer name it would not be covered. p's zone is an
// ancestor of name, as storedProofs finds it: parentName reaches it.
func (v *Validator) nsec3Expansion(p *proofs, name string, qtype uint16, stop string) (synthesis, bool) {
	if !expands(qtype) {
		return synthesis{}, false
	}
	now := v.now()
	for nc, ce := name, parentName(name); nc != p.zone && nc != stop && nc != "."; nc, ce = ce, parentName(ce) {
		set := v.denials.wildcard(p.zone, wildcardAt(ce), qtype, now)
		if set == nil {
			continue
		}
		c := p.n3.cover(nc)
		if c == nil || optOut(c) {
			return synthesis{}, false
		}
		return synthesis{used: []dns.RR{c}, wild: set}, true
	}
	return synthesis{}, false
}

// distinct returns the records given, each once.
func distinct(rrs ...dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if !slices.Contains(out, rr) {
			out = append(out, rr)
		}
	}
	return out
}

// synthesizedReply builds the reply from copies of the records used.
func (v *Validator) synthesizedReply(qname string, qtype uint16, s synthesis, live []*storedRR, soa *storedRR) *dns.Msg {
	byRR := make(map[dns.RR]*storedRR, len(live))
	for _, r := range live {
		byRR[r.rr] = r
	}
	var parts []*storedRR
	if s.wild == nil {
		parts = append(parts, soa)
	}
	for _, rr := range s.used {
		parts = append(parts, byRR[rr])
	}
	now := v.now()
	ttl := secondsLeft(parts, now)
	if s.wild == nil {
		ttl = min(ttl, soa.rr.(*dns.SOA).Minttl)
	} else {
		ttl = min(ttl, uint32(max(s.wild.expires.Sub(now), 0)/time.Second))
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(qname), qtype)
	m.Response = true
	m.Rcode = s.rcode
	if s.wild != nil {
		m.Answer = expansion(s.wild, dns.Fqdn(qname), ttl)
	}
	for _, r := range parts {
		m.Ns = append(m.Ns, withTTL(r.rr, ttl))
		for _, sig := range r.sigs {
			m.Ns = append(m.Ns, withTTL(sig, ttl))
		}
	}
	return m
}

// expansion copies a wildcard RRset and its RRSIGs to owner, as the
// zone's server would have (RFC 4592 §3.4.3): the RRSIG labels field still
// tells that it is an expansion.
func expansion(set *storedSet, owner string, ttl uint32) []dns.RR {
	var out []dns.RR
	for _, rr := range append(append([]dns.RR{}, set.rrs...), set.sigs...) {
		c := withTTL(rr, ttl)
		c.Header().Name = owner
		out = append(out, c)
	}
	return out
}

func withTTL(rr dns.RR, ttl uint32) dns.RR {
	c := dns.Copy(rr)
	c.Header().Ttl = ttl
	return c
}

// rememberable reports whether an RRset may be kept for aggressive use.
func rememberable(s *rrset) bool {
	return s.typ == dns.TypeNSEC || s.typ == dns.TypeNSEC3 || s.typ == dns.TypeSOA
}

// remember keeps a Secure denial RRset (or SOA) under its signer's zone.
func (v *Validator) remember(s *rrset, now time.Time) {
	if !rememberable(s) || len(s.sigs) == 0 {
		return
	}
	v.denials.add(canonical(s.sigs[0].SignerName), s, now)
}
