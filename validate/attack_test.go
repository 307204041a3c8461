package validate

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// forceTag rewrites the last two bytes of an ECDSA key so that its key tag
// becomes tag (RFC 4034 Appendix B sums 16-bit words, so the last word
// moves the tag freely). The key no longer verifies anything, but each try
// still costs a verification: the KeyTrap shape.
func forceTag(k *dns.DNSKEY, tag uint16) *dns.DNSKEY {
	c := dns.Copy(k).(*dns.DNSKEY)
	pub, _ := base64.StdEncoding.DecodeString(c.PublicKey)
	rdata := append([]byte{byte(c.Flags >> 8), byte(c.Flags), c.Protocol, c.Algorithm}, pub...)
	sum := 0
	for i, b := range rdata[:len(rdata)-2] {
		if i&1 == 0 {
			sum += int(b) << 8
		} else {
			sum += int(b)
		}
	}
	for w := 0; w < 1<<16; w++ {
		s := sum + w
		if uint16((s+s>>16)&0xFFFF) == tag {
			pub[len(pub)-2], pub[len(pub)-1] = byte(w>>8), byte(w)
			c.PublicKey = base64.StdEncoding.EncodeToString(pub)
			return c
		}
	}
	panic("no word gives the tag")
}

// TestKeyTrapIsBogusWithinTheCaps is RES-1: 120 DNSKEYs sharing the KSK's
// key tag and 120 bogus RRSIGs on the answer.
func TestKeyTrapIsBogusWithinTheCaps(t *testing.T) {
	ksk := newKey(t, leafName, dns.ECDSAP256SHA256, true)
	w, anchors := buildWorld(t, worldOpts{leafKeys: []*testKey{ksk}})
	leaf := w.zones[leafName]
	tag := ksk.rr.KeyTag()
	keys := leaf.sets[setKey{leafName, dns.TypeDNSKEY}]
	for i := 0; len(keys) < 121; i++ {
		fake := forceTag(newKey(t, leafName, dns.ECDSAP256SHA256, true).rr, tag)
		if fake.KeyTag() != tag {
			t.Fatalf("forced tag %d, want %d", fake.KeyTag(), tag)
		}
		keys = append(keys, fake)
	}
	leaf.sets[setKey{leafName, dns.TypeDNSKEY}] = keys
	leaf.sigs[setKey{leafName, dns.TypeDNSKEY}] = []dns.RR{ksk.sign(t, keys, leafName, goodWindow)}
	a := leaf.sets[setKey{"www.example.test.", dns.TypeA}]
	var sigs []dns.RR
	for range 120 {
		s := ksk.sign(t, a, leafName, goodWindow)
		junk := make([]byte, 64)
		_, _ = rand.Read(junk)
		s.Signature = base64.StdEncoding.EncodeToString(junk)
		sigs = append(sigs, s)
	}
	leaf.sigs[setKey{"www.example.test.", dns.TypeA}] = sigs

	v := newValidator(t, anchors, nil)
	for i := range 3 {
		got := v.Validate(context.Background(), w, w.reply("www.example.test.", dns.TypeA))
		if got.Security != cache.Bogus || got.Verifications > 64 {
			t.Fatalf("attack query %d: %+v, want bogus within RES-1's 64 verifications", i, got)
		}
		t.Logf("attack query %d: %d verifications: %s", i, got.Verifications, got.Reason)
		if got.Verifications > v.cfg.MaxSigsPerRRset*v.cfg.MaxKeysPerTag {
			t.Fatalf("attack query %d: %d verifications for one RRset", i, got.Verifications)
		}
	}
	s := v.Stats()
	if s.Bogus != 3 || s.Verifications > 3*64 {
		t.Fatalf("stats %+v", s)
	}
	if got := v.Validate(context.Background(), w, w.reply("www.test.", dns.TypeA)); got.Security != cache.Secure {
		t.Fatalf("legitimate query next to the attack: %+v", got)
	}
}

// TestNSEC3IterationsAboveLimitAreInsecureWithinTheBudget is RES-2.
func TestNSEC3IterationsAboveLimitAreInsecureWithinTheBudget(t *testing.T) {
	for _, c := range []struct {
		iter uint16
		want cache.Security
		ede  uint16
	}{
		{2500, cache.Insecure, edeUnsupportedNSEC3Itr},
		{150, cache.Insecure, edeUnsupportedNSEC3Itr},
		{50, cache.Secure, 0},
	} {
		w, anchors := buildWorld(t, worldOpts{nsec3: true, iter: c.iter})
		v := newValidator(t, anchors, nil)
		got := v.Validate(context.Background(), w, w.reply("a.b.c.nope.example.test.", dns.TypeA))
		if got.Security != c.want || got.EDE != c.ede || got.NSEC3Hashes > v.cfg.MaxNSEC3Hashes {
			t.Fatalf("%d iterations: %+v, want %v EDE %d within %d hashes", c.iter, got, c.want, c.ede, v.cfg.MaxNSEC3Hashes)
		}
		if c.iter > uint16(v.cfg.MaxNSEC3Hashes) && got.NSEC3Hashes != 0 {
			t.Fatalf("%d iterations: %d hashes spent though one name costs more than the budget", c.iter, got.NSEC3Hashes)
		}
	}
}

func TestTooManyNSEC3RecordsAreBogus(t *testing.T) {
	w, anchors := buildWorld(t, worldOpts{nsec3: true})
	r := w.reply("nope.example.test.", dns.TypeA)
	leaf := w.zones[leafName]
	for k := range leaf.sets {
		if k.typ == dns.TypeNSEC3 {
			r.Msg.Ns = append(r.Msg.Ns, leaf.withSigs(k.name, dns.TypeNSEC3)...)
		}
	}
	got := newValidator(t, anchors, nil).Validate(context.Background(), w, r)
	if got.Security != cache.Bogus || got.Verifications > 8 {
		t.Fatalf("got %+v, want bogus before verifying the flood", got)
	}
}
