package validate

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// sigdataSets are RRsets that exercise the canonical form: duplicates,
// unsorted RDATA, owner and RDATA names in upper case, and a wildcard.
var sigdataSets = [][]string{
	{"www.example.test. 3600 IN A 192.0.2.2", "www.example.test. 3600 IN A 192.0.2.1", "www.example.test. 3600 IN A 192.0.2.2"},
	{"WwW.ExAmple.test. 300 IN AAAA 2001:db8::1"},
	{"example.test. 3600 IN NS NS1.Example.TEST.", "example.test. 3600 IN NS ns0.example.test."},
	{"example.test. 3600 IN SOA NS1.example.test. HostMaster.example.test. 1 7200 3600 1209600 300"},
	{"example.test. 3600 IN MX 10 Mail.Example.test.", "example.test. 3600 IN MX 5 a.example.test."},
	{"*.example.test. 3600 IN TXT \"hello\" \"World\"", "*.example.test. 3600 IN TXT \"a\""},
	{"a\\065.example.test. 3600 IN CNAME B\\066.example.test."},
	{"example.test. 3600 IN DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"},
}

// TestVerifyFastMatchesMiekg checks that verifyFast accepts exactly what
// RRSIG.Verify accepts, over good signatures and broken variants.
func TestVerifyFastMatchesMiekg(t *testing.T) {
	algs := []uint8{dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512, dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519}
	for _, alg := range algs {
		k := newKey(t, "example.test.", alg, false)
		other := newKey(t, "example.test.", alg, true)
		for _, lines := range sigdataSets {
			set := rrs(t, lines...)
			sig := k.sign(t, set, "example.test.", goodWindow)
			for name, c := range sigdataVariants(set, sig, k.rr, other.rr) {
				want := c.sig.Verify(c.key, c.rrs) == nil
				if got := verifyFast(c.sig, newZoneKey(c.key), c.rrs) == nil; got != want {
					t.Errorf("%s %s %s: verifyFast %v, miekg %v", dns.AlgorithmToString[alg], lines[0], name, got, want)
				}
			}
		}
	}
}

type sigdataCase struct {
	sig *dns.RRSIG
	key *dns.DNSKEY
	rrs []dns.RR
}

// sigdataVariants are set and sig as signed, and changed in ways that
// must or must not verify.
func sigdataVariants(set []dns.RR, sig *dns.RRSIG, key, other *dns.DNSKEY) map[string]sigdataCase {
	cases := map[string]sigdataCase{"good": {sig, key, set}, "other key": {sig, other, set}}
	sigWith := func(f func(*dns.RRSIG)) *dns.RRSIG {
		c := dns.Copy(sig).(*dns.RRSIG)
		f(c)
		return c
	}
	setWith := func(f func(dns.RR)) []dns.RR {
		var out []dns.RR
		for _, rr := range set {
			c := dns.Copy(rr)
			f(c)
			out = append(out, c)
		}
		return out
	}
	keyWith := func(f func(*dns.DNSKEY)) *dns.DNSKEY {
		c := dns.Copy(key).(*dns.DNSKEY)
		f(c)
		return c
	}
	cases["ttl"] = sigdataCase{sig, key, setWith(func(rr dns.RR) { rr.Header().Ttl = 7 })}
	cases["upper owner"] = sigdataCase{sig, key, setWith(func(rr dns.RR) { rr.Header().Name = strings.ToUpper(rr.Header().Name) })}
	cases["expanded"] = sigdataCase{sig, key, setWith(func(rr dns.RR) {
		rr.Header().Name = strings.Replace(rr.Header().Name, "*", "x.y", 1)
	})}
	cases["reversed"] = sigdataCase{sig, key, append([]dns.RR{set[len(set)-1]}, set[:len(set)-1]...)}
	cases["dropped"] = sigdataCase{sig, key, set[:1]}
	cases["rdata"] = sigdataCase{sig, key, setWith(func(rr dns.RR) {
		if a, ok := rr.(*dns.A); ok && len(a.A) > 3 {
			a.A[3]++
		}
		if n, ok := rr.(*dns.NS); ok {
			n.Ns = "x" + n.Ns
		}
	})}
	cases["class"] = sigdataCase{sig, key, setWith(func(rr dns.RR) { rr.Header().Class = dns.ClassCHAOS })}
	cases["labels"] = sigdataCase{sigWith(func(s *dns.RRSIG) { s.Labels-- }), key, set}
	cases["labels up"] = sigdataCase{sigWith(func(s *dns.RRSIG) { s.Labels += 3 }), key, set}
	cases["signer case"] = sigdataCase{sigWith(func(s *dns.RRSIG) { s.SignerName = "EXAMPLE.test." }), key, set}
	cases["signer"] = sigdataCase{sigWith(func(s *dns.RRSIG) { s.SignerName = "test." }), key, set}
	cases["tag"] = sigdataCase{sigWith(func(s *dns.RRSIG) { s.KeyTag++ }), key, set}
	cases["sig bytes"] = sigdataCase{sigWith(func(s *dns.RRSIG) { s.Signature = "A" + s.Signature[1:] }), key, set}
	cases["sig base64"] = sigdataCase{sigWith(func(s *dns.RRSIG) { s.Signature = "!" + s.Signature[1:] }), key, set}
	cases["key base64"] = sigdataCase{sig, keyWith(func(k *dns.DNSKEY) { k.PublicKey = "!" + k.PublicKey[1:] }), set}
	cases["key flags"] = sigdataCase{sig, keyWith(func(k *dns.DNSKEY) { k.Flags = 0 }), set}
	cases["key owner case"] = sigdataCase{sig, keyWith(func(k *dns.DNSKEY) { k.Hdr.Name = "Example.Test." }), set}
	return cases
}

// TestKeyTagAndDSMatchMiekg checks newZoneKey's tag and dsMatches against
// DNSKEY.KeyTag and DNSKEY.ToDS.
func TestKeyTagAndDSMatchMiekg(t *testing.T) {
	for _, alg := range []uint8{dns.RSASHA256, dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519, dns.ED448} {
		for _, ksk := range []bool{false, true} {
			k := newKey(t, "Example.TEST.", alg, ksk).rr
			bad := dns.Copy(k).(*dns.DNSKEY)
			bad.PublicKey = "!" + bad.PublicKey[1:]
			for _, key := range []*dns.DNSKEY{k, bad} {
				zk := newZoneKey(key)
				if zk.tag != key.KeyTag() {
					t.Errorf("alg %d: tag %d, miekg %d", alg, zk.tag, key.KeyTag())
				}
				for _, dt := range []uint8{dns.SHA1, dns.SHA256, dns.SHA384, dns.SHA512, 9} {
					ds := k.ToDS(dt)
					if ds == nil {
						ds = &dns.DS{DigestType: dt, Digest: "00"}
					}
					for _, digest := range []string{ds.Digest, strings.ToUpper(ds.Digest), ds.Digest[1:] + "0"} {
						d := &dns.DS{KeyTag: ds.KeyTag, Algorithm: alg, DigestType: dt, Digest: digest}
						got := key.ToDS(dt)
						want := got != nil && strings.EqualFold(got.Digest, digest)
						if zk.dsMatches(d) != want {
							t.Errorf("alg %d digest %d %q: dsMatches %v, miekg %v", alg, dt, digest, !want, want)
						}
					}
				}
			}
		}
	}
}

func TestIsSubDomainMatchesMiekg(t *testing.T) {
	names := []string{".", "", "test.", "test", "Test.", "example.test.", "EXAMPLE.test.", "www.example.test.",
		"a\\.b.test.", "b.test.", "a\\\\.b.test.", "\\..test.", "*.example.test.", "xample.test.", "example.test.test.",
		strings.Repeat("a.", 140), strings.Repeat("a.", 126) + "test."}
	for _, p := range names {
		for _, c := range names {
			if got, want := isSubDomain(p, c), dns.IsSubDomain(p, c); got != want {
				t.Errorf("isSubDomain(%q, %q) = %v, miekg %v", p, c, got, want)
			}
		}
	}
}

func TestNSEC3HashMatchesMiekg(t *testing.T) {
	for _, salt := range []string{"", "ABCD", "abcd01", "ABC", "XY", strings.Repeat("ff", 255)} {
		for _, iter := range []uint16{0, 1, 12} {
			r := &dns.NSEC3{Hdr: dns.RR_Header{Name: "0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TOM.example.test."}, Hash: dns.SHA1, Iterations: iter, Salt: salt}
			set, _ := newNSEC3Set([]*dns.NSEC3{r})
			for _, name := range []string{"example.test.", "WWW.Example.test.", ".", "a\\.b.test.", "*.example.test.", strings.Repeat("a", 64) + ".test."} {
				if got, want := set.hashName(name), dns.HashName(name, dns.SHA1, iter, strings.ToUpper(salt)); got != want {
					t.Errorf("salt %q iter %d %s: %q, miekg %q", salt, iter, name, got, want)
				}
			}
		}
	}
}

func TestCanonicalCompareMatchesWireLabels(t *testing.T) {
	names := []string{".", "test.", "test", "Test.", "a.test.", "A.test.", "b.test.", "ab.test.", "a\\.b.test.",
		"\\000.test.", "\\200.test.", "\\195\\169.test.", "\\195\\137.test.", "*.test.", "z.a.test.", "a..test.",
		strings.Repeat("a", 64) + ".test.", strings.Repeat("a.", 130), "\\255\\255.a.test."}
	sign := func(c int) int { return min(max(c, -1), 1) }
	for _, a := range names {
		for _, b := range names {
			if got, want := sign(canonicalCompare(a, b)), sign(canonicalCompareSlow(a, b)); got != want {
				t.Errorf("canonicalCompare(%q, %q) = %d, wireLabels %d", a, b, got, want)
			}
		}
	}
}

// FuzzVerifyFast signs the first RRset of arbitrary replies with miekg
// and checks that verifyFast agrees with RRSIG.Verify on it, as sent and
// with the TTLs and owner case a resolver may change.
func FuzzVerifyFast(f *testing.F) {
	for _, lines := range sigdataSets {
		m := new(dns.Msg)
		m.Answer = rrs(f, lines...)
		if b, err := m.Pack(); err == nil {
			f.Add(b)
		}
	}
	k := newKey(f, ".", dns.ED25519, false)
	f.Fuzz(func(t *testing.T, data []byte) {
		m := new(dns.Msg)
		if m.Unpack(data) != nil || len(m.Answer) == 0 {
			return
		}
		set := groupRRsets(m.Answer)
		if len(set) == 0 {
			return
		}
		sig := &dns.RRSIG{Algorithm: dns.ED25519, KeyTag: k.rr.KeyTag(), SignerName: ".", OrigTtl: 300}
		if sig.Sign(k.priv, set[0].rrs) != nil {
			return
		}
		for name, c := range sigdataVariants(set[0].rrs, sig, k.rr, k.rr) {
			want := c.sig.Verify(c.key, c.rrs) == nil
			if got := verifyFast(c.sig, newZoneKey(c.key), c.rrs) == nil; got != want {
				t.Fatalf("%s %v: verifyFast %v, miekg %v", name, set[0].rrs, got, want)
			}
		}
	})
}
