package validate

import (
	"context"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// zoneKey is a DNSKEY with its key tag computed and its public key
// decoded once (see newZoneKey).
type zoneKey struct {
	key   *dns.DNSKEY
	tag   uint16
	pub   []byte
	pubOK bool // PublicKey is valid base64
	// p256 is the decoded point of an algorithm 13 key, nil for others
	// and for a key off the curve; a pointer so that the copies of the key
	// share its verification count and table.
	p256 *p256Key
}

// keyEntry is the key cache's record of one zone: Secure with the keys
// that may sign its data, Insecure, or Bogus with the reason.
type keyEntry struct {
	verdict
	keys []zoneKey
	// needAlgs lists the algorithms that must each sign an RRset, with
	// Config.HardenAlgoDowngrade; nil means any one key will do.
	needAlgs []uint8
	expires  time.Time
}

// zoneKeys returns the validated keys of zone, from the key cache when
// fresh, or by walking the chain of trust up to the closest anchor.
func (v *Validator) zoneKeys(ctx context.Context, f Fetcher, zone string, w *work) *keyEntry {
	zone = canonical(zone)
	if v.negativeAnchored(zone) {
		return &keyEntry{verdict: insecure(0, "%s is under a negative trust anchor", zone)}
	}
	anchor, ok := v.closestAnchor(zone)
	if !ok {
		return &keyEntry{verdict: verdict{sec: cache.Indeterminate, reason: "no trust anchor above " + zone}}
	}
	if e, ok := v.keys.Get(zone); ok && v.now().Before(e.expires) {
		return e
	}
	if w.depth >= maxChainDepth {
		return &keyEntry{verdict: bogus(edeBogus, "chain of trust to %s deeper than %d zones", zone, maxChainDepth)}
	}
	return v.sharedZoneKeys(ctx, zone, w, func() *keyEntry { return v.walkZoneKeys(ctx, f, zone, anchor, w) })
}

// walkZoneKeys validates zone's keys from its closest anchor down and
// keeps them in the key cache unless the verdict is transient.
func (v *Validator) walkZoneKeys(ctx context.Context, f Fetcher, zone, anchor string, w *work) *keyEntry {
	w.depth++
	defer func() { w.depth-- }()
	var e *keyEntry
	if zone == anchor {
		e = v.anchoredKeys(ctx, f, zone, w)
	} else {
		e = v.delegatedKeys(ctx, f, zone, anchor, w)
	}
	if ctx.Err() != nil {
		e.transient = true
	}
	if !e.transient {
		v.keys.Add(zone, e)
	}
	return e
}

// anchoredKeys validates the DNSKEY RRset of a trust-anchored zone.
func (v *Validator) anchoredKeys(ctx context.Context, f Fetcher, zone string, w *work) *keyEntry {
	var ds []*dns.DS
	var trusted []*dns.DNSKEY
	for _, rr := range v.anchors[zone] {
		switch a := rr.(type) {
		case *dns.DS:
			ds = append(ds, a)
		case *dns.DNSKEY:
			trusted = append(trusted, a)
		}
	}
	if usable, _ := v.usableDS(ds); len(usable) == 0 && !v.anySupported(trusted) {
		return v.unsupportedAnchor(ctx, f, zone, ds)
	}
	return v.fetchKeys(ctx, f, zone, ds, trusted, w)
}

func (v *Validator) anySupported(keys []*dns.DNSKEY) bool {
	for _, k := range keys {
		if v.algSupported(k.Algorithm) {
			return true
		}
	}
	return false
}

// unsupportedAnchor handles an anchor whose algorithms or digests are all
// unsupported: the zone is Insecure (RFC 4035 §5.2), but only once its
// DNSKEY RRset has been fetched. An anchor is primed as Unbound and Knot
// Resolver do, so a zone whose keys cannot be had is Bogus whatever its
// algorithm. The keys need not match the anchor: nothing they sign could
// be checked anyway.
func (v *Validator) unsupportedAnchor(ctx context.Context, f Fetcher, zone string, ds []*dns.DS) *keyEntry {
	msg, _, err := f.Fetch(ctx, zone, dns.TypeDNSKEY)
	if err != nil || msg == nil {
		return v.bogusEntry(bogus(edeDNSKEYMissing, "fetch DNSKEY %s: %v", zone, err))
	}
	if findRRset(groupRRsets(msg.Answer), zone, dns.TypeDNSKEY) == nil {
		return v.bogusEntry(bogus(edeDNSKEYMissing, "no DNSKEY RRset for %s", zone))
	}
	code := edeUnsupportedAlg
	_, what := v.usableDS(ds)
	if what == "digest" {
		code = edeUnsupportedDigest
	}
	return v.insecureEntry(insecure(code, "%s: trust anchor uses only unsupported %ss", zone, what), 0)
}

// delegatedKeys finds zone's DS at its parent, validating that reply in
// turn, and then zone's DNSKEYs.
func (v *Validator) delegatedKeys(ctx context.Context, f Fetcher, zone, anchor string, w *work) *keyEntry {
	if vd, ttl, ok := v.knownNoDS(ctx, f, zone, anchor, w); ok {
		return v.insecureEntry(vd, ttl)
	}
	o, parent, bad := v.fetchDS(ctx, f, zone, anchor, w)
	for try := 0; bad != nil && !bad.transient && try < maxRefetch; try++ {
		if !reject(f, zone, dns.TypeDS) {
			break
		}
		// The first failure says what was wrong; a refetch that finds
		// nobody else to ask only says that.
		o2, parent2, bad2 := v.fetchDS(ctx, f, zone, anchor, w)
		if bad2 == nil || bad2.transient {
			o, parent, bad = o2, parent2, bad2
		}
	}
	switch {
	case bad != nil:
		return v.bogusEntry(*bad)
	case o.sec != cache.Secure:
		return v.insecureEntry(o.verdict, 0)
	case len(o.ds) > 0:
		return v.fetchKeys(ctx, f, zone, o.ds, nil, w)
	case o.noDS:
		return v.insecureEntry(insecure(0, "%s proves no DS for %s", parent, zone), o.ttl)
	}
	return v.bogusEntry(bogus(edeBogus, "%s: no DS for %s and it is not a delegation", parent, zone))
}

// Rejecter is an optional interface of a Fetcher. Reject says that the
// reply it last gave for name/qtype failed validation: the Fetcher should
// forget it (cache included) and avoid the server that sent it, so that
// the validator's next Fetch asks elsewhere, as Unbound's blacklist does
// for a bad DNSKEY or DS. It returns false when there is nobody else to ask.
type Rejecter interface {
	Reject(name string, qtype uint16) bool
}

// maxRefetch bounds the fresh fetches of one DNSKEY or DS RRset after a
// Bogus one (Unbound's val-max-restart is 5; the resolver retries the
// client's own reply on top of this).
const maxRefetch = 2

func reject(f Fetcher, name string, qtype uint16) bool {
	r, ok := f.(Rejecter)
	return ok && r.Reject(name, qtype)
}

// fetchDS asks zone's parent for its DS RRset and validates the reply; bad
// is set when it is Bogus.
func (v *Validator) fetchDS(ctx context.Context, f Fetcher, zone, anchor string, w *work) (outcome, string, *verdict) {
	msg, parent, err := f.Fetch(ctx, zone, dns.TypeDS)
	if err != nil || msg == nil {
		// Unbound reports a DS lookup that got no answer as a network
		// error, a DNSKEY one as missing keys.
		vd := bogus(edeNetworkError, "fetch DS %s: %v", zone, err)
		vd.transient = ctx.Err() != nil
		return outcome{}, "", &vd
	}
	parent = canonical(parent)
	// The DS must come from a zone between the anchor and the child: the
	// child's own servers, or a zone above the anchor, cannot vouch for it.
	if parent == zone || !isSubDomain(parent, zone) || !isSubDomain(anchor, parent) {
		vd := bogus(edeBogus, "DS %s answered by zone %s, not by its parent", zone, parent)
		return outcome{}, parent, &vd
	}
	o := v.validateReply(ctx, f, Reply{Zone: parent, QName: zone, QType: dns.TypeDS, Msg: msg}, w)
	if o.sec == cache.Bogus {
		bad := o.verdict // &o.verdict would put every DS outcome on the heap
		return o, parent, &bad
	}
	return o, parent, nil
}

// fetchKeys asks for zone's DNSKEY RRset and validates it against ds and
// trusted (anchor) keys.
func (v *Validator) fetchKeys(ctx context.Context, f Fetcher, zone string, ds []*dns.DS, trusted []*dns.DNSKEY, w *work) *keyEntry {
	ds, unsupported := v.usableDS(ds)
	if len(ds) == 0 && len(trusted) == 0 {
		code := edeUnsupportedAlg
		if unsupported == "digest" {
			code = edeUnsupportedDigest
		}
		return v.insecureEntry(insecure(code, "%s: DS uses only unsupported %ss", zone, unsupported), 0)
	}
	e := v.fetchDNSKEY(ctx, f, zone, ds, trusted, w)
	for try := 0; e.sec == cache.Bogus && !e.transient && try < maxRefetch; try++ {
		if !reject(f, zone, dns.TypeDNSKEY) {
			break
		}
		if again := v.fetchDNSKEY(ctx, f, zone, ds, trusted, w); again.sec != cache.Bogus || again.transient {
			e = again
		}
	}
	return e
}

// fetchDNSKEY fetches and validates zone's DNSKEY RRset once.
func (v *Validator) fetchDNSKEY(ctx context.Context, f Fetcher, zone string, ds []*dns.DS, trusted []*dns.DNSKEY, w *work) *keyEntry {
	msg, _, err := f.Fetch(ctx, zone, dns.TypeDNSKEY)
	var set *rrset
	if err == nil && msg != nil {
		set = findRRset(groupRRsets(msg.Answer), zone, dns.TypeDNSKEY)
	}
	if set == nil {
		vd := bogus(edeDNSKEYMissing, "no DNSKEY RRset for %s (fetch error: %v)", zone, err)
		if v.cfg.AllowStripped && ctx.Err() == nil {
			return v.insecureEntry(insecure(0, "%s, and stripped DNSSEC is allowed", vd.reason), 0)
		}
		e := v.bogusEntry(vd)
		e.transient = ctx.Err() != nil
		return e
	}
	all, algs := v.usableKeys(set)
	sep := v.matchAnchors(all, ds, trusted)
	if len(sep) == 0 {
		return v.bogusEntry(bogus(edeDNSKEYMissing, "no DNSKEY of %s matches its DS or trust anchor", zone))
	}
	sigs := v.usableSigs(set)
	need := v.neededAlgs(ds, trusted)
	vd := v.checkAllAlgs(set, sigs, sep, zone, need, w)
	if vd.sec != cache.Secure {
		vd.reason = "DNSKEY " + zone + ": " + vd.reason
		return v.bogusEntry(vd)
	}
	// Algorithm downgrade: any supported algorithm the DS set (or anchor)
	// lists may sign the zone's data, as Unbound's harden-algo-downgrade:no
	// and RFC 6840 §5.11's "any single valid path".
	for _, d := range ds {
		algs[d.Algorithm] |= 2
	}
	for _, t := range trusted {
		algs[t.Algorithm] |= 2
	}
	var keys []zoneKey
	for _, k := range all {
		if algs[k.key.Algorithm] == 3 {
			keys = append(keys, k)
		}
	}
	ttl := time.Duration(set.rrs[0].Header().Ttl) * time.Second
	return &keyEntry{verdict: secure(), keys: keys, needAlgs: need, expires: v.now().Add(min(ttl, v.cfg.MaxKeyTTL))}
}

// neededAlgs returns, with Config.HardenAlgoDowngrade, the supported
// algorithms the DS set or anchor lists, each of which must sign.
func (v *Validator) neededAlgs(ds []*dns.DS, trusted []*dns.DNSKEY) []uint8 {
	if !v.cfg.HardenAlgoDowngrade {
		return nil
	}
	var need []uint8
	add := func(a uint8) {
		if v.algSupported(a) && !slices.Contains(need, a) {
			need = append(need, a)
		}
	}
	for _, d := range ds {
		add(d.Algorithm)
	}
	for _, t := range trusted {
		add(t.Algorithm)
	}
	return need
}

// checkAllAlgs is checkSigs, then, for each algorithm in need, checkSigs
// again with only that algorithm's signatures and keys: Unbound's
// harden-algo-downgrade, so that a stripped strong signature is noticed.
func (v *Validator) checkAllAlgs(s *rrset, sigs []*dns.RRSIG, keys []zoneKey, zone string, need []uint8, w *work) verdict {
	vd, _ := v.checkSigs(s, sigs, keys, zone, w)
	if vd.sec != cache.Secure || len(need) < 2 {
		return vd
	}
	for _, alg := range need {
		var as []*dns.RRSIG
		var ak []zoneKey
		for _, sig := range sigs {
			if sig.Algorithm == alg {
				as = append(as, sig)
			}
		}
		for _, k := range keys {
			if k.key.Algorithm == alg {
				ak = append(ak, k)
			}
		}
		if r, _ := v.checkSigs(s, as, ak, zone, w); r.sec != cache.Secure {
			return bogus(edeBogus, "%s has no valid signature of algorithm %d, which %s's DS lists: %s", s, alg, zone, r.reason)
		}
	}
	return vd
}

// usableDS keeps the DS records with a supported algorithm and digest,
// preferring SHA-256 and SHA-384 over SHA-1 (RFC 4509 §3). It names what
// was unsupported when nothing is left.
func (v *Validator) usableDS(ds []*dns.DS) ([]*dns.DS, string) {
	var out []*dns.DS
	unsupported := "algorithm"
	strong := false
	for _, d := range ds {
		switch {
		case !v.algSupported(d.Algorithm):
		case !digestSupported(d.DigestType):
			unsupported = "digest"
		default:
			out = append(out, d)
			strong = strong || d.DigestType != dns.SHA1
		}
	}
	if strong {
		kept := out[:0]
		for _, d := range out {
			if d.DigestType != dns.SHA1 {
				kept = append(kept, d)
			}
		}
		out = kept
	}
	return out, unsupported
}

// usableKeys keeps the zone keys (RFC 4034 §2.1.1 zone flag, protocol 3)
// that are not revoked (RFC 5011 §2.1) and whose algorithm is supported,
// with a bit set per algorithm present.
func (v *Validator) usableKeys(set *rrset) ([]zoneKey, map[uint8]uint8) {
	var out []zoneKey
	algs := map[uint8]uint8{}
	for _, rr := range set.rrs {
		k, ok := rr.(*dns.DNSKEY)
		if !ok || k.Flags&dns.ZONE == 0 || k.Flags&dns.REVOKE != 0 || k.Protocol != 3 || !v.algSupported(k.Algorithm) {
			continue
		}
		out = append(out, newZoneKey(k))
		algs[k.Algorithm] |= 1
	}
	return out, algs
}

// matchAnchors returns the keys a DS digest or a trusted DNSKEY vouches
// for, trying at most MaxKeysPerTag keys per DS.
func (v *Validator) matchAnchors(keys []zoneKey, ds []*dns.DS, trusted []*dns.DNSKEY) []zoneKey {
	var out []zoneKey
	seen := map[*dns.DNSKEY]bool{}
	add := func(k zoneKey) {
		if !seen[k.key] {
			seen[k.key] = true
			out = append(out, k)
		}
	}
	for _, d := range ds {
		var buf [4]zoneKey
		for _, k := range keysFor(buf[:0], keys, d.KeyTag, d.Algorithm, v.cfg.MaxKeysPerTag) {
			if k.dsMatches(d) {
				add(k)
			}
		}
	}
	for _, t := range trusted {
		for _, k := range keys {
			if k.key.Flags == t.Flags && k.key.Algorithm == t.Algorithm && k.key.PublicKey == t.PublicKey {
				add(k)
			}
		}
	}
	return out
}

func (v *Validator) bogusEntry(vd verdict) *keyEntry {
	return &keyEntry{verdict: vd, expires: v.now().Add(v.cfg.BogusTTL)}
}

// insecureEntry keeps an Insecure zone for the TTL of its proof (ttl, in
// seconds, 0 when unknown: then BogusTTL, so that a fixed zone is noticed).
func (v *Validator) insecureEntry(vd verdict, ttl uint32) *keyEntry {
	d := v.cfg.BogusTTL
	if ttl > 0 {
		d = min(time.Duration(ttl)*time.Second, v.cfg.MaxKeyTTL)
	}
	if vd.sec == cache.Secure {
		vd.sec = cache.Insecure
	}
	return &keyEntry{verdict: vd, expires: v.now().Add(d)}
}
