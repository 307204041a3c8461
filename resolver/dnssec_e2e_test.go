package resolver

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/bulwark-dns/bulwark/resolver/transport"
	"github.com/bulwark-dns/bulwark/validate"
)

// End-to-end DNSSEC evidence for issue #4: signed hierarchies (root, test.,
// example.test.) served by simnet and resolved through (*Resolver).Answer
// with the real validator. The leaf is signed in Go (simnet.Sign), by
// ldns-signzone and by dnssec-signzone; the broken variants are made by the
// signer (dates, keys) or by a server that edits its honest replies.

// Server addresses of the e2e hierarchy (in memory, never on the wire).
const (
	e2eRootAddr     = "127.56.0.1"
	e2eTLDAddr      = "127.56.0.2"
	e2eLeafAddr     = "127.56.1.1"
	e2eOtherAddr    = "127.56.2.1"
	e2eInsecureAddr = "127.56.3.1"
)

// e2eNow is the virtual time of every e2e resolver and validator.
var e2eNow = time.Unix(1_800_000_000, 0).UTC()

const e2eDay = 24 * time.Hour

// sigWindow is a signature validity period. The validator allows 10% of the
// window, at most a day, of clock skew, so the broken windows miss the
// clock by two days.
type sigWindow struct{ inception, expiration time.Time }

var (
	validWindow   = sigWindow{e2eNow.Add(-30 * e2eDay), e2eNow.Add(30 * e2eDay)}
	expiredWindow = sigWindow{e2eNow.Add(-40 * e2eDay), e2eNow.Add(-2 * e2eDay)}
	futureWindow  = sigWindow{e2eNow.Add(2 * e2eDay), e2eNow.Add(40 * e2eDay)}
)

type signMode struct {
	name          string
	nsec3, optOut bool
}

var (
	signModes = []signMode{{"NSEC", false, false}, {"NSEC3", true, false}, {"NSEC3OptOut", true, true}}
	signAlgs  = []uint8{dns.RSASHA256, dns.ECDSAP256SHA256, dns.ED25519}
	signers   = []string{"go", "ldns-signzone", "dnssec-signzone"}
)

// needSigner skips a test whose external signer is missing, unless
// BULWARK_E2E=require (CI) makes that a failure.
func needSigner(t *testing.T, signer string) {
	t.Helper()
	if signer == "go" {
		return
	}
	if _, err := exec.LookPath(signer); err != nil {
		if os.Getenv("BULWARK_E2E") == "require" {
			t.Fatalf("%s is required (BULWARK_E2E=require) but missing: %v", signer, err)
		}
		t.Skipf("%s not installed; set BULWARK_E2E=require to make this a failure", signer)
	}
}

type goKey = simnet.Key

// goKeyFor returns a key of alg for owner, generated once per test binary
// under label.
func goKeyFor(t testing.TB, label, owner string, alg uint8) goKey {
	t.Helper()
	k, err := simnet.CachedKey(label, owner, alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signGo signs zone text with simnet.Sign and one combined key.
func signGo(t testing.TB, origin, text string, key goKey, mode signMode, win sigWindow) string {
	t.Helper()
	z, err := simnet.ParseZone(origin, text)
	if err != nil {
		t.Fatal(err)
	}
	opts := simnet.SignOptions{NSEC3: mode.nsec3, OptOut: mode.optOut, Salt: "beef",
		Inception: uint32(win.inception.Unix()), Expiration: uint32(win.expiration.Unix())}
	if err := simnet.Sign(z, key.RR, key.Priv, opts); err != nil {
		t.Fatal(err)
	}
	return zoneText(z.Records())
}

func zoneText(rrs []dns.RR) string {
	var b strings.Builder
	for _, rr := range rrs {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// runTool runs an external signer (simnet.RunSigner).
func runTool(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	out, err := simnet.RunSigner(dir, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readKSK reads the SEP key from the .key files in dir.
func readKSK(t testing.TB, dir string) *dns.DNSKEY {
	t.Helper()
	k, err := simnet.ReadKSK(dir)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const toolStamp = "20060102150405"

// signLdns signs with ldns-keygen and ldns-signzone; it returns the signed
// text and the KSK.
func signLdns(t testing.TB, origin, text string, alg uint8, mode signMode, win sigWindow) (string, *dns.DNSKEY) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "zone"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	gen := []string{"-a", dns.AlgorithmToString[alg], "-k"}
	if alg == dns.RSASHA256 {
		gen = append(gen, "-b", "2048")
	}
	base := runTool(t, dir, "ldns-keygen", append(gen, origin)...)
	sign := []string{"-i", win.inception.Format(toolStamp), "-e", win.expiration.Format(toolStamp), "-f", "signed"}
	if mode.nsec3 {
		sign = append(sign, "-n", "-s", "beef", "-t", "0")
	}
	if mode.optOut {
		sign = append(sign, "-p")
	}
	runTool(t, dir, "ldns-signzone", append(sign, "zone", base)...)
	return upperNSEC3(t, origin, filepath.Join(dir, "signed")), readKSK(t, dir)
}

// upperNSEC3 reads a signed zone file and writes NSEC3 next hashes and
// salts in upper case, as they come off the wire. ldns-signzone prints
// them in lower case, and simnet compares the next hash with its upper-case
// hashes as strings, so it would find no covering NSEC3 (a simnet bug; the
// wire bytes, and so the signatures, are the same either way).
func upperNSEC3(t testing.TB, origin, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zp := dns.NewZoneParser(strings.NewReader(string(b)), origin, path)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if n, isN3 := rr.(*dns.NSEC3); isN3 {
			n.NextDomain, n.Salt = strings.ToUpper(n.NextDomain), strings.ToUpper(n.Salt)
		}
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return zoneText(rrs)
}

// signBind signs with dnssec-keygen (a KSK and a ZSK) and dnssec-signzone.
func signBind(t testing.TB, origin, text string, alg uint8, mode signMode, win sigWindow) (string, *dns.DNSKEY) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "zone"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	gen := []string{"-q", "-K", ".", "-a", dns.AlgorithmToString[alg], "-n", "ZONE"}
	if alg == dns.RSASHA256 {
		gen = append(gen, "-b", "2048")
	}
	runTool(t, dir, "dnssec-keygen", append(append(gen, "-f", "KSK"), origin)...)
	runTool(t, dir, "dnssec-keygen", append(gen, origin)...)
	sign := []string{"-P", "-S", "-K", ".", "-s", win.inception.Format(toolStamp), "-e", win.expiration.Format(toolStamp),
		"-o", origin, "-f", "signed"}
	if mode.nsec3 {
		sign = append(sign, "-3", "beef", "-H", "0")
	}
	if mode.optOut {
		sign = append(sign, "-A")
	}
	runTool(t, dir, "dnssec-signzone", append(sign, "zone")...)
	return upperNSEC3(t, origin, filepath.Join(dir, "signed")), readKSK(t, dir)
}

// leafSpec says how example.test. is signed and what its parent says of it.
type leafSpec struct {
	signer string
	alg    uint8
	mode   signMode
	win    sigWindow
	// orphanKey, when set, joins the DNSKEY RRset without signing anything
	// and is the only key the parent's DS names.
	orphanKey *dns.DNSKEY
	// wrongDS makes the parent publish the DS of a key the leaf never had.
	wrongDS bool
}

const leafText = `$ORIGIN example.test.
$TTL 300
@        3600 IN SOA ns1 hostmaster 1 3600 900 604800 300
@        3600 IN NS  ns1
ns1           IN A     127.56.1.1
ns1           IN AAAA  fd00:56::1:1
www           IN A     192.0.2.1
www           IN AAAA  2001:db8::1
*.wild        IN A     192.0.2.7
*.cn          IN CNAME www
leaf.ent      IN A     192.0.2.10
alias         IN CNAME www.other.test.
old           IN DNAME other.test.
zero        0 IN DNAME other.test.
insecure      IN NS    ns.insecure
ns.insecure   IN A     127.56.3.1
`

// signLeaf returns the signed leaf text and the DS set its parent holds.
func signLeaf(t testing.TB, s leafSpec) (string, []dns.RR) {
	t.Helper()
	text := leafText
	if s.orphanKey != nil {
		text += s.orphanKey.String() + "\n"
	}
	var signed string
	var ksk *dns.DNSKEY
	switch s.signer {
	case "go":
		k := goKeyFor(t, "leaf", "example.test.", s.alg)
		signed, ksk = signGo(t, "example.test.", text, k, s.mode, s.win), k.RR
	case "ldns-signzone":
		signed, ksk = signLdns(t, "example.test.", text, s.alg, s.mode, s.win)
	case "dnssec-signzone":
		signed, ksk = signBind(t, "example.test.", text, s.alg, s.mode, s.win)
	default:
		t.Fatalf("unknown signer %q", s.signer)
	}
	switch {
	case s.orphanKey != nil:
		ksk = s.orphanKey
	case s.wrongDS:
		ksk = goKeyFor(t, "stranger", "example.test.", s.alg).RR
	}
	return signed, []dns.RR{ksk.ToDS(dns.SHA256)}
}

// e2eWorld is a signed hierarchy and its trust anchor.
type e2eWorld struct {
	h       *simnet.Hierarchy
	anchors []dns.RR
	leaf    *simnet.Zone
}

// buildE2E signs the leaf as s says and the rest in Go with the same
// algorithm and denial mode (the root with NSEC, see signedRoot): the
// root, test. (delegating example.test. and other.test.), other.test.
// (target of a cross-zone CNAME), and an unsigned insecure.example.test.
func buildE2E(t testing.TB, s leafSpec) *e2eWorld {
	t.Helper()
	leaf, leafDS := signLeaf(t, s)
	otherKey := goKeyFor(t, "other", "other.test.", s.alg)
	other := signGo(t, "other.test.", `$ORIGIN other.test.
@   3600 IN SOA ns hostmaster 1 3600 900 604800 300
@   3600 IN NS  ns
ns  3600 IN A   `+e2eOtherAddr+`
www  300 IN A   192.0.2.2
`, otherKey, s.mode, validWindow)
	tldKey := goKeyFor(t, "tld", "test.", s.alg)
	tld := signGo(t, "test.", `$ORIGIN test.
@            3600 IN SOA ns.nic hostmaster 1 3600 900 604800 300
@            3600 IN NS  ns.nic
ns.nic       3600 IN A   `+e2eTLDAddr+`
example      3600 IN NS  ns1.example
ns1.example  3600 IN A   `+e2eLeafAddr+`
other        3600 IN NS  ns.other
ns.other     3600 IN A   `+e2eOtherAddr+`
`+zoneText(append(leafDS, otherKey.RR.ToDS(dns.SHA256))), tldKey, s.mode, validWindow)
	root, rootKey := signedRoot(t, s.alg, tldKey)

	h := simnet.NewHierarchy(simnet.InstantTimeouts())
	h.SignedZone(".", []string{e2eRootAddr}, root)
	h.SignedZone("test.", []string{e2eTLDAddr}, tld)
	w := &e2eWorld{h: h, anchors: []dns.RR{rootKey.RR.ToDS(dns.SHA256)}}
	w.leaf = h.SignedZone("example.test.", []string{e2eLeafAddr}, leaf)
	h.SignedZone("other.test.", []string{e2eOtherAddr}, other)
	h.ZoneWithNS("insecure.example.test.", map[string][]string{"ns.insecure.example.test.": {e2eInsecureAddr}},
		"www 300 A 192.0.2.99\n")
	return w
}

// signedRoot returns the root zone, signed with NSEC as the real one is,
// delegating test. to the e2e TLD server under tldKey's DS, and its key.
func signedRoot(t testing.TB, alg uint8, tldKey goKey) (string, goKey) {
	rootKey := goKeyFor(t, "root", ".", alg)
	return signGo(t, ".", `
.                 86400 IN SOA a.root-servers. hostmaster.root-servers. 1 3600 900 604800 300
.                 86400 IN NS  a.root-servers.
a.root-servers.   86400 IN A   `+e2eRootAddr+`
test.             86400 IN NS  ns.nic.test.
ns.nic.test.      86400 IN A   `+e2eTLDAddr+`
`+tldKey.RR.ToDS(dns.SHA256).String()+"\n", rootKey, signModes[0], validWindow), rootKey
}

// e2eResolver is a cold resolver over w with a validator on the same
// virtual clock, anchored at w's root, with RFC 8198 on as in the daemon.
type e2eResolver struct {
	r     *Resolver
	v     *validate.Validator
	clock *simnet.Clock
}

func (w *e2eWorld) resolver(t testing.TB) *e2eResolver {
	t.Helper()
	return w.resolverWith(t, func(*Config) {})
}

// resolverWith is resolver with mod applied to the resolver's Config.
func (w *e2eWorld) resolverWith(t testing.TB, mod func(*Config)) *e2eResolver {
	t.Helper()
	clock := simnet.NewClock(e2eNow)
	v, err := validate.New(validate.Config{Clock: clock, Anchors: w.anchors, AggressiveNSEC: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.RootHints = w.h.RootHints()
	cfg.DoIPv6 = false
	mod(&cfg)
	ex := transport.NewExchanger(w.h.Net, transport.Config{}, nil)
	r, err := New(cfg, Deps{Exchanger: ex, Clock: clock, Validator: v,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	return &e2eResolver{r: r, v: v, clock: clock}
}

// askFlags are the client's header bits and EDNS DO.
type askFlags struct{ do, cd, ad, noEDNS bool }

func (e *e2eResolver) ask(t testing.TB, name string, qtype uint16, f askFlags) *dns.Msg {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	req.CheckingDisabled, req.AuthenticatedData = f.cd, f.ad
	if !f.noEDNS {
		req.SetEdns0(1232, f.do)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.r.Answer(ctx, req)
}

// upstreamQueries counts the queries every server of h has received.
func upstreamQueries(h *simnet.Hierarchy) int {
	n := 0
	for _, s := range h.Net.Servers() {
		n += s.QueryCount()
	}
	return n
}

// tamper makes the server at addr compute its honest reply and lets edit
// change the question asked or the reply sent: a middlebox that strips
// records, or an on-path attacker replaying signed data. honest answers
// any query as the server's zones would.
func tamper(t testing.TB, h *simnet.Hierarchy, addr string, edit func(q *dns.Msg, honest func(*dns.Msg) *dns.Msg) *dns.Msg) {
	t.Helper()
	srv := h.Server(addr)
	srv.Update(func(k *simnet.Knobs) {
		k.Handler = func(q *dns.Msg, tcp bool) *dns.Msg {
			return edit(q, func(ask *dns.Msg) *dns.Msg { return srv.Honest(ask, tcp) })
		}
	})
}

// stripDenial removes NSEC and NSEC3 records and their RRSIGs from the
// authority section of replies for names at or under below.
func stripDenial(below string) func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg {
	return func(q *dns.Msg, honest func(*dns.Msg) *dns.Msg) *dns.Msg {
		m := honest(q)
		if m == nil || !dns.IsSubDomain(below, strings.ToLower(q.Question[0].Name)) {
			return m
		}
		m.Ns = dropRRs(m.Ns, func(rr dns.RR) bool {
			t := coveredOrType(rr)
			return t == dns.TypeNSEC || t == dns.TypeNSEC3
		})
		return m
	}
}

// editAnswerSigs applies edit to the answer section's RRSIGs over qtype
// at name (edit returns nil to drop one).
func editAnswerSigs(name string, qtype uint16, edit func(*dns.RRSIG) dns.RR) func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg {
	return func(q *dns.Msg, honest func(*dns.Msg) *dns.Msg) *dns.Msg {
		m := honest(q)
		if m == nil {
			return m
		}
		var out []dns.RR
		for _, rr := range m.Answer {
			if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == qtype && strings.EqualFold(sig.Hdr.Name, name) {
				rr = edit(sig)
			}
			if rr != nil {
				out = append(out, rr)
			}
		}
		m.Answer = out
		return m
	}
}

// flipSignature inverts one byte in the middle of the signature.
func flipSignature(sig *dns.RRSIG) dns.RR {
	b, _ := base64.StdEncoding.DecodeString(sig.Signature)
	b[len(b)/2] ^= 0xff
	sig.Signature = base64.StdEncoding.EncodeToString(b)
	return sig
}

// replayDenial answers queries for name with the server's (signed, valid)
// denial of decoy: a proof for the wrong name, as an attacker who recorded
// one would send it.
func replayDenial(name, decoy string) func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg {
	return func(q *dns.Msg, honest func(*dns.Msg) *dns.Msg) *dns.Msg {
		if !strings.EqualFold(q.Question[0].Name, name) {
			return honest(q)
		}
		ask := q.Copy()
		ask.Question[0].Name = decoy
		m := honest(ask)
		if m != nil {
			m.Question = q.Question
		}
		return m
	}
}

func coveredOrType(rr dns.RR) uint16 {
	if sig, ok := rr.(*dns.RRSIG); ok {
		return sig.TypeCovered
	}
	return rr.Header().Rrtype
}

func dropRRs(rrs []dns.RR, drop func(dns.RR) bool) []dns.RR {
	out := rrs[:0:0]
	for _, rr := range rrs {
		if !drop(rr) {
			out = append(out, rr)
		}
	}
	return out
}

// decoyFor returns a name in the leaf whose NXDOMAIN proof does not cover
// victim: the NSEC3 covering its hash (or, with NSEC, the NSEC before it)
// leaves victim's hash (or name) outside.
func decoyFor(t testing.TB, z *simnet.Zone, victim string) string {
	t.Helper()
	var n3 []*dns.NSEC3
	for _, rr := range z.Records() {
		if v, ok := rr.(*dns.NSEC3); ok {
			n3 = append(n3, v)
		}
	}
	if len(n3) == 0 {
		// Canonically "aaa" sorts between the apex and "alias", so the
		// apex NSEC alone denies it; victim lies elsewhere in the chain.
		return "aaa.example.test."
	}
	for i := range 500 {
		decoy := fmt.Sprintf("decoy%d.example.test.", i)
		for _, n := range n3 {
			if n.Cover(decoy) && !n.Cover(victim) {
				return decoy
			}
		}
	}
	t.Fatalf("no decoy among 500 names whose NSEC3 misses %s", victim)
	return ""
}

// answerData is the answer section without RRSIGs, as answerText prints it.
func answerData(m *dns.Msg) string {
	c := m.Copy()
	c.Answer = dropRRs(c.Answer, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeRRSIG })
	return answerText(c)
}

// e2eCase is one correct answer of the signed hierarchy.
type e2eCase struct {
	name   string
	qname  string
	qtype  uint16
	rcode  int
	answer string
	// secure is the AD bit expected. optOutInsecure: under NSEC3 opt-out
	// the span that denies the name could hold an unsigned delegation, so
	// the answer is Insecure (RFC 5155 §9.2, as Unbound; docs/dnssec.md).
	secure, optOutInsecure bool
}

var secureCases = []e2eCase{
	{"PositiveAnswerIsSecure", "www.example.test.", dns.TypeA, dns.RcodeSuccess, "www.example.test. A 192.0.2.1", true, false},
	{"NXDOMAINIsSecure", "nope.example.test.", dns.TypeA, dns.RcodeNameError, "", true, true},
	{"NODATAIsSecure", "www.example.test.", dns.TypeMX, dns.RcodeSuccess, "", true, false},
	{"EmptyNonTerminalNODATAIsSecure", "ent.example.test.", dns.TypeA, dns.RcodeSuccess, "", true, false},
	{"WildcardAnswerIsSecure", "x.wild.example.test.", dns.TypeA, dns.RcodeSuccess, "x.wild.example.test. A 192.0.2.7", true, true},
	{"CNAMEAcrossZonesIsSecure", "alias.example.test.", dns.TypeA, dns.RcodeSuccess,
		"alias.example.test. CNAME www.other.test.; www.other.test. A 192.0.2.2", true, false},
	{"InsecureDelegationWithNoDSProofIsNOERRORWithoutAD", "www.insecure.example.test.", dns.TypeA, dns.RcodeSuccess,
		"www.insecure.example.test. A 192.0.2.99", false, false},
}

// bogusCase is one broken variant: signed wrongly (spec) or served
// edited (edit, on the leaf's server). Each must be SERVFAIL with ede.
type bogusCase struct {
	name         string
	spec         func(t testing.TB, s *leafSpec)
	edit         func(t testing.TB, w *e2eWorld) func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg
	qname        string
	qtype        uint16
	ede          uint16
	nsecOnlyName string // the NSEC variant's name, when it differs
}

func otherAlg(alg uint8) uint8 {
	if alg == dns.ED25519 {
		return dns.ECDSAP256SHA256
	}
	return dns.ED25519
}

var bogusCases = []bogusCase{
	{name: "ExpiredSignatureIsEDE7", spec: func(_ testing.TB, s *leafSpec) { s.win = expiredWindow },
		qname: "www.example.test.", qtype: dns.TypeA, ede: dns.ExtendedErrorCodeSignatureExpired},
	{name: "NotYetValidSignatureIsEDE8", spec: func(_ testing.TB, s *leafSpec) { s.win = futureWindow },
		qname: "www.example.test.", qtype: dns.TypeA, ede: dns.ExtendedErrorCodeSignatureNotYetValid},
	{name: "DSMatchingNoKeyIsEDE9", spec: func(_ testing.TB, s *leafSpec) { s.wrongDS = true },
		qname: "www.example.test.", qtype: dns.TypeA, ede: dns.ExtendedErrorCodeDNSKEYMissing},
	{name: "AlgorithmInDSWithoutSignatureIsEDE10", spec: func(t testing.TB, s *leafSpec) {
		s.orphanKey = goKeyFor(t, "orphan", "example.test.", otherAlg(s.alg)).RR
	}, qname: "www.example.test.", qtype: dns.TypeA, ede: dns.ExtendedErrorCodeRRSIGsMissing},
	{name: "RRSIGRemovedIsEDE10", edit: func(testing.TB, *e2eWorld) func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg {
		return editAnswerSigs("www.example.test.", dns.TypeA, func(*dns.RRSIG) dns.RR { return nil })
	}, qname: "www.example.test.", qtype: dns.TypeA, ede: dns.ExtendedErrorCodeRRSIGsMissing},
	{name: "FlippedSignatureBytesIsEDE6", edit: func(testing.TB, *e2eWorld) func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg {
		return editAnswerSigs("www.example.test.", dns.TypeA, flipSignature)
	}, qname: "www.example.test.", qtype: dns.TypeA, ede: dns.ExtendedErrorCodeDNSBogus},
	{name: "NSECProofRemovedIsEDE12", edit: func(testing.TB, *e2eWorld) func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg {
		return stripDenial("nope.example.test.")
	}, qname: "nope.example.test.", qtype: dns.TypeA, ede: dns.ExtendedErrorCodeNSECMissing},
	{name: "WrongNSEC3HashIsEDE6", nsecOnlyName: "NSECOfAnotherNameIsEDE6",
		edit: func(t testing.TB, w *e2eWorld) func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg {
			return replayDenial("nope.example.test.", decoyFor(t, w.leaf, "nope.example.test."))
		}, qname: "nope.example.test.", qtype: dns.TypeA, ede: dns.ExtendedErrorCodeDNSBogus},
	{name: "UnsignedChildWithoutNoDSProofIsEDE12", edit: func(testing.TB, *e2eWorld) func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg {
		return stripDenial("insecure.example.test.")
	}, qname: "www.insecure.example.test.", qtype: dns.TypeA, ede: dns.ExtendedErrorCodeNSECMissing},
}

// forEachSigning runs f for every signer, algorithm and denial mode.
func forEachSigning(t *testing.T, f func(t *testing.T, s leafSpec)) {
	for _, signer := range signers {
		t.Run(signer, func(t *testing.T) {
			needSigner(t, signer)
			for _, alg := range signAlgs {
				for _, mode := range signModes {
					t.Run(dns.AlgorithmToString[alg]+"/"+mode.name, func(t *testing.T) {
						f(t, leafSpec{signer: signer, alg: alg, mode: mode, win: validWindow})
					})
				}
			}
		})
	}
}

func TestSignedHierarchyAnswersAreSecureThroughTheResolver(t *testing.T) {
	forEachSigning(t, func(t *testing.T, s leafSpec) {
		w := buildE2E(t, s)
		for _, c := range secureCases {
			t.Run(c.name, func(t *testing.T) {
				e := w.resolver(t)
				wantAD := c.secure && !(c.optOutInsecure && s.mode.optOut)
				for _, round := range []string{"cold", "cached"} {
					m := e.ask(t, c.qname, c.qtype, askFlags{do: true})
					if m.Rcode != c.rcode || m.AuthenticatedData != wantAD || answerData(m) != c.answer {
						t.Fatalf("%s: %s AD=%v %q (EDE %v), want %s AD=%v %q", round, dns.RcodeToString[m.Rcode],
							m.AuthenticatedData, answerData(m), edeOf(m), dns.RcodeToString[c.rcode], wantAD, c.answer)
					}
				}
			})
		}
	})
}

func TestBrokenSignedZonesAreServfailWithTheirEDE(t *testing.T) {
	forEachSigning(t, func(t *testing.T, s leafSpec) {
		good := buildE2E(t, s)
		for _, c := range bogusCases {
			name := c.name
			if !s.mode.nsec3 && c.nsecOnlyName != "" {
				name = c.nsecOnlyName
			}
			t.Run(name, func(t *testing.T) {
				w := good
				if c.spec != nil {
					spec := s
					c.spec(t, &spec)
					w = buildE2E(t, spec)
				}
				if c.edit != nil {
					tamper(t, w.h, e2eLeafAddr, c.edit(t, w))
					defer w.h.Server(e2eLeafAddr).Update(func(k *simnet.Knobs) { k.Handler = nil })
				}
				m := w.resolver(t).ask(t, c.qname, c.qtype, askFlags{do: true})
				ede := edeOf(m)
				if m.Rcode != dns.RcodeServerFailure || ede == nil || ede.InfoCode != c.ede {
					t.Fatalf("%s %v, want SERVFAIL with EDE %d", dns.RcodeToString[m.Rcode], ede, c.ede)
				}
				if len(m.Answer) != 0 || m.AuthenticatedData {
					t.Errorf("bogus data served: AD=%v %v", m.AuthenticatedData, m.Answer)
				}
				t.Logf("EDE %d: %s", ede.InfoCode, ede.ExtraText)
			})
		}
	})
}

func TestCheckingDisabledReturnsBogusDataUnvalidated(t *testing.T) {
	w := buildE2E(t, leafSpec{signer: "go", alg: dns.ECDSAP256SHA256, mode: signModes[0], win: expiredWindow})
	e := w.resolver(t)
	m := e.ask(t, "www.example.test.", dns.TypeA, askFlags{do: true, cd: true})
	if m.Rcode != dns.RcodeSuccess || answerData(m) != "www.example.test. A 192.0.2.1" || m.AuthenticatedData || !m.CheckingDisabled {
		t.Fatalf("CD=1: %s AD=%v CD=%v %q, want the expired data without AD", dns.RcodeToString[m.Rcode],
			m.AuthenticatedData, m.CheckingDisabled, answerData(m))
	}
	if !hasType(m.Answer, dns.TypeRRSIG) {
		t.Errorf("CD=1 with DO: the RRSIGs are missing, so the client cannot validate itself: %v", m.Answer)
	}
	if m := e.ask(t, "www.example.test.", dns.TypeA, askFlags{do: true}); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("without CD after a CD query: %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
}

func TestADIsSetOnlyForClientsThatAskForIt(t *testing.T) {
	w := buildE2E(t, leafSpec{signer: "go", alg: dns.ED25519, mode: signModes[1], win: validWindow})
	e := w.resolver(t)
	for _, c := range []struct {
		name string
		f    askFlags
		ad   bool
	}{
		{"NoDONoADWithEDNS", askFlags{}, false},
		{"NoEDNSAtAll", askFlags{noEDNS: true}, false},
		{"ADBitWithoutDO", askFlags{ad: true}, true}, // RFC 6840 §5.7
		{"DO", askFlags{do: true}, true},
		{"DOWithCD", askFlags{do: true, cd: true}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := e.ask(t, "www.example.test.", dns.TypeA, c.f)
			if m.Rcode != dns.RcodeSuccess || m.AuthenticatedData != c.ad {
				t.Fatalf("%s AD=%v, want NOERROR AD=%v", dns.RcodeToString[m.Rcode], m.AuthenticatedData, c.ad)
			}
			if !c.f.do && hasType(m.Answer, dns.TypeRRSIG) {
				t.Errorf("RRSIGs sent to a client without DO: %v", m.Answer)
			}
		})
	}
}

func TestBogusAnswerIsRepeatedFromFailureMemoryWithoutUpstreamTraffic(t *testing.T) {
	w := buildE2E(t, leafSpec{signer: "go", alg: dns.RSASHA256, mode: signModes[2], win: expiredWindow})
	e := w.resolver(t)
	first := e.ask(t, "www.example.test.", dns.TypeA, askFlags{do: true})
	if first.Rcode != dns.RcodeServerFailure {
		t.Fatalf("first: %s, want SERVFAIL", dns.RcodeToString[first.Rcode])
	}
	before, stats := upstreamQueries(w.h), e.v.Stats()
	for i := range 4 {
		e.clock.Advance(time.Second)
		m := e.ask(t, "www.example.test.", dns.TypeA, askFlags{do: true})
		if ede := edeOf(m); m.Rcode != dns.RcodeServerFailure || ede == nil || ede.InfoCode != dns.ExtendedErrorCodeSignatureExpired {
			t.Fatalf("repeat %d after %d s: %s EDE %v, want SERVFAIL with EDE 7", i, i+1, dns.RcodeToString[m.Rcode], ede)
		}
	}
	if after := upstreamQueries(w.h); after != before {
		t.Errorf("%d upstream queries for 4 repeats within 4 s, want 0", after-before)
	}
	if s := e.v.Stats(); s.Verifications != stats.Verifications {
		t.Errorf("%d signature verifications for the repeats, want 0", s.Verifications-stats.Verifications)
	}
}
