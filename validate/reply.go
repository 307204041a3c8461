package validate

import (
	"context"
	"strings"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// maxChain bounds the CNAME links followed inside one reply (Unbound
// iter-scrub-cname is 11).
const maxChain = 12

// outcome is a reply's verdict plus what the chain of trust needs from a DS
// reply: the validated DS records, or that the name is proven to be a
// delegation without DS (and for how long, in seconds).
type outcome struct {
	verdict
	ds   []*dns.DS
	noDS bool
	ttl  uint32
}

// islandAnswer validates the answer of a server for a zone no trust
// anchor covers. Such a server may answer for a child below an island of
// trust that it also serves, with no referral between: the answer's
// RRsets are then validated against their signer's keys, as Unbound does,
// which looks the anchor up by the name asked.
// Anything else from such a server, a denial or a referral, stays
// Indeterminate: the anchor says nothing about the zone that sent it.
func (v *Validator) islandAnswer(ctx context.Context, f Fetcher, answer []*rrset, zone, qname string, qtype uint16, w *work) verdict {
	none := verdict{sec: cache.Indeterminate, reason: "no trust anchor above " + zone}
	if _, ok := v.closestAnchor(qname); !ok || len(answer) == 0 {
		return none
	}
	if sname, answered := chainEnd(answer, qname, qtype); !answered && sname == qname {
		return none
	}
	acc, wilds := v.verifyAnswer(ctx, f, answer, zone, w)
	if len(wilds) > 0 && acc.sec == cache.Secure {
		// The wildcard's proofs would be checked in the unanchored zone.
		return none
	}
	return acc
}

// validateReply is Validate without the bookkeeping; the chain of trust
// calls it for the DS replies it fetches.
func (v *Validator) validateReply(ctx context.Context, f Fetcher, r Reply, w *work) outcome {
	qname, zone := canonical(r.QName), canonical(r.Zone)
	switch {
	case v.negativeAnchored(qname):
		return outcome{verdict: insecure(0, "%s is under a negative trust anchor", qname)}
	case r.Msg == nil:
		return outcome{verdict: bogus(edeBogus, "no reply for %s", qname)}
	}
	answer := groupRRsets(r.Msg.Answer)
	if _, ok := v.closestAnchor(zone); !ok {
		return outcome{verdict: v.islandAnswer(ctx, f, answer, zone, qname, r.QType, w)}
	}
	acc, wilds := v.verifyAnswer(ctx, f, answer, zone, w)
	if acc.sec == cache.Bogus {
		return outcome{verdict: acc}
	}
	sname, answered := chainEnd(answer, qname, r.QType)
	o := outcome{verdict: acc}
	switch {
	case answered:
		if r.QType == dns.TypeDS && acc.sec == cache.Secure {
			o.ds = dsRecords(findRRset(answer, sname, dns.TypeDS))
		}
	case r.Msg.Rcode == dns.RcodeSuccess && referralChild(r.Msg, zone, sname) != "":
		o = v.referral(ctx, f, r.Msg, zone, referralChild(r.Msg, zone, sname), w)
		o.verdict = worse(acc, o.verdict)
	case !isSubDomain(zone, sname) || sname != qname:
		// A chain whose end has no data here: the resolver asks for the
		// target on its own and validates that reply, denial included
		// (Unbound's CNAME_NOANSWER class).
	default:
		d := v.denial(ctx, f, r.Msg, zone, sname, r.QType, w)
		d.verdict = worse(acc, d.verdict)
		o = d
	}
	if len(wilds) > 0 && o.sec == cache.Secure {
		o.verdict = worse(o.verdict, v.wildcardProofs(ctx, f, r.Msg, zone, wilds, w))
		v.rememberWildcards(wilds, o.sec)
	} else if answered || sname != qname {
		v.harvest(ctx, f, r.Msg, zone, w)
	}
	return o
}

// maxHarvest bounds the authority RRsets of a positive reply verified only
// to be remembered.
const maxHarvest = 4

// harvest verifies and remembers the NSEC and NSEC3 RRsets that servers
// add to positive replies (a CNAME's target zone cut, say), so that later
// DS lookups and Synthesize can use them. What fails to verify is ignored:
// the answer does not rest on it.
func (v *Validator) harvest(ctx context.Context, f Fetcher, msg *dns.Msg, zone string, w *work) {
	n := 0
	for _, s := range groupRRsets(msg.Ns) {
		if s.typ != dns.TypeNSEC && s.typ != dns.TypeNSEC3 || len(s.sigs) == 0 {
			continue
		}
		if n++; n > maxHarvest || w.failures > 0 {
			return
		}
		if vd, wild := v.verifyRRset(ctx, f, s, zone, w); vd.sec == cache.Secure && wild == "" {
			v.remember(s, v.now())
		}
	}
}

// wildClaim is an answer RRset synthesised from a wildcard.
type wildClaim struct {
	owner, wildcard string
	set             *rrset
}

// rememberWildcards keeps the wildcard RRsets of proven expansions for
// Synthesize, under the zone that signed them.
func (v *Validator) rememberWildcards(wilds []wildClaim, sec cache.Security) {
	if sec != cache.Secure {
		return
	}
	for _, c := range wilds {
		for _, sig := range c.set.sigs {
			if wildcardOf(c.owner, sig) == c.wildcard {
				v.denials.addWildcard(canonical(sig.SignerName), c.wildcard, c.set, v.now())
				break
			}
		}
	}
}

// verifyAnswer validates every RRset of the answer section but the CNAMEs
// a validated DNAME synthesises (RFC 6672 §5.3.1: those are unsigned).
func (v *Validator) verifyAnswer(ctx context.Context, f Fetcher, answer []*rrset, zone string, w *work) (verdict, []wildClaim) {
	acc := secure()
	var wilds []wildClaim
	for _, s := range answer {
		if synthesized(s, answer) {
			continue
		}
		vd, wc := v.verifyRRset(ctx, f, s, zone, w)
		acc = worse(acc, vd)
		if acc.sec == cache.Bogus {
			return acc, nil
		}
		if wc != "" && s.typ == dns.TypeDNAME {
			// RFC 6672 §3.3 / RFC 4592 §4.4: a DNAME owned by a wildcard
			// does not redirect the names below its expansions.
			return bogus(edeBogus, "DNAME %s expanded from wildcard %s", s.name, wc), nil
		}
		if wc != "" {
			wilds = append(wilds, wildClaim{s.name, wc, s})
		}
	}
	return acc, wilds
}

// synthesized reports whether s is an unsigned CNAME that a DNAME in the
// answer produces.
func synthesized(s *rrset, answer []*rrset) bool {
	if s.typ != dns.TypeCNAME || len(s.sigs) > 0 || len(s.rrs) != 1 {
		return false
	}
	target := canonical(s.rrs[0].(*dns.CNAME).Target)
	for _, d := range answer {
		if d.typ != dns.TypeDNAME || d.name == s.name || !isSubDomain(d.name, s.name) {
			continue
		}
		if dnameSubstitute(s.name, d.name, canonical(d.rrs[0].(*dns.DNAME).Target)) == target {
			return true
		}
	}
	return false
}

// dnameSubstitute replaces the owner suffix of name by target (RFC 6672
// §2.2), either of which may be the root.
func dnameSubstitute(name, owner, target string) string {
	prefix := name // "a.b." below the root
	if owner != "." {
		prefix = strings.TrimSuffix(name, owner) // keeps the dot before owner
	}
	if target == "." {
		return prefix
	}
	return prefix + target
}

// chainEnd follows CNAMEs from qname through the answer and returns the
// last name and whether the answer holds qtype data for it.
func chainEnd(answer []*rrset, qname string, qtype uint16) (string, bool) {
	name := qname
	for range maxChain {
		for _, s := range answer {
			if s.name == name && (s.typ == qtype || qtype == dns.TypeANY) {
				return name, true
			}
		}
		c := findRRset(answer, name, dns.TypeCNAME)
		if c == nil {
			return name, false
		}
		name = canonical(c.rrs[0].(*dns.CNAME).Target)
	}
	return name, false
}

// referralChild returns the child zone a referral from zone delegates to
// for sname, or "".
func referralChild(msg *dns.Msg, zone, sname string) string {
	child := ""
	for _, rr := range msg.Ns {
		h := rr.Header()
		switch h.Rrtype {
		case dns.TypeSOA:
			return ""
		case dns.TypeNS:
			n := canonical(h.Name)
			if n != zone && isSubDomain(zone, n) && isSubDomain(n, sname) {
				child = n
			}
		}
	}
	return child
}

// bareReferral validates a referral without DS or denial records (minimal
// responses, or stripped): the parent is asked for the child's DS as the
// chain of trust would. The child's keys are not fetched yet: the
// resolver has not followed the referral, and the child's answer will
// need them anyway.
func (v *Validator) bareReferral(ctx context.Context, f Fetcher, zone, child string, w *work) outcome {
	if e, ok := v.keys.Get(child); ok && v.now().Before(e.expires) {
		return outcome{verdict: e.verdict}
	}
	anchor, _ := v.closestAnchor(zone)
	if vd, ttl, ok := v.knownNoDS(ctx, f, child, anchor, w); ok {
		v.keys.Add(child, v.insecureEntry(vd, ttl))
		return outcome{verdict: vd}
	}
	o, parent, bad := v.fetchDS(ctx, f, child, anchor, w)
	switch {
	case bad != nil:
		return outcome{verdict: *bad}
	case o.sec == cache.Secure && o.noDS:
		vd := insecure(0, "%s proves %s is a delegation without DS", parent, child)
		v.keys.Add(child, v.insecureEntry(vd, o.ttl))
		return outcome{verdict: vd}
	case o.sec == cache.Secure && len(o.ds) == 0:
		return outcome{verdict: bogus(edeBogus, "%s: no DS for %s and it is not a delegation", parent, child)}
	}
	return outcome{verdict: o.verdict}
}

func hasDenial(section []dns.RR) bool {
	for _, rr := range section {
		if t := rr.Header().Rrtype; t == dns.TypeNSEC || t == dns.TypeNSEC3 {
			return true
		}
	}
	return false
}

func dsRecords(s *rrset) []*dns.DS {
	if s == nil {
		return nil
	}
	var out []*dns.DS
	for _, rr := range s.rrs {
		if d, ok := rr.(*dns.DS); ok {
			out = append(out, d)
		}
	}
	return out
}

// referral validates a delegation: Secure with its DS, Insecure with a
// proof that there is none, Bogus otherwise (RFC 4035 §5.2).
func (v *Validator) referral(ctx context.Context, f Fetcher, msg *dns.Msg, zone, child string, w *work) outcome {
	if ds := findRRset(groupRRsets(msg.Ns), child, dns.TypeDS); ds != nil {
		vd, _ := v.verifyRRset(ctx, f, ds, zone, w)
		o := outcome{verdict: vd}
		if vd.sec == cache.Secure {
			o.ds = dsRecords(ds)
		}
		return o
	}
	if !hasDenial(msg.Ns) {
		return v.bareReferral(ctx, f, zone, child, w)
	}
	d := v.denial(ctx, f, msg, zone, child, dns.TypeDS, w)
	if d.noDS && d.sec != cache.Bogus {
		// Remember the proof as the child's key status, as Unbound's key
		// cache does: the child's own replies would otherwise need a DS
		// query that the parent already answered.
		d.verdict = insecure(0, "%s proves %s is a delegation without DS", zone, child)
		v.keys.Add(child, v.insecureEntry(d.verdict, d.ttl))
		return d
	}
	switch {
	case d.sec == cache.Secure:
		d.verdict = bogus(edeBogus, "referral from %s to %s, which its NSEC says is no delegation", zone, child)
	case d.sec == cache.Bogus && d.ede == edeRRSIGsMissing:
		d.ede = edeNSECMissing
	}
	return d
}
