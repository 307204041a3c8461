package resolver

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
)

// Threat model §5 RES-1 (KeyTrap, CVE-2023-50387) and RES-2 (NSEC3
// iterations, CVE-2023-50868) through the resolver: the validator's caps
// must hold for whole client queries, key fetches and retries included.

const (
	keytrapAddr = "127.56.4.1"
	goodAddr    = "127.56.5.1"
	it150Addr   = "127.56.6.1"
	it2500Addr  = "127.56.6.2"

	// res1Verifications is RES-1's bound on verifications per attack query.
	res1Verifications = 64
	// res2Hashes is RES-2's bound on NSEC3 SHA-1 computations per query.
	res2Hashes = 600
	// keytrapKeys and keytrapSigs are as close to RES-1's 120 as one 64 KB
	// TCP reply allows with RSA-4096 (534 bytes a key, 556 a signature).
	keytrapKeys, keytrapSigs = 112, 112
	attackNames              = 20
)

var (
	rsa4096Once sync.Once
	rsa4096Key  *rsa.PrivateKey
	rsa4096Err  error
)

// keytrapKey is the zone's one real key: RSA-4096 as in RES-1, generated
// once per test binary (about a second).
func keytrapKey(t testing.TB) goKey {
	t.Helper()
	rsa4096Once.Do(func() { rsa4096Key, rsa4096Err = rsa.GenerateKey(rand.Reader, 4096) })
	if rsa4096Err != nil {
		t.Fatal(rsa4096Err)
	}
	rr := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "keytrap.test.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: dns.RSASHA256}
	rr.PublicKey = rsaPublicKey(&rsa4096Key.PublicKey)
	return goKey{RR: rr, Priv: rsa4096Key}
}

// rsaPublicKey encodes a key as RFC 3110 says: exponent length, exponent,
// modulus.
func rsaPublicKey(k *rsa.PublicKey) string {
	e := big.NewInt(int64(k.E)).Bytes()
	buf := append([]byte{byte(len(e))}, e...)
	return base64.StdEncoding.EncodeToString(append(buf, k.N.Bytes()...))
}

// sameTagKeys returns n keys with k's key tag: k's modulus with its third-
// and fourth-last bytes changed (RFC 4034 Appendix B sums 16-bit words, so
// that word moves the tag freely; the modulus stays odd and as costly to
// verify with). The bytes before them make the keys differ.
func sameTagKeys(k *dns.DNSKEY, n int) []dns.RR {
	tag := int(k.KeyTag())
	pub, _ := base64.StdEncoding.DecodeString(k.PublicKey)
	var out []dns.RR
	for salt := 1; len(out) < n; salt++ {
		p := append([]byte(nil), pub...)
		p[len(p)-6] ^= byte(salt)
		p[len(p)-5] ^= byte(salt >> 8)
		rdata := append([]byte{byte(k.Flags >> 8), byte(k.Flags), k.Protocol, k.Algorithm}, p...)
		free := len(rdata) - 4 // even offset: the word the tag is solved for
		sum := 0
		for i, b := range rdata {
			switch {
			case i == free || i == free+1:
			case i&1 == 0:
				sum += int(b) << 8
			default:
				sum += int(b)
			}
		}
		for w := 0; w < 1<<16; w++ {
			if s := sum + w; (s+s>>16)&0xFFFF == tag {
				p[len(p)-4], p[len(p)-3] = byte(w>>8), byte(w)
				c := dns.Copy(k).(*dns.DNSKEY)
				c.PublicKey = base64.StdEncoding.EncodeToString(p)
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// keytrapZone signs keytrap.test. with its real key and the same-tag
// decoys in the DNSKEY RRset, then replaces the RRSIG of each wN A RRset
// with keytrapSigs bogus ones by the real key's tag.
func keytrapZone(t testing.TB, names int) string {
	t.Helper()
	key := keytrapKey(t)
	var text strings.Builder
	fmt.Fprintf(&text, "$ORIGIN keytrap.test.\n@ 3600 IN SOA ns hostmaster 1 3600 900 604800 300\n@ 3600 IN NS ns\nns 3600 IN A %s\n", keytrapAddr)
	for i := 1; i <= names; i++ {
		fmt.Fprintf(&text, "w%d 300 IN A 192.0.2.%d\n", i, i)
	}
	z, err := simnet.ParseZone("keytrap.test.", text.String())
	if err != nil {
		t.Fatal(err)
	}
	decoys := sameTagKeys(key.RR, keytrapKeys)
	for _, d := range decoys {
		if d.(*dns.DNSKEY).KeyTag() != key.RR.KeyTag() {
			t.Fatalf("decoy key tag %d, want %d", d.(*dns.DNSKEY).KeyTag(), key.RR.KeyTag())
		}
	}
	// The real key goes first so that the DS finds it among the first keys
	// of its tag tried: the attacker wants the signature checks to run.
	if err := z.Add(append([]dns.RR{dns.Copy(key.RR)}, decoys...)...); err != nil {
		t.Fatal(err)
	}
	opts := simnet.SignOptions{Inception: uint32(validWindow.inception.Unix()), Expiration: uint32(validWindow.expiration.Unix())}
	if err := simnet.Sign(z, key.RR, key.Priv, opts); err != nil {
		t.Fatal(err)
	}
	// One Add at the end: every Add re-indexes the zone.
	var keep []dns.RR
	for i := 1; i <= names; i++ {
		owner := fmt.Sprintf("w%d.keytrap.test.", i)
		for _, rr := range z.RRset(owner, dns.TypeRRSIG) {
			keep = append(keep, bogusSigs(rr.(*dns.RRSIG))...)
		}
		z.Remove(owner, dns.TypeRRSIG)
	}
	if err := z.Add(keep...); err != nil {
		t.Fatal(err)
	}
	return zoneText(z.Records())
}

// bogusSigs returns keytrapSigs copies of an RRSIG over an A RRset with
// random signature bytes, and any other RRSIG unchanged.
func bogusSigs(sig *dns.RRSIG) []dns.RR {
	if sig.TypeCovered != dns.TypeA {
		return []dns.RR{sig}
	}
	out := make([]dns.RR, 0, keytrapSigs)
	for range keytrapSigs {
		junk := make([]byte, 512)
		_, _ = rand.Read(junk)
		bad := dns.Copy(sig).(*dns.RRSIG)
		bad.Signature = base64.StdEncoding.EncodeToString(junk)
		out = append(out, bad)
	}
	return out
}

// simpleZone is a zone with names host1..hostN, signed in Go.
func simpleZone(t testing.TB, origin, addr string, names int, mode signMode, iterations uint16) (string, []dns.RR) {
	t.Helper()
	var text strings.Builder
	fmt.Fprintf(&text, "$ORIGIN %s\n@ 3600 IN SOA ns hostmaster 1 3600 900 604800 300\n@ 3600 IN NS ns\nns 3600 IN A %s\n", origin, addr)
	for i := 1; i <= names; i++ {
		fmt.Fprintf(&text, "host%d 300 IN A 192.0.2.%d\n", i, i)
	}
	key := goKeyFor(t, "attack", origin, dns.ECDSAP256SHA256)
	z, err := simnet.ParseZone(origin, text.String())
	if err != nil {
		t.Fatal(err)
	}
	opts := simnet.SignOptions{NSEC3: mode.nsec3, Iterations: iterations, Salt: "beef",
		Inception: uint32(validWindow.inception.Unix()), Expiration: uint32(validWindow.expiration.Unix())}
	if err := simnet.Sign(z, key.RR, key.Priv, opts); err != nil {
		t.Fatal(err)
	}
	return zoneText(z.Records()), []dns.RR{key.RR.ToDS(dns.SHA256)}
}

// attackWorld is a signed root and test. delegating, with DS, to
// keytrap.test., good.test. (the legitimate traffic), and the NSEC3 zones
// it150.test. and it2500.test.
func attackWorld(t testing.TB) *e2eWorld {
	t.Helper()
	type child struct{ label, addr, text string }
	good, goodDS := simpleZone(t, "good.test.", goodAddr, 2*attackNames, signModes[0], 0)
	// RES-2: 150 iterations with about 50 NSEC3 records in the chain.
	it150, it150DS := simpleZone(t, "it150.test.", it150Addr, 48, signModes[1], 150)
	it2500, it2500DS := simpleZone(t, "it2500.test.", it2500Addr, 3, signModes[1], 2500)
	children := []child{
		{"keytrap", keytrapAddr, keytrapZone(t, 2*attackNames)},
		{"good", goodAddr, good}, {"it150", it150Addr, it150}, {"it2500", it2500Addr, it2500},
	}
	ds := append(append(append([]dns.RR{keytrapKey(t).RR.ToDS(dns.SHA256)}, goodDS...), it150DS...), it2500DS...)
	var tldText strings.Builder
	fmt.Fprintf(&tldText, "$ORIGIN test.\n@ 3600 IN SOA ns.nic hostmaster 1 3600 900 604800 300\n@ 3600 IN NS ns.nic\nns.nic 3600 IN A %s\n", e2eTLDAddr)
	for _, c := range children {
		fmt.Fprintf(&tldText, "%s 3600 IN NS ns.%s\nns.%s 3600 IN A %s\n", c.label, c.label, c.label, c.addr)
	}
	tldText.WriteString(zoneText(ds))
	tldKey := goKeyFor(t, "tld", "test.", dns.ECDSAP256SHA256)
	root, rootKey := signedRoot(t, dns.ECDSAP256SHA256, tldKey)

	h := simnet.NewHierarchy(simnet.InstantTimeouts())
	h.SignedZone(".", []string{e2eRootAddr}, root)
	h.SignedZone("test.", []string{e2eTLDAddr}, signGo(t, "test.", tldText.String(), tldKey, signModes[0], validWindow))
	for _, c := range children {
		h.SignedZone(c.label+".test.", []string{c.addr}, c.text)
	}
	return &e2eWorld{h: h, anchors: []dns.RR{rootKey.RR.ToDS(dns.SHA256)}}
}

// percentile returns the p-th percentile of ds (sorted in place).
func e2ePercentile(ds []time.Duration, p int) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[min(len(ds)-1, len(ds)*p/100)]
}

// timedAsk is one client query with DO, its wall time and the validator
// work it caused (exact only while no other query runs).
type timedAsk struct {
	m              *dns.Msg
	took           time.Duration
	verifs, hashes uint64
}

func (e *e2eResolver) timedAsk(t testing.TB, name string, qtype uint16) timedAsk {
	t.Helper()
	before, start := e.v.Stats(), time.Now()
	m := e.ask(t, name, qtype, askFlags{do: true})
	after := e.v.Stats()
	return timedAsk{m: m, took: time.Since(start), verifs: after.Verifications - before.Verifications,
		hashes: after.NSEC3Hashes - before.NSEC3Hashes}
}

func checkAttack(t *testing.T, name string, a timedAsk) {
	t.Helper()
	if a.m.Rcode != dns.RcodeServerFailure || edeOf(a.m) == nil {
		t.Errorf("attack %s: %s EDE %v, want SERVFAIL with an EDE", name, dns.RcodeToString[a.m.Rcode], edeOf(a.m))
	}
	if a.took > 2*time.Second {
		t.Errorf("attack %s took %v, RES-1 allows 2 s", name, a.took)
	}
}

func checkLegit(t *testing.T, name string, m *dns.Msg) {
	t.Helper()
	if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || len(m.Answer) == 0 {
		t.Errorf("legitimate %s: %s AD=%v %v EDE %v, want a Secure answer", name, dns.RcodeToString[m.Rcode],
			m.AuthenticatedData, m.Answer, edeOf(m))
	}
}

// TestKeyTrapQueriesStayWithinTheVerificationCap is RES-1: each attack
// query, its cold key chain included, costs at most 64 verifications and
// ends in SERVFAIL within 2 s, one at a time and while legitimate queries
// for another signed zone run beside it; those are all answered Secure.
func TestKeyTrapQueriesStayWithinTheVerificationCap(t *testing.T) {
	w := attackWorld(t)
	e := w.resolver(t)
	var maxVerifs uint64
	var took, legitTook []time.Duration
	for i := 1; i <= attackNames; i++ {
		name := fmt.Sprintf("w%d.keytrap.test.", i)
		a := e.timedAsk(t, name, dns.TypeA)
		checkAttack(t, name, a)
		if a.verifs > res1Verifications {
			t.Errorf("attack %s: %d verifications, RES-1 allows %d", name, a.verifs, res1Verifications)
		}
		maxVerifs, took = max(maxVerifs, a.verifs), append(took, a.took)
		if i == 1 {
			t.Logf("first attack query: %s", edeOf(a.m).ExtraText)
		}
		legit := fmt.Sprintf("host%d.good.test.", i)
		l := e.timedAsk(t, legit, dns.TypeA)
		checkLegit(t, legit, l.m)
		legitTook = append(legitTook, l.took)
	}
	t.Logf("RES-1 sequential: %d attack queries, at most %d verifications each, latency p50 %v max %v; legitimate p50 %v max %v",
		attackNames, maxVerifs, e2ePercentile(took, 50), e2ePercentile(took, 100), e2ePercentile(legitTook, 50), e2ePercentile(legitTook, 100))

	before, start := e.v.Stats(), time.Now()
	var wg sync.WaitGroup
	legit := make([]*dns.Msg, attackNames)
	attack := make([]timedAsk, attackNames)
	for i := range attackNames {
		wg.Add(2)
		go func() {
			defer wg.Done()
			attack[i] = e.timedAsk(t, fmt.Sprintf("w%d.keytrap.test.", attackNames+i+1), dns.TypeA)
		}()
		go func() {
			defer wg.Done()
			legit[i] = e.ask(t, fmt.Sprintf("host%d.good.test.", attackNames+i+1), dns.TypeA, askFlags{do: true})
		}()
	}
	wg.Wait()
	spent := e.v.Stats().Verifications - before.Verifications
	for i := range attackNames {
		checkAttack(t, fmt.Sprintf("w%d (concurrent)", attackNames+i+1), attack[i])
		checkLegit(t, fmt.Sprintf("host%d.good.test. (concurrent)", attackNames+i+1), legit[i])
	}
	if limit := uint64(2*attackNames) * res1Verifications; spent > limit {
		t.Errorf("%d verifications for %d concurrent queries, RES-1 allows %d", spent, 2*attackNames, limit)
	}
	t.Logf("RES-1 concurrent: %d attack + %d legitimate queries in %v, %d verifications in all",
		attackNames, attackNames, time.Since(start), spent)
}

// TestHighIterationNSEC3DenialsAreInsecureWithinTheHashCap is RES-2:
// random-subdomain NXDOMAIN queries into zones whose NSEC3 chains use 150
// and 2,500 iterations are answered Insecure (no AD, not SERVFAIL, EDE 27)
// with at most 600 NSEC3 hashes per query.
func TestHighIterationNSEC3DenialsAreInsecureWithinTheHashCap(t *testing.T) {
	w := attackWorld(t)
	for _, zone := range []string{"it150.test.", "it2500.test."} {
		t.Run(strings.TrimSuffix(zone, "."), func(t *testing.T) {
			e := w.resolver(t)
			var maxHashes uint64
			var took []time.Duration
			for i := range 50 {
				name := fmt.Sprintf("r%04x-%d.%s", i*7919, i, zone)
				a := e.timedAsk(t, name, dns.TypeA)
				ede := edeOf(a.m)
				if a.m.Rcode != dns.RcodeNameError || a.m.AuthenticatedData || ede == nil ||
					ede.InfoCode != dns.ExtendedErrorCodeUnsupportedNSEC3IterValue {
					t.Fatalf("%s: %s AD=%v EDE %v, want Insecure NXDOMAIN with EDE 27", name,
						dns.RcodeToString[a.m.Rcode], a.m.AuthenticatedData, ede)
				}
				if a.hashes > res2Hashes {
					t.Errorf("%s: %d NSEC3 hashes, RES-2 allows %d", name, a.hashes, res2Hashes)
				}
				maxHashes, took = max(maxHashes, a.hashes), append(took, a.took)
			}
			t.Logf("RES-2 %s: 50 random-subdomain NXDOMAINs, at most %d hashes each, latency p50 %v max %v",
				zone, maxHashes, e2ePercentile(took, 50), e2ePercentile(took, 100))
			if m := e.ask(t, "host1."+zone, dns.TypeA, askFlags{do: true}); m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData {
				t.Errorf("host1.%s: %s AD=%v, want the zone's positive answers still Secure", zone,
					dns.RcodeToString[m.Rcode], m.AuthenticatedData)
			}
		})
	}
}
