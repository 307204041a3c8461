package validate

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/miekg/dns"
)

// Test zones: a small signer (NSEC or NSEC3 chains, any algorithm), an
// authoritative answerer with RFC 4035/5155 denial proofs, and a Fetcher
// over a hierarchy of such zones.

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

type testKey struct {
	rr   *dns.DNSKEY
	priv crypto.Signer
	ed   ed448.PrivateKey
}

func newKey(t testing.TB, zone string, alg uint8, ksk bool) *testKey {
	t.Helper()
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: dns.ZONE, Protocol: 3, Algorithm: alg}
	if ksk {
		k.Flags |= dns.SEP
	}
	if alg == dns.ED448 {
		pub, priv, err := ed448.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.PublicKey = base64.StdEncoding.EncodeToString(pub)
		return &testKey{rr: k, ed: priv}
	}
	bits := map[uint8]int{dns.RSASHA256: 1024, dns.RSASHA512: 1024, dns.RSASHA1: 1024, dns.RSASHA1NSEC3SHA1: 1024,
		dns.ECDSAP256SHA256: 256, dns.ECDSAP384SHA384: 384, dns.ED25519: 256}[alg]
	priv, err := k.Generate(bits)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{rr: k, priv: priv.(crypto.Signer)}
}

type window struct{ inception, expiration time.Time }

var goodWindow = window{testNow.Add(-24 * time.Hour), testNow.Add(30 * 24 * time.Hour)}

func (k *testKey) sign(t testing.TB, rrs []dns.RR, signer string, w window) *dns.RRSIG {
	t.Helper()
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: rrs[0].Header().Ttl}, Algorithm: k.rr.Algorithm, KeyTag: k.rr.KeyTag(),
		SignerName: signer, Inception: uint32(w.inception.Unix()), Expiration: uint32(w.expiration.Unix())}
	if k.ed == nil {
		if err := sig.Sign(k.priv, rrs); err != nil {
			t.Fatalf("sign %s: %v", rrs[0].Header().Name, err)
		}
		return sig
	}
	h := rrs[0].Header()
	sig.Hdr = dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: h.Class, Ttl: h.Ttl}
	sig.TypeCovered, sig.OrigTtl = h.Rrtype, h.Ttl
	sig.Labels = uint8(dns.CountLabel(h.Name))
	if strings.HasPrefix(h.Name, "*.") {
		sig.Labels--
	}
	data, err := SignedData(sig, rrs)
	if err != nil {
		t.Fatal(err)
	}
	sig.Signature = base64.StdEncoding.EncodeToString(ed448.Sign(k.ed, data, ""))
	return sig
}

type setKey struct {
	name string
	typ  uint16
}

// zone is signed zone data, built by signZone or loaded from a signer's
// output.
type zone struct {
	origin string
	sets   map[setKey][]dns.RR
	sigs   map[setKey][]dns.RR
	names  map[string]bool // names that exist, empty non-terminals included
	nsec3  *dns.NSEC3      // parameters when the zone uses NSEC3
	hashed map[string]string
}

func newZoneFromRRs(origin string, rrs []dns.RR) *zone {
	z := &zone{origin: origin, sets: map[setKey][]dns.RR{}, sigs: map[setKey][]dns.RR{}, names: map[string]bool{}, hashed: map[string]string{}}
	for _, rr := range rrs {
		h := rr.Header()
		name := canonical(h.Name)
		switch x := rr.(type) {
		case *dns.RRSIG:
			k := setKey{name, x.TypeCovered}
			z.sigs[k] = append(z.sigs[k], rr)
			continue
		case *dns.NSEC3:
			z.nsec3 = x
		}
		k := setKey{name, h.Rrtype}
		z.sets[k] = append(z.sets[k], rr)
		if h.Rrtype != dns.TypeNSEC3 {
			for n := name; dns.IsSubDomain(origin, n); n = parentName(n) {
				z.names[n] = true
				if n == origin {
					break
				}
			}
		}
	}
	return z
}

type signOpts struct {
	keys     []*testKey // keys[0] signs DNSKEY; the others (or keys[0] alone) sign data
	nsec3    bool
	iter     uint16
	optOut   bool
	window   window
	dnskeyBy []*testKey // overrides who signs the DNSKEY RRset
}

func rrs(t testing.TB, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		out = append(out, rr)
	}
	return out
}

// signZone adds DNSKEY, the denial chain and RRSIGs to data.
func signZone(t testing.TB, origin string, data []dns.RR, o signOpts) *zone {
	t.Helper()
	if o.window == (window{}) {
		o.window = goodWindow
	}
	for _, k := range o.keys {
		data = append(data, k.rr)
	}
	z := newZoneFromRRs(origin, data)
	if o.nsec3 {
		z.addNSEC3(o)
	} else {
		z.addNSEC()
	}
	zsks := o.keys
	if len(o.keys) > 1 {
		zsks = o.keys[1:]
	}
	for k, set := range z.sets {
		if z.glueOrCut(k) {
			continue
		}
		signers := zsks
		if k.typ == dns.TypeDNSKEY {
			signers = o.keys[:1]
			if o.dnskeyBy != nil {
				signers = o.dnskeyBy
			}
		}
		for _, key := range signers {
			z.sigs[k] = append(z.sigs[k], key.sign(t, set, origin, o.window))
		}
	}
	return z
}

// cut returns the delegation point at or above name inside the zone, if
// any.
func (z *zone) cut(name string) string {
	for n := name; n != z.origin && dns.IsSubDomain(z.origin, n); n = parentName(n) {
		if _, ok := z.sets[setKey{n, dns.TypeNS}]; ok {
			return n
		}
	}
	return ""
}

// glueOrCut reports whether the set is not signed: glue below a cut, or
// the NS set at a cut.
func (z *zone) glueOrCut(k setKey) bool {
	c := z.cut(k.name)
	return c != "" && (c != k.name || k.typ != dns.TypeDS && k.typ != dns.TypeNSEC)
}

func (z *zone) typesAt(name string) []uint16 {
	var ts []uint16
	for k := range z.sets {
		if k.name == name && (!z.glueOrCut(k) || k.typ == dns.TypeNS) {
			ts = append(ts, k.typ)
		}
	}
	if len(ts) > 0 {
		ts = append(ts, dns.TypeRRSIG)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts
}

func (z *zone) has(name string, t uint16) bool { _, ok := z.sets[setKey{name, t}]; return ok }

// authNames are the owners of the zone's authoritative data, cuts
// included, glue excluded, in canonical order.
func (z *zone) authNames() []string {
	seen := map[string]bool{}
	for k := range z.sets {
		if c := z.cut(k.name); c != "" && c != k.name {
			continue
		}
		seen[k.name] = true
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return canonicalCompare(out[i], out[j]) < 0 })
	return out
}

func (z *zone) addNSEC() {
	names := z.authNames()
	for i, n := range names {
		next := names[(i+1)%len(names)]
		types := append(z.typesAt(n), dns.TypeNSEC)
		sort.Slice(types, func(a, b int) bool { return types[a] < types[b] })
		z.sets[setKey{n, dns.TypeNSEC}] = []dns.RR{&dns.NSEC{Hdr: dns.RR_Header{Name: n, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 300},
			NextDomain: next, TypeBitMap: types}}
	}
}

func (z *zone) addNSEC3(o signOpts) {
	type entry struct{ hash, name string }
	var es []entry
	for n := range z.names {
		if c := z.cut(n); c != "" && (c != n || o.optOut && !z.has(n, dns.TypeDS)) {
			continue
		}
		es = append(es, entry{dns.HashName(n, dns.SHA1, o.iter, "ABCD"), n})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].hash < es[j].hash })
	var flags uint8
	if o.optOut {
		flags = 1
	}
	for i, e := range es {
		types := z.typesAt(e.name)
		owner := strings.ToLower(e.hash) + "." + z.origin
		rr := &dns.NSEC3{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 300},
			Hash: dns.SHA1, Flags: flags, Iterations: o.iter, SaltLength: 2, Salt: "ABCD",
			HashLength: 20, NextDomain: es[(i+1)%len(es)].hash, TypeBitMap: types}
		z.sets[setKey{owner, dns.TypeNSEC3}] = []dns.RR{rr}
		z.nsec3 = rr
	}
}

// answer replies to qname/qtype as the zone's authoritative server would.
func (z *zone) answer(qname string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.Response, m.Authoritative = true, true
	qname = canonical(qname)
	if c := z.cut(qname); c != "" && !(c == qname && qtype == dns.TypeDS) {
		m.Authoritative = false
		m.Ns = append(m.Ns, z.sets[setKey{c, dns.TypeNS}]...)
		if z.has(c, dns.TypeDS) {
			m.Ns = append(m.Ns, z.withSigs(c, dns.TypeDS)...)
		} else {
			m.Ns = append(m.Ns, z.nodataProof(c)...)
		}
		return m
	}
	if z.names[qname] {
		switch {
		case z.has(qname, qtype):
			m.Answer = z.withSigs(qname, qtype)
		case z.has(qname, dns.TypeCNAME):
			m.Answer = z.withSigs(qname, dns.TypeCNAME)
			target := canonical(z.sets[setKey{qname, dns.TypeCNAME}][0].(*dns.CNAME).Target)
			if dns.IsSubDomain(z.origin, target) && target != qname {
				next := z.answer(target, qtype)
				m.Answer, m.Ns, m.Rcode = append(m.Answer, next.Answer...), next.Ns, next.Rcode
			}
		default:
			m.Ns = append(z.withSigs(z.origin, dns.TypeSOA), z.nodataProof(qname)...)
		}
		return m
	}
	ce := qname
	for !z.names[ce] {
		ce = parentName(ce)
	}
	wc := wildcardAt(ce)
	if z.names[wc] {
		if z.has(wc, qtype) {
			for _, rr := range z.withSigs(wc, qtype) {
				cp := dns.Copy(rr)
				cp.Header().Name = qname
				m.Answer = append(m.Answer, cp)
			}
			m.Ns = z.denyName(qname, ce, false)
			return m
		}
		m.Ns = append(z.withSigs(z.origin, dns.TypeSOA), z.denyName(qname, ce, false)...)
		m.Ns = append(m.Ns, z.nodataProof(wc)...)
		return m
	}
	m.Rcode = dns.RcodeNameError
	m.Ns = append(z.withSigs(z.origin, dns.TypeSOA), z.denyName(qname, ce, true)...)
	return m
}

func (z *zone) withSigs(name string, t uint16) []dns.RR {
	k := setKey{name, t}
	return append(append([]dns.RR{}, z.sets[k]...), z.sigs[k]...)
}

func (z *zone) hash(name string) string {
	if h, ok := z.hashed[name]; ok {
		return h
	}
	h := dns.HashName(name, dns.SHA1, z.nsec3.Iterations, z.nsec3.Salt)
	z.hashed[name] = h
	return h
}

// nsec3For returns the NSEC3 matching or covering name.
func (z *zone) nsec3For(name string) []dns.RR {
	h := z.hash(name)
	for k, set := range z.sets {
		if k.typ != dns.TypeNSEC3 {
			continue
		}
		r := set[0].(*dns.NSEC3)
		o, next := ownerHash(r), strings.ToUpper(r.NextDomain)
		if o == h || o < next && o < h && h < next || o >= next && (h > o || h < next) {
			return z.withSigs(k.name, dns.TypeNSEC3)
		}
	}
	return nil
}

// nsecFor returns the NSEC matching or covering name.
func (z *zone) nsecFor(name string) []dns.RR {
	for k, set := range z.sets {
		if k.typ != dns.TypeNSEC {
			continue
		}
		n := set[0].(*dns.NSEC)
		if k.name == name || nsecCovers(n, name) {
			return z.withSigs(k.name, dns.TypeNSEC)
		}
	}
	return nil
}

func (z *zone) nodataProof(name string) []dns.RR {
	if z.nsec3 == nil {
		if out := z.nsecFor(name); out != nil {
			return out
		}
		return nil
	}
	if _, ok := z.sets[setKey{strings.ToLower(z.hash(name)) + "." + z.origin, dns.TypeNSEC3}]; ok {
		return z.nsec3For(name)
	}
	// opt-out: closest encloser and the opt-out span over the next closer
	ce := parentName(name)
	for !z.names[ce] || z.nsecSkipped(ce) {
		ce = parentName(ce)
	}
	return z.denyName(name, ce, false)
}

func (z *zone) nsecSkipped(name string) bool {
	_, ok := z.sets[setKey{strings.ToLower(z.hash(name)) + "." + z.origin, dns.TypeNSEC3}]
	return !ok
}

// denyName proves qname absent below closest encloser ce, and the wildcard
// at ce absent too when wild is set.
func (z *zone) denyName(qname, ce string, wild bool) []dns.RR {
	var out []dns.RR
	add := func(rrs []dns.RR) {
		for _, rr := range rrs {
			dup := false
			for _, have := range out {
				if have.String() == rr.String() {
					dup = true
				}
			}
			if !dup {
				out = append(out, rr)
			}
		}
	}
	if z.nsec3 == nil {
		add(z.nsecFor(qname))
		if wild {
			add(z.nsecFor(wildcardAt(ce)))
		}
		return out
	}
	add(z.nsec3For(ce))
	add(z.nsec3For(lastLabels(qname, dns.CountLabel(ce)+1)))
	if wild {
		add(z.nsec3For(wildcardAt(ce)))
	}
	return out
}

// world is a hierarchy of zones behind a Fetcher.
type world struct {
	zones   map[string]*zone
	fetches int
}

func (w *world) zoneOf(name string, qtype uint16) *zone {
	best := (*zone)(nil)
	for origin, z := range w.zones {
		if !dns.IsSubDomain(origin, name) || qtype == dns.TypeDS && origin == name && origin != "." {
			continue
		}
		if best == nil || dns.CountLabel(origin) > dns.CountLabel(best.origin) {
			best = z
		}
	}
	return best
}

func (w *world) Fetch(_ context.Context, name string, qtype uint16) (*dns.Msg, string, error) {
	w.fetches++
	z := w.zoneOf(canonical(name), qtype)
	if z == nil {
		return nil, "", fmt.Errorf("no zone for %s", name)
	}
	return z.answer(name, qtype), z.origin, nil
}

func (w *world) reply(name string, qtype uint16) Reply {
	z := w.zoneOf(canonical(name), qtype)
	return Reply{Zone: z.origin, QName: name, QType: qtype, Msg: z.answer(name, qtype)}
}

func dsOf(t testing.TB, k *testKey) string {
	t.Helper()
	return k.rr.ToDS(dns.SHA256).String()
}
