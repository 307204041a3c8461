package validate

import (
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// Synthesize answers qname/qtype from remembered Secure NSEC and NSEC3
// records (RFC 8198 aggressive use): an NXDOMAIN when a record covers the
// name and another denies the wildcard at its closest encloser, a NODATA
// when a record matches the name (or, NSEC only, shows it an empty
// non-terminal) without qtype or CNAME in its bitmap. NSEC3 NXDOMAIN needs
// the full closest encloser proof with a next closer span that is not
// opt-out; a wildcard that exists is never synthesised from.
//
// The reply holds the zone's SOA from the validated negative answer it
// came with and the records used, each with its RRSIGs, in the authority
// section, TTLs lowered to what the records have left and to the SOA
// minimum (RFC 2308 §5). It reports false when Config.AggressiveNSEC is
// off, the name is under a negative trust anchor, or nothing remembered
// proves the answer; the resolver then asks upstream as usual.
func (v *Validator) Synthesize(qname string, qtype uint16) (*dns.Msg, cache.Security, bool) {
	name := canonical(qname)
	if !v.cfg.AggressiveNSEC || v.negativeAnchored(name) {
		return nil, cache.Unchecked, false
	}
	w := &work{cfg: &v.cfg}
	p, live, soa := v.storedProofs(name, qtype, w)
	if p == nil || soa == nil {
		return nil, cache.Unchecked, false
	}
	var rcode int
	var used []dns.RR
	var ok bool
	if p.n3 != nil {
		rcode, used, ok = p.n3.synthesize(name, qtype)
	} else {
		rcode, used, ok = p.nsecSynthesize(name, qtype)
	}
	if !ok {
		return nil, cache.Unchecked, false
	}
	return v.synthesizedReply(qname, qtype, rcode, used, live, soa), cache.Secure, true
}

// nsecSynthesize picks the NSEC records that prove the answer.
func (p *proofs) nsecSynthesize(name string, qtype uint16) (int, []dns.RR, bool) {
	if m := p.nsecMatching(name); m != nil {
		return dns.RcodeSuccess, []dns.RR{m}, matchProvesNODATA(name, qtype, m.TypeBitMap, "NSEC")
	}
	c := p.nsecCovering(name)
	if c == nil {
		return 0, nil, false
	}
	if next := canonical(c.NextDomain); next != name && dns.IsSubDomain(name, next) {
		return dns.RcodeSuccess, []dns.RR{c}, true // empty non-terminal
	}
	wc := wildcardAt(nsecEncloser(name, c))
	wcCover := p.nsecCovering(wc)
	if p.nsecMatching(wc) != nil || wcCover == nil {
		return 0, nil, false
	}
	if wcCover == c {
		return dns.RcodeNameError, []dns.RR{c}, true
	}
	return dns.RcodeNameError, []dns.RR{c, wcCover}, true
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

// synthesize picks the NSEC3 records that prove the answer.
func (p *nsec3Proof) synthesize(name string, qtype uint16) (int, []dns.RR, bool) {
	if m := p.match(name); m != nil {
		return dns.RcodeSuccess, []dns.RR{m}, matchProvesNODATA(name, qtype, m.TypeBitMap, "NSEC3")
	}
	ce, m, _, ncCover := p.closestEncloser(name)
	if m == nil || ncCover == nil || optOut(ncCover) || cutsBelow(m.TypeBitMap) {
		return 0, nil, false
	}
	wc := wildcardAt(ce)
	wcCover := p.cover(wc)
	if wcCover == nil || p.match(wc) != nil {
		return 0, nil, false
	}
	used := []dns.RR{m, ncCover}
	if wcCover != ncCover && wcCover != m {
		used = append(used, wcCover)
	}
	return dns.RcodeNameError, used, true
}

// synthesizedReply builds the reply from copies of the records used.
func (v *Validator) synthesizedReply(qname string, qtype uint16, rcode int, used []dns.RR, live []*storedRR, soa *storedRR) *dns.Msg {
	byRR := make(map[dns.RR]*storedRR, len(live))
	for _, r := range live {
		byRR[r.rr] = r
	}
	parts := []*storedRR{soa}
	for _, rr := range used {
		parts = append(parts, byRR[rr])
	}
	ttl := min(secondsLeft(parts, v.now()), soa.rr.(*dns.SOA).Minttl)
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(qname), qtype)
	m.Response = true
	m.Rcode = rcode
	for _, r := range parts {
		m.Ns = append(m.Ns, withTTL(r.rr, ttl))
		for _, sig := range r.sigs {
			m.Ns = append(m.Ns, withTTL(sig, ttl))
		}
	}
	return m
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
