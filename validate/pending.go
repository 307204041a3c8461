package validate

import (
	"context"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// pendingProof is the denial records of a referral to an unsigned
// delegation, kept unvalidated until the child's DS status is needed.
type pendingProof struct {
	zone    string // the parent whose servers sent the referral
	rrs     []dns.RR
	expires time.Time
}

// maxPendingRRs bounds the records kept of one referral: an NSEC3 no-DS
// proof is at most three RRsets and their RRSIGs, an NSEC one one.
const maxPendingRRs = 16

// KeepReferralProof remembers, unvalidated, the NSEC/NSEC3 records of a
// referral from zone to child that carries no DS (ns is its authority
// section). The resolver does not validate the referrals to its minimised
// NS questions; without this, the child's DS status would cost a DS
// query whose answer the referral already held. The records are
// validated only when the child's keys are needed, as the referral itself
// would have been, and one that fails to prove the delegation unsigned
// is dropped: the DS is then asked for as before, so a forged referral
// decides nothing.
func (v *Validator) KeepReferralProof(zone, child string, ns []dns.RR) {
	zone, child = canonical(zone), canonical(child)
	if child == zone || !isSubDomain(zone, child) || v.negativeAnchored(child) {
		return
	}
	if _, ok := v.closestAnchor(zone); !ok {
		return
	}
	p := &pendingProof{zone: zone}
	ttl := ^uint32(0)
	for _, rr := range ns {
		switch coveredType(rr) {
		case dns.TypeDS:
			return // a signed delegation: its DS is validated with the child's keys
		case dns.TypeNSEC, dns.TypeNSEC3:
			if len(p.rrs) == maxPendingRRs {
				return
			}
			p.rrs = append(p.rrs, dns.Copy(rr))
			ttl = min(ttl, rr.Header().Ttl)
		}
	}
	if len(p.rrs) == 0 {
		return
	}
	p.expires = v.now().Add(min(time.Duration(ttl)*time.Second, v.cfg.MaxKeyTTL))
	v.pending.Add(child, p)
}

// coveredType is an RR's type, or the type an RRSIG covers.
func coveredType(rr dns.RR) uint16 {
	if sig, ok := rr.(*dns.RRSIG); ok {
		return sig.TypeCovered
	}
	return rr.Header().Rrtype
}

// knownNoDS reports whether the denial records at hand, remembered or
// kept from a referral, prove zone a delegation without DS, with the
// verdict and lifetime to keep for zone: its DS query is then spared.
func (v *Validator) knownNoDS(ctx context.Context, f Fetcher, zone, anchor string, w *work) (verdict, uint32, bool) {
	if ok, ttl := v.storedNoDS(zone, w); ok {
		return insecure(0, "remembered NSEC/NSEC3 prove no DS for %s", zone), ttl, true
	}
	return v.pendingNoDS(ctx, f, zone, anchor, w)
}

// pendingNoDS validates the referral proof kept for child, once, and
// reports whether it proves child a delegation without DS, with the
// verdict and lifetime (seconds, 0 for BogusTTL) to keep for child, as a
// fetched DS denial would give them. anchor is the trust anchor of the
// chain being walked: the proof's zone must lie between it and child, as
// a fetched DS reply's must. The proof is checked on a budget of its own,
// so that a forged one cannot use up the failures allowed to the DS query
// that follows; its work is still counted.
func (v *Validator) pendingNoDS(ctx context.Context, f Fetcher, child, anchor string, w *work) (verdict, uint32, bool) {
	p, ok := v.pending.Get(child)
	if !ok {
		return verdict{}, 0, false
	}
	v.pending.Remove(child)
	if !v.now().Before(p.expires) || !isSubDomain(anchor, p.zone) {
		return verdict{}, 0, false
	}
	msg := &dns.Msg{Ns: p.rrs}
	msg.Response = true
	own := &work{cfg: w.cfg, depth: w.depth, leading: slices.Clone(w.leading)}
	d := v.denial(ctx, f, msg, p.zone, child, dns.TypeDS, own)
	w.verifications += own.verifications
	w.hashes += own.hashes
	switch {
	case !d.noDS || d.sec == cache.Bogus:
		return verdict{}, 0, false
	case d.sec != cache.Secure:
		// Opt-out, or NSEC3 iterations above the limit (EDE 27).
		return d.verdict, 0, true
	}
	return insecure(0, "%s proves %s is a delegation without DS", p.zone, child), d.ttl, true
}
