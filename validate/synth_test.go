package validate

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

func aggressive(c *Config) { c.AggressiveNSEC = true }

type synthCase struct {
	name  string
	seen  []string // "qname/TYPE" replies validated first
	qname string
	qtype uint16
	ok    bool
	rcode int
	// expanded is the type of a positive answer expanded from a
	// remembered wildcard; zero for a denial.
	expanded uint16
}

var synthCases = []synthCase{
	{name: "NXDOMAINFromTheSameProof", seen: []string{"nope.example.test./A"}, qname: "nope.example.test.", qtype: dns.TypeAAAA, ok: true, rcode: dns.RcodeNameError},
	{name: "NODATAFromAMatchingRecord", seen: []string{"www.example.test./TXT"}, qname: "www.example.test.", qtype: dns.TypeMX, ok: true, rcode: dns.RcodeSuccess},
	{name: "TypeInTheBitmapIsNotDenied", seen: []string{"www.example.test./TXT"}, qname: "www.example.test.", qtype: dns.TypeA},
	{name: "CNAMEInTheBitmapIsNotDenied", seen: []string{"alias.example.test./TXT"}, qname: "alias.example.test.", qtype: dns.TypeMX},
	{name: "NameNoRecordSpeaksForIsNotDenied", seen: []string{"nope.example.test./A"}, qname: "zzz.example.test.", qtype: dns.TypeA},
	{name: "NothingSeenNothingSynthesised", qname: "nope.example.test.", qtype: dns.TypeA},
	{name: "NameUnderAnExistingWildcardIsNotDenied", seen: []string{"x.wild.example.test./TXT", "nope.example.test./A"}, qname: "y.wild.example.test.", qtype: dns.TypeA},
	{name: "ANYAtAMatchingRecordIsNotDenied", seen: []string{"www.example.test./TXT"}, qname: "www.example.test.", qtype: dns.TypeANY},
	{name: "ANYAtAMissingNameIsNXDOMAIN", seen: []string{"nope.example.test./A"}, qname: "nope.example.test.", qtype: dns.TypeANY, ok: true, rcode: dns.RcodeNameError},
	{name: "PositiveAnswerExpandedFromARememberedWildcard", seen: []string{"x.wild.example.test./A"}, qname: "x.wild.example.test.", qtype: dns.TypeA, ok: true, expanded: dns.TypeA},
	{name: "WildcardNODATAFromTheWildcardsOwnRecord", seen: []string{"x.wild.example.test./TXT"}, qname: "x.wild.example.test.", qtype: dns.TypeMX, ok: true, rcode: dns.RcodeSuccess},
	{name: "WildcardListingTheTypeWithoutARememberedRRsetIsAskedFor", seen: []string{"x.wild.example.test./TXT"}, qname: "x.wild.example.test.", qtype: dns.TypeA},
	{name: "DSIsNeverExpandedFromAWildcard", seen: []string{"x.wild.example.test./A"}, qname: "x.wild.example.test.", qtype: dns.TypeDS},
	{name: "DelegationNSECDeniesOnlyDS", seen: []string{"www.insecure.example.test./A"}, qname: "insecure.example.test.", qtype: dns.TypeA},
}

// synthWorld validates c.seen in a fresh validator and returns it.
func synthWorld(t testing.TB, w *world, anchors []dns.RR, seen []string, mod func(*Config)) *Validator {
	t.Helper()
	v := newValidator(t, anchors, mod)
	for _, s := range seen {
		name, typ := splitSeen(s)
		r := w.reply(name, typ)
		if name == "www.insecure.example.test." {
			r = Reply{Zone: leafName, QName: name, QType: typ, Msg: w.zones[leafName].answer(name, typ)}
		}
		if got := v.Validate(context.Background(), w, r); got.Security == cache.Bogus {
			t.Fatalf("%s: %+v", s, got)
		}
	}
	return v
}

func splitSeen(s string) (string, uint16) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return s[:i], dns.StringToType[s[i+1:]]
		}
	}
	return s, 0
}

func TestSynthesizeFromRememberedDenials(t *testing.T) {
	for _, mode := range []string{"NSEC", "NSEC3"} {
		w, anchors := buildWorld(t, worldOpts{nsec3: mode == "NSEC3"})
		for _, c := range synthCases {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				v := synthWorld(t, w, anchors, c.seen, aggressive)
				m, sec, ok := v.Synthesize(c.qname, c.qtype)
				if ok != c.ok {
					t.Fatalf("Synthesize(%s, %s) = %v, want %v; reply %v", c.qname, dns.TypeToString[c.qtype], ok, c.ok, m)
				}
				if !ok {
					return
				}
				checkSynthesized(t, c, m, sec)
				// The synthesised reply must stand on its own: a validator
				// that never saw the original proves it again.
				fresh := newValidator(t, anchors, nil)
				got := fresh.Validate(context.Background(), w, Reply{Zone: leafName, QName: c.qname, QType: c.qtype, Msg: m})
				if got.Security != cache.Secure {
					t.Fatalf("synthesised reply does not validate: %+v\n%v", got, m)
				}
			})
		}
	}
}

// checkSynthesized checks the shape of a synthesised reply: a denial with
// the SOA first, or an expansion owned by the name asked whose RRSIGs
// still tell that it is one, with its proof and no SOA.
func checkSynthesized(t *testing.T, c synthCase, m *dns.Msg, sec cache.Security) {
	t.Helper()
	if sec != cache.Secure || m.Rcode != c.rcode || len(m.Ns) == 0 {
		t.Fatalf("got %v %v, want secure rcode %d with proofs", sec, m, c.rcode)
	}
	if c.expanded == 0 {
		if len(m.Answer) != 0 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Fatalf("got %v, want no answer and the SOA first", m)
		}
		return
	}
	for _, rr := range m.Answer {
		if rr.Header().Name != c.qname || coveredType(rr) != c.expanded {
			t.Fatalf("answer record %v, want %s records at %s", rr, dns.TypeToString[c.expanded], c.qname)
		}
		if sig, ok := rr.(*dns.RRSIG); ok && wildcardOf(c.qname, sig) == "" {
			t.Fatalf("RRSIG %v does not show the expansion", sig)
		}
	}
	if len(m.Answer) < 2 || hasRRType(m.Ns, dns.TypeSOA) {
		t.Fatalf("got %v, want the expansion with its RRSIG and no SOA", m)
	}
}

func hasRRType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

func TestSynthesizeRefusesOptOutSpans(t *testing.T) {
	w, anchors := buildWorld(t, worldOpts{nsec3: true, optOut: true})
	v := synthWorld(t, w, anchors, []string{"nope.example.test./A", "x.wild.example.test./A"}, aggressive)
	for _, q := range []string{"nope.example.test./AAAA", "x.wild.example.test./A"} {
		name, qtype := splitSeen(q)
		if m, _, ok := v.Synthesize(name, qtype); ok {
			t.Fatalf("%s synthesised from an opt-out span: %v", q, m)
		}
	}
}

func TestSynthesizeIsOffByDefaultAndUnderNegativeAnchors(t *testing.T) {
	w, anchors := buildWorld(t, worldOpts{})
	for name, mod := range map[string]func(*Config){
		"ZeroConfig":     nil,
		"NegativeAnchor": func(c *Config) { aggressive(c); c.NegativeAnchors = []string{"example.test."} },
	} {
		v := synthWorld(t, w, anchors, []string{"nope.example.test./A"}, mod)
		if m, _, ok := v.Synthesize("nope.example.test.", dns.TypeAAAA); ok {
			t.Fatalf("%s: synthesised %v", name, m)
		}
	}
}

func TestSynthesizedTTLsCountDownAndExpire(t *testing.T) {
	w, anchors := buildWorld(t, worldOpts{})
	clock := &fixedClock{testNow}
	v := synthWorld(t, w, anchors, []string{"nope.example.test./A"}, func(c *Config) { aggressive(c); c.Clock = clock })
	clock.t = testNow.Add(100 * time.Second)
	m, _, ok := v.Synthesize("nope.example.test.", dns.TypeTXT)
	if !ok {
		t.Fatal("nothing synthesised")
	}
	for _, rr := range m.Ns {
		if rr.Header().Ttl != 200 { // SOA minimum 300, NSEC TTL 300 (signZone), 100 s gone
			t.Fatalf("TTL %d, want 200: %v", rr.Header().Ttl, rr)
		}
	}
	clock.t = testNow.Add(time.Hour)
	if _, _, ok := v.Synthesize("nope.example.test.", dns.TypeTXT); ok {
		t.Fatal("synthesised from expired records")
	}
}

func TestRememberedNoDSProofSavesTheDSQuery(t *testing.T) {
	w, anchors := buildWorld(t, worldOpts{})
	v := synthWorld(t, w, anchors, []string{"www.insecure.example.test./A"}, nil)
	before := w.fetches
	got := v.Validate(context.Background(), w, w.reply("www.insecure.example.test.", dns.TypeA))
	if got.Security != cache.Insecure || w.fetches != before {
		t.Fatalf("child answer: %+v after %d fetches, want insecure without fetching", got, w.fetches-before)
	}
}

// TestUnsignedDataBelowAProvenCutIsInsecure: the parent's servers answer
// for the unsigned child; only a remembered no-DS proof tells them apart
// from stripped signatures.
func TestUnsignedDataBelowAProvenCutIsInsecure(t *testing.T) {
	w, anchors := buildWorld(t, worldOpts{})
	child := w.zones["insecure.example.test."].answer("nope.insecure.example.test.", dns.TypeA)
	r := Reply{Zone: leafName, QName: "nope.insecure.example.test.", QType: dns.TypeA, Msg: child}
	cold := newValidator(t, anchors, nil)
	if got := cold.Validate(context.Background(), w, r); got.Security != cache.Bogus {
		t.Fatalf("without the proof: %+v, want bogus", got)
	}
	warm := newValidator(t, anchors, nil)
	warm.Validate(context.Background(), w, Reply{Zone: leafName, QName: "insecure.example.test.", QType: dns.TypeDS,
		Msg: w.zones[leafName].answer("insecure.example.test.", dns.TypeDS)})
	child = w.zones["insecure.example.test."].answer("nope.insecure.example.test.", dns.TypeA)
	r.Msg = child
	if got := warm.Validate(context.Background(), w, r); got.Security != cache.Insecure {
		t.Fatalf("with the proof: %+v, want insecure", got)
	}
}

func TestDenialStoreStaysWithinItsBounds(t *testing.T) {
	st := newDenialStore(2, 3)
	for i, zone := range []string{"a.", "b.", "c."} {
		for j := range 5 {
			owner := string(rune('a'+j)) + "." + zone
			n := &dns.NSEC{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: uint32(100 + j)}, NextDomain: zone}
			st.add(zone, &rrset{name: owner, typ: dns.TypeNSEC, rrs: []dns.RR{n}}, testNow.Add(time.Duration(i)*time.Second))
		}
	}
	if st.zones.Len() != 2 {
		t.Fatalf("%d zones kept, want 2", st.zones.Len())
	}
	_, vw := st.snapshot("x.c.", testNow)
	if len(vw.live) != 3 {
		t.Fatalf("%d records kept for c., want 3", len(vw.live))
	}
	for _, r := range vw.live {
		if r.expires.Before(testNow.Add(102 * time.Second)) {
			t.Fatalf("kept %v, which expires first", r.rr)
		}
	}
}

func TestRememberedWildcardsStayWithinTheirBounds(t *testing.T) {
	st := newDenialStore(2, 3)
	for j := range 5 {
		owner := "*." + string(rune('a'+j)) + ".z."
		a := &dns.A{Hdr: dns.RR_Header{Name: "x" + owner[1:], Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: uint32(100 + j)}}
		st.addWildcard("z.", owner, &rrset{name: "x" + owner[1:], typ: dns.TypeA, rrs: []dns.RR{a}}, testNow)
	}
	z, _ := st.zones.Get("z.")
	if len(z.wilds) != 3 {
		t.Fatalf("%d wildcard RRsets kept, want 3", len(z.wilds))
	}
	for _, owner := range []string{"*.a.z.", "*.b.z."} {
		if st.wildcard("z.", owner, dns.TypeA, testNow) != nil {
			t.Errorf("kept %s, which expires first", owner)
		}
	}
	set := st.wildcard("z.", "*.e.z.", dns.TypeA, testNow)
	if set == nil || set.rrs[0].Header().Name != "*.e.z." {
		t.Fatalf("got %v, want the RRset owned by the wildcard", set)
	}
	if st.wildcard("z.", "*.e.z.", dns.TypeA, testNow.Add(104*time.Second)) != nil {
		t.Error("an expired wildcard RRset is still served")
	}
}

func BenchmarkSynthesize(b *testing.B) {
	for _, mode := range []string{"NSEC", "NSEC3"} {
		b.Run(mode, func(b *testing.B) {
			w, anchors := buildWorld(b, worldOpts{nsec3: mode == "NSEC3"})
			v := synthWorld(b, w, anchors, []string{"nope.example.test./A", "www.example.test./TXT"}, aggressive)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := v.Synthesize("nope.example.test.", dns.TypeAAAA); !ok {
					b.Fatal("nothing synthesised")
				}
			}
		})
	}
}

// BenchmarkSynthesizeRefusedUnderOptOut asks for a name three labels into
// an opt-out span, as a cold name under a delegation of an opt-out TLD is
// asked, and reports the NSEC3 hashes it costs to refuse.
func BenchmarkSynthesizeRefusedUnderOptOut(b *testing.B) {
	w, anchors := buildWorld(b, worldOpts{nsec3: true, optOut: true})
	v := synthWorld(b, w, anchors, []string{"nope.example.test./A"}, aggressive)
	benchUnproved(b, v, "www.host.nope.example.test.")
}

// benchUnproved asks v for an A record at name, which it cannot
// synthesise, and reports the NSEC3 hashes that costs.
func benchUnproved(b *testing.B, v *Validator, name string) {
	b.ReportAllocs()
	before := v.Stats().NSEC3Hashes
	for b.Loop() {
		if m, _, ok := v.Synthesize(name, dns.TypeA); ok {
			b.Fatalf("synthesised %s: %v", name, m)
		}
	}
	b.ReportMetric(float64(v.Stats().NSEC3Hashes-before)/float64(b.N), "hashes/op")
}

// rememberNSEC3 has v remember n as validated, signed by signer's zone.
func rememberNSEC3(v *Validator, n *dns.NSEC3, signer string) {
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: n.Hdr.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: n.Hdr.Ttl}, TypeCovered: dns.TypeNSEC3, SignerName: signer}
	v.remember(&rrset{name: n.Hdr.Name, typ: dns.TypeNSEC3, rrs: []dns.RR{n}, sigs: []*dns.RRSIG{sig}}, testNow)
}

// unseenChildWorld is a validator that remembers the NSEC3 chain of z.
// (its apex, a.z., b.z. and child.z.) but for child.z.'s own record:
// no remembered record matches or covers child.z., as with a delegation
// of a signed zone whose referral has not yet been seen.
func unseenChildWorld(tb testing.TB) *Validator {
	tb.Helper()
	const zone = "z."
	names := []string{zone, "a.z.", "b.z.", "child.z."}
	hashes := make([]string, len(names))
	for i, n := range names {
		hashes[i] = dns.HashName(n, dns.SHA1, 0, "")
	}
	sorted := slices.Clone(hashes)
	slices.Sort(sorted)
	v := newValidator(tb, nil, aggressive)
	for i, h := range sorted {
		if h == hashes[3] {
			continue
		}
		n := &dns.NSEC3{Hdr: dns.RR_Header{Name: strings.ToLower(h) + "." + zone, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 3600},
			Hash: dns.SHA1, NextDomain: sorted[(i+1)%len(sorted)], TypeBitMap: []uint16{dns.TypeA, dns.TypeRRSIG}}
		rememberNSEC3(v, n, zone)
	}
	return v
}

// TestNameBelowAnUnseenChildIsNotHashedUpToTheApex: with nothing known of
// child.z., no closest encloser of a name below it can be proved at z.'s
// apex, so the name and child.z. are hashed and z. is not.
func TestNameBelowAnUnseenChildIsNotHashedUpToTheApex(t *testing.T) {
	v := unseenChildWorld(t)
	before := v.Stats().NSEC3Hashes
	if m, _, ok := v.Synthesize("www.child.z.", dns.TypeA); ok {
		t.Fatalf("synthesised below an unseen child: %v", m)
	}
	if got := v.Stats().NSEC3Hashes - before; got != 2 {
		t.Fatalf("%d NSEC3 hashes, want 2 (www.child.z. and child.z.)", got)
	}
}

// BenchmarkSynthesizeBelowAnUnseenChild asks for a name below a child zone
// whose referral has not been seen, as the first names of every new zone
// below a signed parent are asked in bench/run's dnssec-cold-deleg.
func BenchmarkSynthesizeBelowAnUnseenChild(b *testing.B) {
	benchUnproved(b, unseenChildWorld(b), "www.child.z.")
}

// TestRememberedRecordsAreIndexedOncePerChange: lookups share one prepared
// view of a zone's records until a record is added or one expires.
func TestRememberedRecordsAreIndexedOncePerChange(t *testing.T) {
	st := newDenialStore(2, 8)
	add := func(owner string, ttl uint32) {
		n := &dns.NSEC3{Hdr: dns.RR_Header{Name: owner + ".z.", Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: ttl},
			Hash: dns.SHA1, NextDomain: "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV"}
		st.add("z.", &rrset{name: n.Hdr.Name, typ: dns.TypeNSEC3, rrs: []dns.RR{n}}, testNow)
	}
	add("00000000000000000000000000000000", 100)
	_, first := st.snapshot("a.z.", testNow)
	if _, again := st.snapshot("b.z.", testNow.Add(time.Second)); again != first || first.n3 == nil || len(first.n3.ents) != 1 {
		t.Fatalf("unchanged store: view %p then %p with %v, want one view of one NSEC3", first, again, first.n3)
	}
	add("11111111111111111111111111111111", 200)
	if _, vw := st.snapshot("a.z.", testNow); vw == first || len(vw.n3.ents) != 2 {
		t.Fatalf("after an add: %d NSEC3 in the view, want 2 in a new one", len(vw.n3.ents))
	}
	if _, vw := st.snapshot("a.z.", testNow.Add(150*time.Second)); len(vw.live) != 1 || vw.n3.ents[0].owner != "11111111111111111111111111111111" {
		t.Fatalf("after the first expired: %d live, want the second only", len(vw.live))
	}
}

// TestParentDenialsAreNotHashedForNamesOfAKnownChildZone: the parent's
// NSEC3 records say nothing inside a delegated zone, so once the child is
// known (here proven unsigned) a question there costs no hash.
func TestParentDenialsAreNotHashedForNamesOfAKnownChildZone(t *testing.T) {
	w, anchors := buildWorld(t, worldOpts{nsec3: true})
	v := newValidator(t, anchors, func(c *Config) { c.AggressiveNSEC = true })
	ctx := context.Background()
	v.Validate(ctx, w, w.reply("insecure.example.test.", dns.TypeDS))
	if got := v.Validate(ctx, w, w.reply("www.insecure.example.test.", dns.TypeA)); got.Security != cache.Insecure {
		t.Fatalf("child answer: %+v, want insecure", got)
	}
	before := v.Stats().NSEC3Hashes
	if m, _, ok := v.Synthesize("nope.insecure.example.test.", dns.TypeA); ok {
		t.Fatalf("synthesised %v from the parent's records", m)
	}
	if got := v.Stats().NSEC3Hashes - before; got != 0 {
		t.Errorf("%d NSEC3 hashes, want 0", got)
	}
}

// randomHash is an NSEC3 owner hash as a zone would have one: 32
// characters of base32hex.
func randomHash(rng *rand.Rand) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
	var b [32]byte
	for i := range b {
		b[i] = digits[rng.IntN(len(digits))]
	}
	return string(b[:])
}

// TestSortedNSEC3LookupsAgreeWithAScan: a remembered zone's records are
// searched by halves, those added since they were last sorted scanned;
// over records of one consistent chain that finds what a scan of every
// record finds, however the set was put together.
func TestSortedNSEC3LookupsAgreeWithAScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	chain := make([]string, 60)
	for i := range chain {
		chain[i] = randomHash(rng)
	}
	slices.Sort(chain)
	var kept []*dns.NSEC3
	for i, h := range chain {
		if i%3 != 1 {
			continue // the store remembers part of the chain
		}
		kept = append(kept, &dns.NSEC3{Hdr: dns.RR_Header{Name: h + ".z.", Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 300},
			Hash: dns.SHA1, NextDomain: chain[(i+1)%len(chain)]})
	}
	scan, _ := newNSEC3Set(kept)
	var grown *nsec3Set
	for _, i := range rng.Perm(len(kept)) {
		grown = grown.with(nil, kept[i], ownerHash(kept[i]), kept[i].NextDomain)
	}
	if len(grown.ents) != len(kept) || grown.nSorted == 0 || grown.nSorted == len(kept) {
		t.Fatalf("grown set: %d records, %d sorted; want %d, some not", len(grown.ents), grown.nSorted, len(kept))
	}
	stale := kept[4]
	again := grown.with(nil, stale, ownerHash(stale), stale.NextDomain)
	fresh := &dns.NSEC3{Hdr: stale.Hdr, Hash: dns.SHA1, NextDomain: stale.NextDomain}
	replaced := again.with(stale, fresh, ownerHash(fresh), fresh.NextDomain)
	if len(again.ents) != len(kept) || len(replaced.ents) != len(kept) {
		t.Fatalf("%d records after adding one again, %d after replacing it; want %d", len(again.ents), len(replaced.ents), len(kept))
	}
	cfg := Config{MaxNSEC3Hashes: 1 << 20}
	for _, set := range []*nsec3Set{grown, replaced} {
		for probe := range 2000 {
			h := randomHash(rng)
			if probe%4 == 0 {
				h = chain[rng.IntN(len(chain))]
			}
			name := "p" + strconv.Itoa(probe) + ".z."
			a, b := scan.proof(&work{cfg: &cfg}), set.proof(&work{cfg: &cfg})
			a.hashes.put(name, h)
			b.hashes.put(name, h)
			if am, bm := a.match(name), b.match(name); (am == nil) != (bm == nil) || am != nil && am.Hdr.Name != bm.Hdr.Name {
				t.Fatalf("hash %s: scan matches %v, search %v", h, am, bm)
			}
			if ac, bc := a.cover(name), b.cover(name); (ac == nil) != (bc == nil) || ac != nil && ac.Hdr.Name != bc.Hdr.Name {
				t.Fatalf("hash %s: scan covers with %v, search with %v", h, ac, bc)
			}
		}
	}
}

// TestRememberedViewChangesAsARebuildWould: the view made from the last
// one as records are added, replaced, evicted and expire is the view a
// rebuild from the zone's records gives.
func TestRememberedViewChangesAsARebuildWould(t *testing.T) {
	for _, typ := range []uint16{dns.TypeNSEC3, dns.TypeNSEC} {
		t.Run(dns.TypeToString[typ], func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(typ)))
			owners := make([]string, 30)
			for i := range owners {
				owners[i] = randomHash(rng) + ".z."
			}
			st := newDenialStore(2, 16)
			now := testNow
			for step := range 600 {
				now = now.Add(time.Duration(rng.IntN(5)) * time.Second)
				hdr := dns.RR_Header{Name: owners[rng.IntN(len(owners))], Rrtype: typ, Class: dns.ClassINET, Ttl: uint32(20 + rng.IntN(300))}
				var rr dns.RR = &dns.NSEC{Hdr: hdr, NextDomain: owners[rng.IntN(len(owners))]}
				if typ == dns.TypeNSEC3 {
					rr = &dns.NSEC3{Hdr: hdr, Hash: dns.SHA1, NextDomain: randomHash(rng)}
				}
				st.add("z.", &rrset{name: hdr.Name, typ: typ, rrs: []dns.RR{rr}}, now)
				if step%50 == 0 {
					soa := &dns.SOA{Hdr: dns.RR_Header{Name: "z.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 100}, Minttl: 60}
					st.add("z.", &rrset{name: "z.", typ: dns.TypeSOA, rrs: []dns.RR{soa}}, now)
				}
				checkViewAsRebuilt(t, st, now, step)
			}
		})
	}
}

// checkViewAsRebuilt compares the view of zone z. that st gives at now
// with one built afresh from its records.
func checkViewAsRebuilt(t *testing.T, st *denialStore, now time.Time, step int) {
	t.Helper()
	_, got := st.snapshot("x.z.", now)
	z, _ := st.zones.Get("z.")
	want := z.build(now)
	if got.soa != want.soa || !sameRecords(got.live, want.live) || len(got.nsec) != len(want.nsec) {
		t.Fatalf("step %d: view has %d live records (%d NSEC) and SOA %v, a rebuild %d (%d) and %v",
			step, len(got.live), len(got.nsec), got.soa, len(want.live), len(want.nsec), want.soa)
	}
	if (got.n3 == nil) != (want.n3 == nil) || got.n3 != nil && !slices.Equal(sortedEntries(got.n3), want.n3.ents) {
		t.Fatalf("step %d: the view's NSEC3 set differs from a rebuild's", step)
	}
}

// sortedEntries is p's records in the order a rebuild sorts them.
func sortedEntries(p *nsec3Set) []nsec3Entry {
	c := *p
	c.ents = slices.Clone(p.ents)
	c.sort()
	return c.ents
}

// sameRecords reports whether a and b hold the same records, in any order.
func sameRecords(a, b []*storedRR) bool {
	in := map[*storedRR]bool{}
	for _, r := range a {
		in[r] = true
	}
	for _, r := range b {
		if !in[r] {
			return false
		}
	}
	return len(a) == len(b)
}

// BenchmarkNewZoneBelowAFullParent is what each new unsigned child of a
// signed parent costs the remembered denials, as in bench/run's
// dnssec-cold-deleg: the child's no-DS proof (one NSEC3) is remembered in
// the parent's full set, and the first name of the next child asks
// Synthesize, which finds nothing.
func BenchmarkNewZoneBelowAFullParent(b *testing.B) {
	v := newValidator(b, nil, aggressive)
	rng := rand.New(rand.NewPCG(5, 6))
	i := 0
	add := func() {
		i++
		n := &dns.NSEC3{Hdr: dns.RR_Header{Name: randomHash(rng) + ".leaf.test.", Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 3600},
			Hash: dns.SHA1, Iterations: 1, NextDomain: randomHash(rng), TypeBitMap: []uint16{dns.TypeNS}}
		rememberNSEC3(v, n, "leaf.test.")
	}
	for range v.cfg.DenialsPerZone {
		add()
	}
	b.ReportAllocs()
	for b.Loop() {
		add()
		if _, _, ok := v.Synthesize("h0.z"+strconv.Itoa(i)+".leaf.test.", dns.TypeA); ok {
			b.Fatal("synthesised from random spans")
		}
	}
}

// TestRememberedDenialsServeLookupsWhileRecordsArrive: lookups share the
// views that adds replace, so they run concurrently with them (go test
// -race checks the sharing), and the view left at the end is a rebuild's.
func TestRememberedDenialsServeLookupsWhileRecordsArrive(t *testing.T) {
	v := newValidator(t, nil, aggressive)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 500 {
				n := &dns.NSEC3{Hdr: dns.RR_Header{Name: randomHash(rng) + ".z.", Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 300},
					Hash: dns.SHA1, NextDomain: randomHash(rng)}
				rememberNSEC3(v, n, "z.")
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 500 {
				v.Synthesize("n"+strconv.Itoa(g*1000+i)+".z.", dns.TypeA)
			}
		}()
	}
	wg.Wait()
	checkViewAsRebuilt(t, v.denials, testNow, 0)
}

// TestReachAgreesWithTheFullSearch: the one-hash refusal of names under a
// delegation, a DNAME or an opt-out span, and the search that stops below
// an ancestor no record matches or covers, give what the search from the
// name up to the apex gives, over random parts of a consistent chain with
// random opt-out spans, for names that exist, do not, and lie under cuts.
func TestReachAgreesWithTheFullSearch(t *testing.T) {
	const zone = "z."
	types := map[string][]uint16{
		"z.":       {dns.TypeNS, dns.TypeSOA, dns.TypeRRSIG, dns.TypeDNSKEY, dns.TypeNSEC3PARAM},
		"a.z.":     {dns.TypeA, dns.TypeRRSIG},
		"b.a.z.":   {dns.TypeA, dns.TypeRRSIG},
		"c.b.a.z.": {dns.TypeTXT, dns.TypeRRSIG},
		"d.z.":     {dns.TypeNS},
		"s.z.":     {dns.TypeNS, dns.TypeDS, dns.TypeRRSIG},
		"e.z.":     {dns.TypeDNAME, dns.TypeRRSIG},
		"m.z.":     nil, // an empty non-terminal
		"x.m.z.":   {dns.TypeA, dns.TypeRRSIG},
	}
	type link struct{ hash, name string }
	var chain []link
	for name := range types {
		chain = append(chain, link{dns.HashName(name, dns.SHA1, 1, "AB"), name})
	}
	slices.SortFunc(chain, func(a, b link) int { return strings.Compare(a.hash, b.hash) })
	rng := rand.New(rand.NewPCG(7, 8))
	labels := []string{"a", "b", "c", "d", "e", "m", "s", "x", "q"}
	var probes []string
	for range 300 {
		name := zone
		for range 1 + rng.IntN(4) {
			name = labels[rng.IntN(len(labels))] + "." + name
		}
		probes = append(probes, name)
	}
	var refused, stopped, proved, checked int
	for trial := range 40 {
		v := newValidator(t, nil, aggressive)
		for i, l := range chain {
			if rng.IntN(10) >= 7 {
				continue // the store remembers part of the chain
			}
			n := &dns.NSEC3{Hdr: dns.RR_Header{Name: strings.ToLower(l.hash) + "." + zone, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 3600},
				Hash: dns.SHA1, Iterations: 1, SaltLength: 1, Salt: "AB", NextDomain: chain[(i+1)%len(chain)].hash, TypeBitMap: types[l.name]}
			if rng.IntN(3) == 0 {
				n.Flags = 1 // opt-out
			}
			rememberNSEC3(v, n, zone)
		}
		for _, name := range probes {
			for _, qtype := range []uint16{dns.TypeA, dns.TypeDS} {
				st, _, _, ok := v.storedProofs(name, qtype, &work{cfg: &v.cfg})
				if !ok || st.n3.nsec3Set == nil {
					continue
				}
				fst, _, _, _ := v.storedProofs(name, qtype, &work{cfg: &v.cfg})
				p, full := st.proofs, fst.proofs
				p.n3, full.n3 = &st.n3, &fst.n3
				got, gotOK := v.nsec3Synthesize(&p, name, qtype)
				want, wantOK := v.nsec3Prove(&full, name, qtype, "")
				if gotOK != wantOK || got.rcode != want.rcode || !slices.Equal(got.used, want.used) {
					t.Fatalf("trial %d, %s/%s: shortcut gives %v %+v, the full search %v %+v", trial, name, dns.TypeToString[qtype], gotOK, got, wantOK, want)
				}
				checked++
				switch out, stop := p.n3.reach(name); {
				case out:
					refused++
				case stop != "":
					stopped++
				}
				if wantOK {
					proved++
				}
			}
		}
	}
	if refused < checked/10 || stopped < checked/10 || proved < checked/20 {
		t.Fatalf("of %d lookups the shortcut refused %d, stopped below the top %d, and the search proved %d: the chain exercises too little", checked, refused, stopped, proved)
	}
	t.Logf("%d lookups: %d refused with one hash, %d stopped below the top, %d proved", checked, refused, stopped, proved)
}
