package validate

import (
	"testing"

	"github.com/miekg/dns"
)

type worldOpts struct {
	alg         uint8
	nsec3       bool
	iter        uint16
	optOut      bool
	leafWindow  window
	leafKeys    []*testKey // default: one KSK and one ZSK of alg
	leafDS      []*testKey // keys the parent's DS names; default leafKeys[0]
	leafDNSKEYs []*testKey // who signs the leaf DNSKEY RRset
	leaf        *zone      // a zone signed elsewhere (ldns, BIND)
	dsMutate    func(*dns.DS)
}

const leafName = "example.test."

var leafData = []string{
	"example.test. 3600 IN SOA ns.example.test. host.example.test. 1 3600 600 86400 300",
	"example.test. 3600 IN NS ns.example.test.",
	"ns.example.test. 3600 IN A 192.0.2.53",
	"www.example.test. 3600 IN A 192.0.2.1",
	"alias.example.test. 3600 IN CNAME www.example.test.",
	"*.wild.example.test. 3600 IN A 192.0.2.7",
	"deep.ent.example.test. 3600 IN TXT \"below an empty non-terminal\"",
	"insecure.example.test. 3600 IN NS ns.insecure.example.test.",
	"ns.insecure.example.test. 3600 IN A 192.0.2.54",
	"signed.example.test. 3600 IN NS ns.signed.example.test.",
	"signed.example.test. 3600 IN DS 12345 13 2 0000000000000000000000000000000000000000000000000000000000000000",
	"ns.signed.example.test. 3600 IN A 192.0.2.55",
}

// buildWorld signs root, test. and example.test. (plus an unsigned
// insecure.example.test.) and returns the Fetcher and the root anchor.
func buildWorld(t testing.TB, o worldOpts) (*world, []dns.RR) {
	t.Helper()
	if o.alg == 0 {
		o.alg = dns.ECDSAP256SHA256
	}
	leaf := o.leaf
	if leaf == nil {
		if o.leafKeys == nil {
			o.leafKeys = []*testKey{newKey(t, leafName, o.alg, true), newKey(t, leafName, o.alg, false)}
		}
		leaf = signZone(t, leafName, rrs(t, leafData...), signOpts{keys: o.leafKeys, nsec3: o.nsec3, iter: o.iter,
			optOut: o.optOut, window: o.leafWindow, dnskeyBy: o.leafDNSKEYs})
	}
	if o.leafDS == nil && o.leafKeys != nil {
		o.leafDS = o.leafKeys[:1]
	}
	tldData := rrs(t,
		"test. 3600 IN SOA ns.test. host.test. 1 3600 600 86400 300",
		"test. 3600 IN NS ns.test.",
		"example.test. 3600 IN NS ns.example.test.",
		"ns.test. 3600 IN A 192.0.2.2")
	if o.leafDS != nil {
		for _, k := range o.leafDS {
			tldData = append(tldData, rrs(t, dsOf(t, k))...)
		}
	} else {
		for _, rr := range leaf.sets[setKey{leafName, dns.TypeDNSKEY}] {
			if k := rr.(*dns.DNSKEY); k.Flags&dns.SEP != 0 {
				tldData = append(tldData, k.ToDS(dns.SHA256))
			}
		}
	}
	for _, rr := range tldData {
		if ds, ok := rr.(*dns.DS); ok && o.dsMutate != nil {
			o.dsMutate(ds)
		}
	}
	tldKey := newKey(t, "test.", dns.ECDSAP256SHA256, true)
	tld := signZone(t, "test.", tldData, signOpts{keys: []*testKey{tldKey}})
	rootKey := newKey(t, ".", dns.ECDSAP256SHA256, true)
	root := signZone(t, ".", append(rrs(t,
		". 3600 IN SOA a.root. host.root. 1 3600 600 86400 300",
		". 3600 IN NS a.root.",
		"test. 3600 IN NS ns.test.",
		"ns.test. 3600 IN A 192.0.2.2"), rrs(t, dsOf(t, tldKey))...), signOpts{keys: []*testKey{rootKey}})
	ins := newZoneFromRRs("insecure.example.test.", rrs(t,
		"insecure.example.test. 3600 IN SOA ns.insecure.example.test. host. 1 3600 600 86400 300",
		"insecure.example.test. 3600 IN NS ns.insecure.example.test.",
		"www.insecure.example.test. 3600 IN A 192.0.2.9"))
	w := &world{zones: map[string]*zone{".": root, "test.": tld, leafName: leaf, "insecure.example.test.": ins}}
	return w, rrs(t, dsOf(t, rootKey))
}

func newValidator(t testing.TB, anchors []dns.RR, mod func(*Config)) *Validator {
	t.Helper()
	cfg := Config{Clock: &fixedClock{testNow}, Anchors: anchors}
	if mod != nil {
		mod(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
