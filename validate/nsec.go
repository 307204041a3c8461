package validate

import (
	"github.com/miekg/dns"
)

// nsecCovers reports whether n proves that name does not exist: name sorts
// strictly between n's owner and next name (RFC 4035 §5.4), or after the
// owner of the zone's last NSEC. An NSEC at a delegation point (NS without
// SOA) or at a DNAME cannot deny names below its owner (RFC 6840 §4.1).
func nsecCovers(n *dns.NSEC, name string) bool {
	owner, next := canonical(n.Hdr.Name), canonical(n.NextDomain)
	if owner != name && isSubDomain(owner, name) && cutsBelow(n.TypeBitMap) {
		return false
	}
	if canonicalCompare(owner, name) >= 0 {
		return false
	}
	if canonicalCompare(name, next) < 0 {
		return true
	}
	return canonicalCompare(next, owner) <= 0 && isSubDomain(next, name)
}

// cutsBelow reports whether a bitmap marks a zone cut or a DNAME, below
// which the zone's own denial records say nothing.
func cutsBelow(bitmap []uint16) bool {
	return hasType(bitmap, dns.TypeDNAME) || hasType(bitmap, dns.TypeNS) && !hasType(bitmap, dns.TypeSOA)
}

func (p *proofs) nsecMatching(name string) *dns.NSEC {
	for _, n := range p.nsec {
		if canonical(n.Hdr.Name) == name {
			return n
		}
	}
	return nil
}

func (p *proofs) nsecCovering(name string) *dns.NSEC {
	for _, n := range p.nsec {
		if nsecCovers(n, name) {
			return n
		}
	}
	return nil
}

// nsecEncloser is the closest encloser a covering NSEC implies for name:
// the longer of name's common ancestors with the owner and the next name.
func nsecEncloser(name string, n *dns.NSEC) string {
	a, b := commonAncestor(name, canonical(n.Hdr.Name)), commonAncestor(name, canonical(n.NextDomain))
	if dns.CountLabel(b) > dns.CountLabel(a) {
		return b
	}
	return a
}

// nsecNXDOMAIN proves name and the wildcard at its closest encloser do not
// exist.
func (p *proofs) nsecNXDOMAIN(name string) verdict {
	c := p.nsecCovering(name)
	if c == nil {
		return bogus(edeNSECMissing, "no NSEC in %s denies %s", p.zone, name)
	}
	wc := wildcardAt(nsecEncloser(name, c))
	if p.nsecMatching(wc) != nil {
		return bogus(edeBogus, "NXDOMAIN for %s but wildcard %s exists", name, wc)
	}
	if p.nsecCovering(wc) == nil {
		return bogus(edeNSECMissing, "no NSEC in %s denies wildcard %s", p.zone, wc)
	}
	return secure()
}

// nsecNODATA proves name has no qtype data; delegation reports that name is
// an unsigned delegation point (a DS denial with the NS bit).
func (p *proofs) nsecNODATA(name string, qtype uint16) (verdict, bool) {
	if m := p.nsecMatching(name); m != nil {
		return bitmapNODATA(name, qtype, m.TypeBitMap, "NSEC")
	}
	c := p.nsecCovering(name)
	if c == nil {
		return bogus(edeNSECMissing, "no NSEC in %s proves %s/%s empty", p.zone, name, dns.TypeToString[qtype]), false
	}
	// An empty non-terminal: the next name is below name.
	if next := canonical(c.NextDomain); next != name && isSubDomain(name, next) {
		return secure(), false
	}
	wc := wildcardAt(nsecEncloser(name, c))
	if m := p.nsecMatching(wc); m != nil {
		vd, _ := bitmapNODATA(wc, qtype, m.TypeBitMap, "NSEC")
		return vd, false
	}
	return bogus(edeNSECMissing, "no NSEC in %s proves %s/%s empty", p.zone, name, dns.TypeToString[qtype]), false
}

// bitmapNODATA checks the bitmap of the denial record matching name.
func bitmapNODATA(name string, qtype uint16, bitmap []uint16, kind string) (verdict, bool) {
	if hasType(bitmap, qtype) || hasType(bitmap, dns.TypeCNAME) {
		return bogus(edeBogus, "%s at %s lists %s", kind, name, dns.TypeToString[qtype]), false
	}
	ns, soa := hasType(bitmap, dns.TypeNS), hasType(bitmap, dns.TypeSOA)
	if qtype == dns.TypeDS {
		if soa && name != "." {
			return bogus(edeBogus, "%s denying DS %s comes from the child zone", kind, name), false
		}
		return secure(), ns
	}
	if ns && !soa {
		return bogus(edeBogus, "%s at delegation %s cannot deny %s", kind, name, dns.TypeToString[qtype]), false
	}
	return secure(), false
}

// nsecWildcard proves that owner, answered from wildcard, does not exist
// and that no name between it and the wildcard's parent does.
func (p *proofs) nsecWildcard(owner, wildcard string) verdict {
	c := p.nsecCovering(owner)
	if c == nil {
		return bogus(edeNSECMissing, "no NSEC in %s denies %s, answered from %s", p.zone, owner, wildcard)
	}
	if ce := nsecEncloser(owner, c); ce != canonical(wildcard[2:]) {
		return bogus(edeBogus, "wildcard %s cannot answer %s: closest encloser is %s", wildcard, owner, ce)
	}
	return secure()
}
