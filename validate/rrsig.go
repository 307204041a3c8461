package validate

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// rrset is one RRset of a section with the RRSIGs that cover it.
type rrset struct {
	name  string // lower case
	typ   uint16
	class uint16
	rrs   []dns.RR
	sigs  []*dns.RRSIG
}

func (s *rrset) String() string { return s.name + "/" + dns.TypeToString[s.typ] }

// groupRRsets splits a section into RRsets in order of first appearance and
// attaches each RRSIG to the RRset it covers; RRSIGs covering nothing in
// the section are dropped.
func groupRRsets(section []dns.RR) []*rrset {
	var g rrsetGroups
	for _, rr := range section {
		h := rr.Header()
		if h.Rrtype == dns.TypeRRSIG || h.Rrtype == dns.TypeOPT {
			continue
		}
		k := rrsetKey{canonical(h.Name), h.Rrtype, h.Class}
		s := g.find(k)
		if s == nil {
			s = g.add(k)
		}
		s.rrs = append(s.rrs, rr)
	}
	for _, rr := range section {
		if sig, ok := rr.(*dns.RRSIG); ok {
			if s := g.find(rrsetKey{canonical(sig.Hdr.Name), sig.TypeCovered, sig.Hdr.Class}); s != nil {
				s.sigs = append(s.sigs, sig)
			}
		}
	}
	return g.sets
}

type rrsetKey struct {
	name  string
	typ   uint16
	class uint16
}

// groupScan is the number of RRsets a section's grouping finds by
// scanning, sparing most replies a map; past it a map keeps the grouping
// of a large section linear.
const groupScan = 8

type rrsetGroups struct {
	sets []*rrset
	idx  map[rrsetKey]*rrset
}

func (g *rrsetGroups) find(k rrsetKey) *rrset {
	if g.idx != nil {
		return g.idx[k]
	}
	for _, s := range g.sets {
		if s.name == k.name && s.typ == k.typ && s.class == k.class {
			return s
		}
	}
	return nil
}

func (g *rrsetGroups) add(k rrsetKey) *rrset {
	s := &rrset{name: k.name, typ: k.typ, class: k.class}
	g.sets = append(g.sets, s)
	if g.idx == nil && len(g.sets) > groupScan {
		g.idx = make(map[rrsetKey]*rrset, 2*len(g.sets))
		for _, t := range g.sets {
			g.idx[rrsetKey{t.name, t.typ, t.class}] = t
		}
	} else if g.idx != nil {
		g.idx[k] = s
	}
	return s
}

func findRRset(sets []*rrset, name string, typ uint16) *rrset {
	for _, s := range sets {
		if s.typ == typ && s.name == name {
			return s
		}
	}
	return nil
}

// verifyRRset validates s against the keys of its signer. An unsigned
// RRset takes the security of zone, the zone whose servers sent it. On
// success it returns the wildcard the RRset was expanded from, if any.
func (v *Validator) verifyRRset(ctx context.Context, f Fetcher, s *rrset, zone string, w *work) (verdict, string) {
	sigs := v.usableSigs(s)
	if len(sigs) == 0 {
		if e := v.freshKeys(zone); e != nil && provenUnsigned(e) {
			// Known already: the other names of a new unsigned zone need
			// not look for a cut again.
			return e.verdict, ""
		}
		if cut := v.insecureCutAbove(s.name, zone, w); cut != "" {
			return insecure(0, "%s is below %s, a delegation without DS", s, cut), ""
		}
		k := v.zoneKeys(ctx, f, zone, w)
		if k.sec != cache.Secure {
			return k.verdict, ""
		}
		return bogus(edeRRSIGsMissing, "no RRSIG for %s in signed zone %s", s, zone), ""
	}
	// One signer per RRset, the first RRSIG's, as Unbound does: a second
	// signer would only double the work an attacker can ask for.
	signer := canonical(sigs[0].SignerName)
	k := v.zoneKeys(ctx, f, signer, w)
	if k.sec != cache.Secure {
		return k.verdict, ""
	}
	var bySigner []*dns.RRSIG
	for _, sig := range sigs {
		if canonical(sig.SignerName) == signer {
			bySigner = append(bySigner, sig)
		}
	}
	vd, wild := v.checkSigs(s, bySigner, k.keys, signer, w)
	if vd.sec == cache.Secure && len(k.needAlgs) > 1 {
		vd = v.checkAllAlgs(s, bySigner, k.keys, signer, k.needAlgs, w)
	}
	return vd, wild
}

// insecureCutAbove returns the highest name between zone (exclusive) and
// owner (inclusive) that remembered denial records prove to be a
// delegation without DS, or "". Servers for both sides of a cut answer
// for the child with the parent as the zone the resolver knows, and
// Unbound finds the cut the same way, from its negative cache.
func (v *Validator) insecureCutAbove(owner, zone string, w *work) string {
	if owner == zone || !isSubDomain(zone, owner) {
		return ""
	}
	below := dns.CountLabel(owner) - dns.CountLabel(zone)
	for i := 1; i <= below && i <= maxChainDepth; i++ {
		n := lastLabels(owner, dns.CountLabel(zone)+i)
		if e := v.freshKeys(n); e != nil && provenUnsigned(e) {
			return n
		}
		if ok, _ := v.storedNoDS(n, w); ok {
			return n
		}
	}
	return ""
}

// freshKeys returns the key cache's live entry for zone, or nil.
func (v *Validator) freshKeys(zone string) *keyEntry {
	if e, ok := v.keys.Get(zone); ok && v.now().Before(e.expires) {
		return e
	}
	return nil
}

// provenUnsigned reports whether e is a zone proven to be a delegation
// without DS (or under a negative trust anchor): Insecure with no EDE, as
// opposed to a zone signed with algorithms the validator lacks.
func provenUnsigned(e *keyEntry) bool {
	return e.sec == cache.Insecure && e.ede == 0
}

// usableSigs keeps the RRSIGs that may cover s per RFC 4035 §5.3.1: signer
// at or above the owner (strictly above for DS, which the parent signs),
// labels not above the owner's, at most MaxSigsPerRRset of them.
// When every RRSIG up to the cap is usable, as usual, the result shares
// s.sigs (capacity clipped) rather than copying it.
func (v *Validator) usableSigs(s *rrset) []*dns.RRSIG {
	var out []*dns.RRSIG
	n, shared := 0, true // while shared, the result is s.sigs[:n]
	labels := dns.CountLabel(s.name)
	class := s.rrs[0].Header().Class
	for _, sig := range s.sigs {
		if !sigUsable(s, sig, class, labels) {
			if shared {
				out, shared = append(make([]*dns.RRSIG, 0, len(s.sigs)), s.sigs[:n]...), false
			}
			continue
		}
		if !shared {
			out = append(out, sig)
		}
		if n++; n == v.cfg.MaxSigsPerRRset {
			break
		}
	}
	if shared {
		return s.sigs[:n:n]
	}
	return out
}

func sigUsable(s *rrset, sig *dns.RRSIG, class uint16, labels int) bool {
	signer := canonical(sig.SignerName)
	if sig.Hdr.Class != class || int(sig.Labels) > labels || !isSubDomain(signer, s.name) {
		return false
	}
	return s.typ != dns.TypeDS || signer != s.name
}

// checkSigs looks for one RRSIG in sigs that a key in keys verifies over s.
// Dates are checked before any crypto, and every verification is charged
// to w.
func (v *Validator) checkSigs(s *rrset, sigs []*dns.RRSIG, keys []zoneKey, zone string, w *work) (verdict, string) {
	now := v.sigNow()
	// The reason is formatted only for a failure: most checks succeed.
	var failed verdict
	tried := false
	for _, sig := range sigs {
		var buf [4]zoneKey
		cands := keysFor(buf[:0], keys, sig.KeyTag, sig.Algorithm, v.cfg.MaxKeysPerTag)
		if len(cands) == 0 {
			continue
		}
		if d, ok := dateCheck(sig, now); !ok && !v.cfg.IgnoreSignatureDates {
			failed, tried = d, true
			failed.reason = fmt.Sprintf("RRSIG for %s by %s key %d: %s", s, zone, sig.KeyTag, d.reason)
			continue
		}
		for _, k := range cands {
			if c, ok := w.spendVerify(s); !ok {
				return c, ""
			}
			if v.verifySig(sig, k, s.rrs) == nil {
				clampTTLs(s, sig, now)
				return secure(), wildcardOf(s.name, sig)
			}
			failed, tried = bogus(edeBogus, "RRSIG for %s by %s key %d does not verify", s, zone, sig.KeyTag), true
			if c, ok := w.failedVerify(s); !ok {
				return c, ""
			}
		}
	}
	if !tried {
		failed = bogus(edeRRSIGsMissing, "no RRSIG for %s by a key of %s", s, zone)
	}
	return failed, ""
}

// keysFor appends to out up to limit keys with the tag and algorithm;
// callers pass room for the usual few on their stack.
func keysFor(out, keys []zoneKey, tag uint16, alg uint8, limit int) []zoneKey {
	for _, k := range keys {
		if k.tag == tag && k.key.Algorithm == alg {
			out = append(out, k)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

// wildcardOf returns the wildcard owner an RRset was synthesised from, or
// "" if its RRSIG labels say it was not (RFC 4035 §5.3.4).
func wildcardOf(owner string, sig *dns.RRSIG) string {
	if owner != "" && int(sig.Labels) >= dns.CountLabel(owner) {
		return "" // as below, without splitting the owner on every verification
	}
	labels := dns.SplitDomainName(owner)
	n := len(labels)
	if n > 0 && labels[0] == "*" {
		n-- // the wildcard's own label is not counted (RFC 4034 §3.1.3)
	}
	if int(sig.Labels) >= n {
		return ""
	}
	return "*." + dns.Fqdn(strings.Join(labels[len(labels)-int(sig.Labels):], "."))
}

// clockSkew is the slack granted around a signature's validity window:
// 10% of the window, between one hour and one day, as Unbound's
// val-sig-skew-min and val-sig-skew-max, so that a resolver or signer with
// a wrong clock does not turn a zone Bogus at each re-signing.
func clockSkew(inception, expiration int64) int64 {
	return min(max((expiration-inception)/10, 3600), 86400)
}

// dateCheck checks sig's validity window against now, in RFC 1982 serial
// arithmetic as RRSIG times wrap in 2106.
func dateCheck(sig *dns.RRSIG, now time.Time) (verdict, bool) {
	inc, exp := sigWindow(sig, now)
	skew := clockSkew(inc, exp)
	t := now.Unix()
	switch {
	case exp < inc:
		return bogus(edeBogus, "expiration before inception"), false
	case t < inc-skew:
		return bogus(edeSigNotYetValid, "not valid before %s", time.Unix(inc, 0).UTC().Format(time.RFC3339)), false
	case t > exp+skew:
		return bogus(edeSigExpired, "expired %s", time.Unix(exp, 0).UTC().Format(time.RFC3339)), false
	}
	return verdict{}, true
}

// sigWindow maps the 32-bit inception and expiration to the absolute times
// nearest now.
func sigWindow(sig *dns.RRSIG, now time.Time) (int64, int64) {
	t := now.Unix()
	near := func(v uint32) int64 {
		d := int64(int32(v - uint32(t)))
		return t + d
	}
	return near(sig.Inception), near(sig.Expiration)
}

// clampTTLs lowers the TTLs of a validated RRset and its RRSIGs to the
// original TTL and to the seconds left before the signature expires.
func clampTTLs(s *rrset, sig *dns.RRSIG, now time.Time) {
	_, exp := sigWindow(sig, now)
	limit := uint32(min(max(exp-now.Unix(), 0), int64(sig.OrigTtl)))
	for _, rr := range s.rrs {
		if h := rr.Header(); h.Ttl > limit {
			h.Ttl = limit
		}
	}
	for _, sg := range s.sigs {
		if sg.Hdr.Ttl > limit {
			sg.Hdr.Ttl = limit
		}
	}
}

// algSupported reports whether signatures of alg can be checked.
func (v *Validator) algSupported(alg uint8) bool {
	switch alg {
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512,
		dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519, dns.ED448:
		return true
	case dns.DSA, dns.DSANSEC3SHA1:
		return v.cfg.FakeDSA || v.cfg.FakeSHA1
	}
	return false
}

func digestSupported(d uint8) bool {
	return d == dns.SHA1 || d == dns.SHA256 || d == dns.SHA384
}

var errED448 = errors.New("ED448 signature does not verify")

// verifySig runs the crypto of one signature. Callers have checked tag,
// algorithm, signer and dates.
func (v *Validator) verifySig(sig *dns.RRSIG, k zoneKey, rrs []dns.RR) error {
	switch sig.Algorithm {
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1:
		if v.cfg.FakeSHA1 {
			return nil
		}
	case dns.DSA, dns.DSANSEC3SHA1:
		// DSA signs SHA-1 digests, so Unbound's fake-sha1 covers it too.
		if v.cfg.FakeDSA || v.cfg.FakeSHA1 {
			return nil
		}
	case dns.ED448:
		return verifyED448(sig, k, rrs)
	}
	if bigExponent(k) {
		return verifyRSABigExponent(sig, k, rrs)
	}
	return verifyFast(sig, k, rrs)
}

func verifyED448(sig *dns.RRSIG, k zoneKey, rrs []dns.RR) error {
	if !k.pubOK || len(k.pub) != ed448.PublicKeySize || k.key.Flags&dns.ZONE == 0 || k.key.Protocol != 3 {
		return dns.ErrKey
	}
	raw, err := base64.StdEncoding.DecodeString(sig.Signature)
	if err != nil {
		return dns.ErrSig
	}
	data, err := SignedData(sig, rrs)
	if err != nil {
		return err
	}
	if !ed448.Verify(ed448.PublicKey(k.pub), data, raw, "") {
		return errED448
	}
	return nil
}

// SignedData returns the data an RRSIG signs over rrs (RFC 4034 §3.1.8.1):
// the RRSIG RDATA without signature, then the RRset in canonical form.
// miekg/dns cannot verify ED448, so this builds the data for circl. It
// reuses miekg's canonical form: for ED25519 miekg hands the signer the
// unhashed data, so signing a copy with a capturing signer yields it; the
// algorithm and key tag bytes are then restored.
func SignedData(sig *dns.RRSIG, rrs []dns.RR) ([]byte, error) {
	if len(rrs) == 0 {
		return nil, dns.ErrRRset
	}
	c := *sig
	c.Algorithm = dns.ED25519
	c.KeyTag = 1 // miekg refuses tag 0; the real tag is written back below
	set := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		cp := dns.Copy(rr)
		h := cp.Header()
		h.Ttl = sig.OrigTtl
		if w := wildcardOf(canonical(h.Name), sig); w != "" {
			h.Name = w
		}
		set[i] = cp
	}
	var cs captureSigner
	if err := c.Sign(&cs, set); err != nil {
		return nil, fmt.Errorf("signed data of %s: %w", sig.Hdr.Name, err)
	}
	if len(cs.data) < 18 {
		return nil, dns.ErrSig
	}
	cs.data[2] = sig.Algorithm
	cs.data[16], cs.data[17] = byte(sig.KeyTag>>8), byte(sig.KeyTag)
	return cs.data, nil
}

type captureSigner struct{ data []byte }

func (c *captureSigner) Public() crypto.PublicKey { return nil }

func (c *captureSigner) Sign(_ io.Reader, msg []byte, _ crypto.SignerOpts) ([]byte, error) {
	c.data = append([]byte(nil), msg...)
	return nil, nil
}
