package simnet

import (
	"crypto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const signedZone = `
www      300 IN A     192.0.2.1
*.wild   300 IN A     192.0.2.7
leaf.ent 300 IN A     192.0.2.10
insecure 300 IN NS    ns.insecure
ns.insecure 300 IN A  192.0.2.53
secure   300 IN NS    ns.secure
secure   300 IN DS    12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.secure 300 IN A    192.0.2.54
`

// signedHierarchy serves example.test., signed in Go with opts, at 127.53.1.1.
func signedHierarchy(t testing.TB, opts SignOptions) (*Hierarchy, *dns.DNSKEY) {
	t.Helper()
	h := NewHierarchy(InstantTimeouts())
	z := h.Zone("example.test.", []string{"127.53.1.1"}, signedZone)
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	opts.Inception, opts.Expiration = 1_700_000_000, 2_000_000_000
	if err := Sign(z, key, priv.(crypto.Signer), opts); err != nil {
		t.Fatal(err)
	}
	return h, key
}

// verifySigs checks every RRSIG in the reply against key and that every
// RRset in answer and authority is signed.
func verifySigs(t *testing.T, key *dns.DNSKEY, r *dns.Msg) {
	t.Helper()
	for _, sec := range [][]dns.RR{r.Answer, r.Ns} {
		signed := map[string]bool{}
		for _, rr := range sec {
			sig, ok := rr.(*dns.RRSIG)
			if !ok {
				continue
			}
			var set []dns.RR
			for _, o := range sec {
				if o.Header().Rrtype == sig.TypeCovered && strings.EqualFold(o.Header().Name, sig.Hdr.Name) {
					set = append(set, o)
				}
			}
			if err := sig.Verify(key, set); err != nil {
				t.Errorf("RRSIG over %s/%s does not verify: %v", sig.Hdr.Name, dns.TypeToString[sig.TypeCovered], err)
			}
			signed[strings.ToLower(sig.Hdr.Name)+dns.TypeToString[sig.TypeCovered]] = true
		}
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype != dns.TypeRRSIG && h.Rrtype != dns.TypeNS && !signed[strings.ToLower(h.Name)+dns.TypeToString[h.Rrtype]] {
				t.Errorf("%s/%s is not signed", h.Name, dns.TypeToString[h.Rrtype])
			}
		}
	}
}

func nsecs(rrs []dns.RR) (n []*dns.NSEC, n3 []*dns.NSEC3) {
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.NSEC:
			n = append(n, v)
		case *dns.NSEC3:
			n3 = append(n3, v)
		}
	}
	return n, n3
}

// nsecCovers checks coverage independently of the server's code, with
// miekg's canonical comparison of names.
func nsecCovers(list []*dns.NSEC, name string) bool {
	for _, n := range list {
		if canonicalCompare(strings.ToLower(n.Hdr.Name), name) < 0 &&
			(canonicalCompare(name, strings.ToLower(n.NextDomain)) < 0 || n.NextDomain == "example.test.") {
			return true
		}
	}
	return false
}

func nsecMatches(list []*dns.NSEC, name string, without uint16) bool {
	for _, n := range list {
		if strings.EqualFold(n.Hdr.Name, name) {
			for _, t := range n.TypeBitMap {
				if t == without {
					return false
				}
			}
			return true
		}
	}
	return false
}

func nsec3Has(list []*dns.NSEC3, match bool, name string) bool {
	for _, n := range list {
		if match && n.Match(name) || !match && n.Cover(name) {
			return true
		}
	}
	return false
}

type proofCase struct {
	name, qname string
	qtype       uint16
	rcode       int
	answer      string
	nsec        func(n []*dns.NSEC) bool
	nsec3       func(n []*dns.NSEC3) bool
}

var proofCases = []proofCase{
	{name: "PositiveAnswerIsSigned", qname: "www.example.test.", qtype: dns.TypeA, answer: "www.example.test./A www.example.test./RRSIG"},
	{name: "NXDomainDeniesNameAndWildcard", qname: "nope.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
		nsec: func(n []*dns.NSEC) bool {
			return nsecCovers(n, "nope.example.test.") && nsecCovers(n, "*.example.test.")
		},
		nsec3: func(n []*dns.NSEC3) bool {
			return nsec3Has(n, true, "example.test.") && nsec3Has(n, false, "nope.example.test.") && nsec3Has(n, false, "*.example.test.")
		}},
	{name: "NoDataMatchesTheNameWithoutTheType", qname: "www.example.test.", qtype: dns.TypeMX,
		nsec:  func(n []*dns.NSEC) bool { return nsecMatches(n, "www.example.test.", dns.TypeMX) },
		nsec3: func(n []*dns.NSEC3) bool { return nsec3Has(n, true, "www.example.test.") }},
	{name: "EmptyNonTerminalNoData", qname: "ent.example.test.", qtype: dns.TypeA,
		nsec:  func(n []*dns.NSEC) bool { return nsecCovers(n, "ent.example.test.") },
		nsec3: func(n []*dns.NSEC3) bool { return nsec3Has(n, true, "ent.example.test.") }},
	{name: "WildcardAnswerProvesNoCloserMatch", qname: "x.wild.example.test.", qtype: dns.TypeA, answer: "x.wild.example.test./A x.wild.example.test./RRSIG",
		nsec:  func(n []*dns.NSEC) bool { return nsecCovers(n, "x.wild.example.test.") },
		nsec3: func(n []*dns.NSEC3) bool { return nsec3Has(n, false, "x.wild.example.test.") }},
	{name: "WildcardNoDataProvesBoth", qname: "x.wild.example.test.", qtype: dns.TypeMX,
		nsec: func(n []*dns.NSEC) bool {
			return nsecCovers(n, "x.wild.example.test.") && nsecMatches(n, "*.wild.example.test.", dns.TypeMX)
		},
		nsec3: func(n []*dns.NSEC3) bool {
			return nsec3Has(n, true, "wild.example.test.") && nsec3Has(n, false, "x.wild.example.test.") && nsec3Has(n, true, "*.wild.example.test.")
		}},
	{name: "ReferralToUnsignedChildProvesNoDS", qname: "www.insecure.example.test.", qtype: dns.TypeA,
		nsec:  func(n []*dns.NSEC) bool { return nsecMatches(n, "insecure.example.test.", dns.TypeDS) },
		nsec3: func(n []*dns.NSEC3) bool { return nsec3ProvesNoDS(n, "insecure.example.test.") }},
}

// nsec3ProvesNoDS accepts an NSEC3 matching the cut without the DS bit, or
// under opt-out the closest encloser proof whose covering NSEC3 has the
// opt-out flag (RFC 5155 §7.2.7 and §8.6).
func nsec3ProvesNoDS(list []*dns.NSEC3, cut string) bool {
	for _, n := range list {
		if n.Match(cut) {
			for _, t := range n.TypeBitMap {
				if t == dns.TypeDS {
					return false
				}
			}
			return true
		}
	}
	for _, n := range list {
		if n.Cover(cut) && n.Flags&1 == 1 {
			return nsec3Has(list, true, parent(cut))
		}
	}
	return false
}

func TestDNSSECProofs(t *testing.T) {
	for _, variant := range []struct {
		name string
		opts SignOptions
	}{{"NSEC", SignOptions{}}, {"NSEC3", SignOptions{NSEC3: true, Iterations: 0, Salt: "aabb"}},
		{"NSEC3OptOut", SignOptions{NSEC3: true, OptOut: true}}} {
		h, key := signedHierarchy(t, variant.opts)
		for _, c := range proofCases {
			t.Run(variant.name+"/"+c.name, func(t *testing.T) {
				r := exchange(t, h.Net, "127.53.1.1", query(c.qname, c.qtype, true), false)
				if r.Rcode != c.rcode {
					t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
				}
				if summary(r.Answer) != c.answer {
					t.Errorf("answer %q, want %q", summary(r.Answer), c.answer)
				}
				verifySigs(t, key, r)
				n, n3 := nsecs(r.Ns)
				if variant.opts.NSEC3 && c.nsec3 != nil && !c.nsec3(n3) {
					t.Errorf("NSEC3 proof incomplete: %v", r.Ns)
				}
				if !variant.opts.NSEC3 && c.nsec != nil && !c.nsec(n) {
					t.Errorf("NSEC proof incomplete: %v", r.Ns)
				}
			})
		}
	}
}

func TestReferralToSignedChildCarriesSignedDS(t *testing.T) {
	h, key := signedHierarchy(t, SignOptions{})
	r := exchange(t, h.Net, "127.53.1.1", query("www.secure.example.test.", dns.TypeA, true), false)
	if got := summary(r.Ns); got != "secure.example.test./NS secure.example.test./DS secure.example.test./RRSIG" {
		t.Fatalf("authority %q", got)
	}
	verifySigs(t, key, r)
}

func TestNoDNSSECRecordsWithoutDO(t *testing.T) {
	h, _ := signedHierarchy(t, SignOptions{NSEC3: true})
	r := exchange(t, h.Net, "127.53.1.1", query("nope.example.test.", dns.TypeA, false), false)
	if summary(r.Ns) != "example.test./SOA" {
		t.Fatalf("authority %q, want only the SOA", summary(r.Ns))
	}
}

// TestLdnsSignedZoneIsServedWithProofs serves a zone signed by ldns-signzone
// with NSEC3 opt-out (ldns keeps an NSEC3 for the unsigned delegation).
func TestLdnsSignedZoneIsServedWithProofs(t *testing.T) {
	if _, err := exec.LookPath("ldns-signzone"); err != nil {
		t.Skip("ldns-signzone not installed")
	}
	dir := t.TempDir()
	zoneText := "$ORIGIN example.test.\n@ 3600 IN SOA ns1 hostmaster 1 3600 900 604800 300\n@ 3600 IN NS ns1\nns1 3600 IN A 127.53.1.1\n" + signedZone
	zf := filepath.Join(dir, "example.test.zone")
	if err := os.WriteFile(zf, []byte(zoneText), 0o600); err != nil {
		t.Fatal(err)
	}
	keygen := exec.Command("ldns-keygen", "-a", "ECDSAP256SHA256", "-k", "example.test.")
	keygen.Dir = dir
	out, err := keygen.CombinedOutput()
	if err != nil {
		t.Fatalf("ldns-keygen: %v %s", err, out)
	}
	base := filepath.Join(dir, strings.TrimSpace(string(out)))
	cmd := exec.Command("ldns-signzone", "-n", "-p", "-s", "beef", "-t", "0", "-f", zf+".signed", zf, base)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldns-signzone: %v %s", err, out)
	}
	signed, err := os.ReadFile(zf + ".signed")
	if err != nil {
		t.Fatal(err)
	}
	h := NewHierarchy(InstantTimeouts())
	z := h.SignedZone("example.test.", []string{"127.53.1.1"}, string(signed))
	key := z.RRset("example.test.", dns.TypeDNSKEY)[0].(*dns.DNSKEY)

	r := exchange(t, h.Net, "127.53.1.1", query("www.insecure.example.test.", dns.TypeA, true), false)
	verifySigs(t, key, r)
	if _, n3 := nsecs(r.Ns); !nsec3ProvesNoDS(n3, "insecure.example.test.") {
		t.Fatalf("no proof of no DS in %v", r.Ns)
	}
	r = exchange(t, h.Net, "127.53.1.1", query("nope.example.test.", dns.TypeA, true), false)
	if r.Rcode != dns.RcodeNameError {
		t.Fatalf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	verifySigs(t, key, r)
	// ldns-signzone writes next hashes in lower case; the proof must
	// still be found and served.
	if _, n3 := nsecs(r.Ns); !nsec3Has(n3, false, "nope.example.test.") {
		t.Fatalf("no NSEC3 covers nope.example.test. in %v", r.Ns)
	}
}
