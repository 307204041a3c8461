package validate

import (
	"context"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// proofs are the validated denial records of one reply's authority
// section.
type proofs struct {
	zone string
	nsec []*dns.NSEC
	n3   *nsec3Proof
	ttl  uint32 // lowest TTL of the records used, after clamping
}

// authorityProofs validates the SOA, NSEC and NSEC3 RRsets of msg's
// authority section. A verdict other than Secure is the reply's: an
// unsigned zone, a bad signature, or NSEC3 the validator may not use.
func (v *Validator) authorityProofs(ctx context.Context, f Fetcher, msg *dns.Msg, zone string, w *work) (*proofs, verdict) {
	p := &proofs{zone: zone, ttl: ^uint32(0)}
	n3count := 0
	for _, rr := range msg.Ns {
		if rr.Header().Rrtype == dns.TypeNSEC3 {
			n3count++
		}
	}
	if n3count > w.cfg.MaxNSEC3Records {
		return nil, w.capped("%d NSEC3 records in the reply from %s, more than %d", n3count, zone, w.cfg.MaxNSEC3Records)
	}
	acc := secure()
	var n3 []*dns.NSEC3
	for _, s := range groupRRsets(msg.Ns) {
		if s.typ != dns.TypeSOA && s.typ != dns.TypeNSEC && s.typ != dns.TypeNSEC3 {
			continue
		}
		vd, wild := v.verifyRRset(ctx, f, s, zone, w)
		if acc = worse(acc, vd); acc.sec == cache.Bogus {
			return nil, acc
		}
		if wild != "" && s.typ != dns.TypeSOA {
			// A denial record expanded from a wildcard speaks for the
			// wildcard's owner, not for the name it was copied to.
			continue
		}
		if vd.sec == cache.Secure {
			v.remember(s, v.now())
		}
		for _, rr := range s.rrs {
			p.ttl = min(p.ttl, rr.Header().Ttl)
			switch d := rr.(type) {
			case *dns.NSEC:
				if overreaches(d, s) {
					return nil, bogus(edeBogus, "NSEC %s points to %s, outside its zone", d.Hdr.Name, d.NextDomain)
				}
				p.nsec = append(p.nsec, d)
			case *dns.NSEC3:
				n3 = append(n3, d)
			}
		}
	}
	if acc.sec != cache.Secure {
		return nil, acc
	}
	if len(n3) > 0 && len(p.nsec) == 0 {
		n, vd := newNSEC3Proof(n3, w)
		if vd.sec != cache.Secure {
			return nil, vd
		}
		p.n3 = n
	}
	return p, acc
}

// overreaches reports whether an NSEC's next name lies outside the zone
// that signed it: such a record would deny names in other zones (as
// Unbound checks).
func overreaches(n *dns.NSEC, s *rrset) bool {
	for _, sig := range s.sigs {
		if !isSubDomain(canonical(sig.SignerName), canonical(n.NextDomain)) {
			return true
		}
	}
	return false
}

// denial validates a negative reply for sname: NXDOMAIN or NODATA.
func (v *Validator) denial(ctx context.Context, f Fetcher, msg *dns.Msg, zone, sname string, qtype uint16, w *work) outcome {
	p, vd := v.authorityProofs(ctx, f, msg, zone, w)
	if vd.sec != cache.Secure {
		return outcome{verdict: vd}
	}
	if len(p.nsec) == 0 && p.n3 == nil {
		if k := v.zoneKeys(ctx, f, zone, w); k.sec != cache.Secure {
			return outcome{verdict: k.verdict}
		}
		return outcome{verdict: bogus(edeNSECMissing, "no NSEC or NSEC3 from signed zone %s denies %s/%s",
			zone, sname, dns.TypeToString[qtype])}
	}
	o := outcome{ttl: p.ttl}
	if msg.Rcode == dns.RcodeNameError && p.provesExists(sname) {
		// The server's own proof shows the name exists (an empty
		// non-terminal, say): Unbound turns such an NXDOMAIN into the
		// NODATA it proves, and so does Validate, in place.
		if o.verdict, o.noDS = p.nodata(sname, qtype); p.n3 != nil {
			o.verdict = p.n3.above(o.verdict)
		}
		if o.sec == cache.Secure {
			msg.Rcode = dns.RcodeSuccess
		}
		return o
	}
	switch {
	case msg.Rcode == dns.RcodeNameError && p.n3 != nil:
		o.verdict = p.n3.nxdomain(sname)
	case msg.Rcode == dns.RcodeNameError:
		o.verdict = p.nsecNXDOMAIN(sname)
	case msg.Rcode != dns.RcodeSuccess:
		o.verdict = bogus(edeBogus, "rcode %s for %s cannot be validated", dns.RcodeToString[msg.Rcode], sname)
	case p.n3 != nil:
		o.verdict, o.noDS = p.n3.nodata(sname, qtype)
	default:
		o.verdict, o.noDS = p.nsecNODATA(sname, qtype)
	}
	if p.n3 != nil {
		o.verdict = p.n3.above(o.verdict)
	}
	if o.sec == cache.Bogus && o.ede == edeNSECMissing {
		// Denial records are there but prove something else: Unbound
		// keeps EDE 12 for replies without any.
		o.ede = edeBogus
	}
	return o
}

// provesExists reports whether the proofs show that name exists: a record
// matches it, or (NSEC) one covering it has a next name below it.
func (p *proofs) provesExists(name string) bool {
	if p.n3 != nil {
		return p.n3.match(name) != nil
	}
	if p.nsecMatching(name) != nil {
		return true
	}
	c := p.nsecCovering(name)
	if c == nil {
		return false
	}
	next := canonical(c.NextDomain)
	return next != name && isSubDomain(name, next)
}

func (p *proofs) nodata(name string, qtype uint16) (verdict, bool) {
	if p.n3 != nil {
		return p.n3.nodata(name, qtype)
	}
	return p.nsecNODATA(name, qtype)
}

// wildcardProofs checks that each wildcard-expanded answer RRset was
// entitled to the expansion.
func (v *Validator) wildcardProofs(ctx context.Context, f Fetcher, msg *dns.Msg, zone string, wilds []wildClaim, w *work) verdict {
	p, vd := v.authorityProofs(ctx, f, msg, zone, w)
	if vd.sec != cache.Secure {
		return vd
	}
	for _, c := range wilds {
		var r verdict
		switch {
		case p.n3 != nil:
			r = p.n3.wildcard(c.owner, c.wildcard)
		case len(p.nsec) > 0:
			r = p.nsecWildcard(c.owner, c.wildcard)
		default:
			r = bogus(edeNSECMissing, "no NSEC or NSEC3 proves %s does not exist, answered from %s", c.owner, c.wildcard)
		}
		if p.n3 != nil {
			r = p.n3.above(r)
		}
		if r.sec == cache.Bogus {
			// An unproven expansion is a forged answer, not a missing
			// denial: EDE 6, as Unbound.
			r.ede = edeBogus
		}
		if r.sec != cache.Secure {
			return r
		}
	}
	return secure()
}
