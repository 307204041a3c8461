package validate

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// Behaviours the Unbound and Deckard replay scenarios pin down, on zones
// signed here.

func TestUnsupportedAnchorIsPrimedBeforeItIsInsecure(t *testing.T) {
	for _, c := range []struct {
		name     string
		noDNSKEY bool
		want     cache.Security
		ede      uint16
	}{
		{"DNSKEYPresentIsInsecure", false, cache.Insecure, edeUnsupportedAlg},
		{"DNSKEYMissingIsBogus", true, cache.Bogus, edeDNSKEYMissing},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, _ := buildWorld(t, worldOpts{})
			anchor := rrs(t, "example.test. 3600 IN DS 2854 253 2 46e4ffc6e9a4793b488954bd3f0cc6af0dfb201b46e4ffc6e9a4793b488954bd")
			if c.noDNSKEY {
				delete(w.zones[leafName].sets, setKey{leafName, dns.TypeDNSKEY})
			}
			got := newValidator(t, anchor, nil).Validate(context.Background(), w, w.reply("www.example.test.", dns.TypeA))
			if got.Security != c.want || got.EDE != c.ede {
				t.Fatalf("got %+v, want %v EDE %d", got, c.want, c.ede)
			}
		})
	}
}

// zsk signs as the leaf's data key, for records the signer never made.
func leafWithKeys(t *testing.T) (*world, []dns.RR, *testKey) {
	t.Helper()
	ksk, zsk := newKey(t, leafName, dns.ECDSAP256SHA256, true), newKey(t, leafName, dns.ECDSAP256SHA256, false)
	w, anchors := buildWorld(t, worldOpts{leafKeys: []*testKey{ksk, zsk}})
	return w, anchors, zsk
}

// signedAs signs rr as if owned by wildcard and moves it (and the RRSIG)
// to owner: what a server sends for an expansion.
func signedAs(t *testing.T, k *testKey, rr dns.RR, wildcard, owner string) []dns.RR {
	t.Helper()
	rr.Header().Name = wildcard
	sig := k.sign(t, []dns.RR{rr}, leafName, goodWindow)
	rr.Header().Name, sig.Hdr.Name = owner, owner
	return []dns.RR{rr, sig}
}

func TestDenialExpandedFromAWildcardProvesNothing(t *testing.T) {
	w, anchors, zsk := leafWithKeys(t)
	r := Reply{Zone: leafName, QName: "www.insecure.example.test.", QType: dns.TypeA,
		Msg: w.zones[leafName].answer("www.insecure.example.test.", dns.TypeA)}
	nsec := &dns.NSEC{Hdr: dns.RR_Header{Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 300},
		NextDomain: "ns.example.test.", TypeBitMap: []uint16{dns.TypeNS, dns.TypeRRSIG, dns.TypeNSEC}}
	r.Msg.Ns = append(rrsOfType(r.Msg.Ns, dns.TypeNS), signedAs(t, zsk, nsec, "*.example.test.", "insecure.example.test.")...)
	got := newValidator(t, anchors, nil).Validate(context.Background(), w, r)
	if got.Security != cache.Bogus {
		t.Fatalf("got %+v, want bogus: the wildcard's NSEC cannot deny the delegation's DS", got)
	}
	if strings.Contains(got.Reason, "verify") {
		t.Fatalf("failed for the wrong reason: %s", got.Reason)
	}
}

func TestDNAMEExpandedFromAWildcardIsBogus(t *testing.T) {
	w, anchors, zsk := leafWithKeys(t)
	dname := &dns.DNAME{Hdr: dns.RR_Header{Rrtype: dns.TypeDNAME, Class: dns.ClassINET, Ttl: 300}, Target: "example.net."}
	m := new(dns.Msg)
	m.SetQuestion("www.sub.example.test.", dns.TypeA)
	m.Answer = append(signedAs(t, zsk, dname, "*.example.test.", "sub.example.test."),
		rrs(t, "www.sub.example.test. 300 IN CNAME www.example.net.")...)
	got := newValidator(t, anchors, nil).Validate(context.Background(), w,
		Reply{Zone: leafName, QName: "www.sub.example.test.", QType: dns.TypeA, Msg: m})
	if got.Security != cache.Bogus || got.EDE != edeBogus {
		t.Fatalf("got %+v, want bogus EDE 6", got)
	}
}

// TestManySignedRRsetsFitTheWorkCaps: an ANY answer of 40 signed RRsets
// costs 40 successful verifications, which the KeyTrap cap must not stop.
func TestManySignedRRsetsFitTheWorkCaps(t *testing.T) {
	var data []string
	for i := range 40 {
		data = append(data, fmt.Sprintf("many.example.test. 3600 IN TYPE%d \\# 1 01", 4001+i))
	}
	ksk, zsk := newKey(t, leafName, dns.ECDSAP256SHA256, true), newKey(t, leafName, dns.ECDSAP256SHA256, false)
	leaf := signZone(t, leafName, rrs(t, append(leafData, data...)...), signOpts{keys: []*testKey{ksk, zsk}})
	w, anchors := buildWorld(t, worldOpts{leaf: leaf, leafKeys: []*testKey{ksk, zsk}})
	m := new(dns.Msg)
	m.SetQuestion("many.example.test.", dns.TypeANY)
	for i := range 40 {
		m.Answer = append(m.Answer, leaf.withSigs("many.example.test.", uint16(4001+i))...)
	}
	v := newValidator(t, anchors, nil)
	got := v.Validate(context.Background(), w, Reply{Zone: leafName, QName: "many.example.test.", QType: dns.TypeANY, Msg: m})
	if got.Security != cache.Secure || got.Verifications > v.cfg.MaxVerifications {
		t.Fatalf("got %+v, want secure within %d verifications", got, v.cfg.MaxVerifications)
	}
}

func rrsOfType(section []dns.RR, t uint16) []dns.RR {
	return without(section, func(rr dns.RR) bool { return rr.Header().Rrtype != t })
}

// flakyWorld serves a broken copy of one RRset until the validator
// rejects it, like a zone with one server that has stale signatures.
type flakyWorld struct {
	*world
	name    string
	qtype   uint16
	bad     bool
	rejects int
	others  bool // whether another server is left to ask
}

func (f *flakyWorld) Fetch(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, error) {
	m, zone, err := f.world.Fetch(ctx, name, qtype)
	if err == nil && f.bad && canonical(name) == f.name && qtype == f.qtype {
		m = m.Copy()
		flipSig(m.Answer)
		flipSig(m.Ns)
	}
	return m, zone, err
}

func (f *flakyWorld) Reject(name string, qtype uint16) bool {
	f.rejects++
	if f.others {
		f.bad = false
	}
	return f.others
}

func TestBogusKeysAreFetchedAgainFromAnotherServer(t *testing.T) {
	for _, c := range []struct {
		name   string
		qname  string
		qtype  uint16
		others bool
		want   cache.Security
	}{
		{"DNSKEYFromAGoodServer", leafName, dns.TypeDNSKEY, true, cache.Secure},
		{"DSFromAGoodServer", leafName, dns.TypeDS, true, cache.Secure},
		{"NoOtherServer", leafName, dns.TypeDNSKEY, false, cache.Bogus},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, anchors := buildWorld(t, worldOpts{})
			f := &flakyWorld{world: w, name: c.qname, qtype: c.qtype, bad: true, others: c.others}
			got := newValidator(t, anchors, nil).Validate(context.Background(), f, w.reply("www.example.test.", dns.TypeA))
			if got.Security != c.want || f.rejects != 1 {
				t.Fatalf("got %+v after %d rejects, want %v after 1", got, f.rejects, c.want)
			}
		})
	}
}

func TestNXDOMAINForAnEmptyNonTerminalBecomesNODATA(t *testing.T) {
	for _, nsec3 := range []bool{false, true} {
		w, anchors := buildWorld(t, worldOpts{nsec3: nsec3})
		r := w.reply("ent.example.test.", dns.TypeA)
		r.Msg.Rcode = dns.RcodeNameError
		got := newValidator(t, anchors, nil).Validate(context.Background(), w, r)
		if got.Security != cache.Secure || r.Msg.Rcode != dns.RcodeSuccess {
			t.Fatalf("NSEC3 %v: got %+v rcode %s, want secure NOERROR", nsec3, got, dns.RcodeToString[r.Msg.Rcode])
		}
	}
}

func TestUnfetchableDNSKEYIsInsecureOnlyWhenStrippingIsAllowed(t *testing.T) {
	for _, allow := range []bool{false, true} {
		w, anchors := buildWorld(t, worldOpts{})
		delete(w.zones[leafName].sets, setKey{leafName, dns.TypeDNSKEY})
		v := newValidator(t, anchors, func(c *Config) { c.AllowStripped = allow })
		got := v.Validate(context.Background(), w, w.reply("www.example.test.", dns.TypeA))
		want, ede := cache.Bogus, edeDNSKEYMissing
		if allow {
			want, ede = cache.Insecure, 0
		}
		if got.Security != want || got.EDE != ede {
			t.Fatalf("AllowStripped %v: got %+v, want %v with EDE %d", allow, got, want, ede)
		}
	}
}

func TestStrippedAlgorithmIsCaughtOnlyWhenHardened(t *testing.T) {
	a, c := newKey(t, leafName, dns.ECDSAP256SHA256, true), newKey(t, leafName, dns.ED25519, true)
	z := newKey(t, leafName, dns.ECDSAP256SHA256, false)
	w, anchors := buildWorld(t, worldOpts{leafKeys: []*testKey{a, c, z}, leafDS: []*testKey{a, c}, leafDNSKEYs: []*testKey{a, c}})
	for _, harden := range []bool{false, true} {
		for _, strip := range []bool{false, true} {
			r := w.reply("www.example.test.", dns.TypeA)
			if strip {
				r.Msg.Answer = without(r.Msg.Answer, func(rr dns.RR) bool {
					s, ok := rr.(*dns.RRSIG)
					return ok && s.Algorithm == dns.ED25519
				})
			}
			v := newValidator(t, anchors, func(c *Config) { c.HardenAlgoDowngrade = harden })
			got := v.Validate(context.Background(), w, r)
			want := cache.Secure
			if harden && strip {
				want = cache.Bogus
			}
			if got.Security != want {
				t.Errorf("harden %v, ED25519 signature stripped %v: got %+v, want %v", harden, strip, got, want)
			}
		}
	}
}

// TestReplayedNSEC3AboveTheIterationLimitIsStillBogus: a signed NSEC3 of
// the parent that does not match the delegation must not deny its DS,
// even when the zone's iterations make a good proof only Insecure.
func TestReplayedNSEC3AboveTheIterationLimitIsStillBogus(t *testing.T) {
	w, anchors := buildWorld(t, worldOpts{nsec3: true, iter: 100})
	leaf := w.zones[leafName]
	good := leaf.answer("insecure.example.test.", dns.TypeDS)
	if got := newValidator(t, anchors, nil).Validate(context.Background(), w,
		Reply{Zone: leafName, QName: "insecure.example.test.", QType: dns.TypeDS, Msg: good}); got.Security != cache.Insecure || got.EDE != edeUnsupportedNSEC3Itr {
		t.Fatalf("genuine proof: %+v, want insecure EDE 27", got)
	}
	forged := leaf.answer("signed.example.test.", dns.TypeDS) // the delegation has a DS
	forged.Answer = nil
	forged.Ns = append(leaf.withSigs(leafName, dns.TypeSOA), leaf.nodataProof("www.example.test.")...)
	got := newValidator(t, anchors, nil).Validate(context.Background(), w,
		Reply{Zone: leafName, QName: "signed.example.test.", QType: dns.TypeDS, Msg: forged})
	if got.Security != cache.Bogus {
		t.Fatalf("replayed NSEC3: %+v, want bogus", got)
	}
}
