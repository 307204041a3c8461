package cache

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var t0 = time.Unix(1_700_000_000, 0)

func aEntry(tb testing.TB, name string, ttl uint32) Entry {
	tb.Helper()
	rr := mustRR(tb, name+" 0 IN A 192.0.2.1")
	rr.Header().Ttl = ttl
	return Entry{RRs: []dns.RR{rr}, Rank: RankAnswerAA}
}

func TestGetCountsTTLDownFromInjectedTime(t *testing.T) {
	c := New(Config{})
	k := NewKey("www.example.com.", dns.TypeA, dns.ClassINET)
	e := aEntry(t, "www.example.com.", 300)
	e.Sigs = []dns.RR{testSig("www.example.com.", dns.TypeA, 300, uint32(t0.Unix())+86400)}
	if !c.Put(k, e, t0) {
		t.Fatal("Put refused a 300 s A record")
	}
	tests := []struct {
		name    string
		elapsed time.Duration
		wantTTL uint32
		wantOK  bool
	}{
		{"at once the full TTL", 0, 300, true},
		{"part seconds round down", 1500 * time.Millisecond, 298, true},
		{"last second reads zero", 299*time.Second + 900*time.Millisecond, 0, true},
		{"gone at expiry", 300 * time.Second, 0, false},
		{"gone after expiry", time.Hour, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := c.Get(k, t0.Add(tt.elapsed))
			if ok != tt.wantOK {
				t.Fatalf("Get ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			for _, rr := range append(got.RRs, got.Sigs...) {
				if rr.Header().Ttl != tt.wantTTL {
					t.Errorf("%s TTL = %d, want %d", dns.TypeToString[rr.Header().Rrtype], rr.Header().Ttl, tt.wantTTL)
				}
			}
			if orig := got.Sigs[0].(*dns.RRSIG).OrigTtl; orig != 300 {
				t.Errorf("RRSIG Original TTL = %d, want 300 as signed", orig)
			}
			if !got.Expires.Equal(t0.Add(300 * time.Second)) {
				t.Errorf("Expires = %v, want t0+300s", got.Expires)
			}
		})
	}
}

func TestReadSeesWhatGetCopies(t *testing.T) {
	c := New(Config{})
	k := NewKey("www.example.com.", dns.TypeA, dns.ClassINET)
	c.Put(k, aEntry(t, "www.example.com.", 300), t0)
	for _, elapsed := range []time.Duration{0, 1500 * time.Millisecond, 299 * time.Second, 300 * time.Second} {
		now := t0.Add(elapsed)
		got, getOK := c.Get(k, now)
		var seen *Entry
		var seenTTL uint32
		readOK := c.Read(k, now, func(e Entry, ttl uint32) { seen, seenTTL = &e, ttl })
		if readOK != getOK || (seen != nil) != getOK {
			t.Fatalf("after %v: Read ok %v (called %v), Get ok %v", elapsed, readOK, seen != nil, getOK)
		}
		if !getOK {
			continue
		}
		if seenTTL != got.RRs[0].Header().Ttl || seen.RRs[0].Header().Ttl != 300 || !seen.Expires.Equal(got.Expires) {
			t.Errorf("after %v: Read TTL %d, stored record TTL %d; Get TTL %d", elapsed, seenTTL, seen.RRs[0].Header().Ttl, got.RRs[0].Header().Ttl)
		}
	}
	if c.Read(NewKey("other.example.com.", dns.TypeA, dns.ClassINET), t0, func(Entry, uint32) { t.Error("called for a missing key") }) {
		t.Error("Read reported a missing key")
	}
}

func TestMayHoldOnlyTypesOfferedToPut(t *testing.T) {
	c := New(Config{})
	for _, typ := range []uint16{dns.TypeA, dns.TypeDNAME, dns.TypeCAA} {
		if c.MayHold(typ) != (typ >= 256) {
			t.Errorf("empty cache: MayHold(%s) = %v", dns.TypeToString[typ], c.MayHold(typ))
		}
	}
	c.Put(NewKey("www.example.com.", dns.TypeA, dns.ClassINET), aEntry(t, "www.example.com.", 300), t0)
	dname := Entry{RRs: []dns.RR{mustRR(t, "example.net. 300 IN DNAME example.org.")}}
	c.Put(NewKey("example.net.", dns.TypeDNAME, dns.ClassINET), dname, t0)
	for _, typ := range []uint16{dns.TypeA, dns.TypeDNAME} {
		if !c.MayHold(typ) {
			t.Errorf("MayHold(%s) false after a Put", dns.TypeToString[typ])
		}
	}
	if c.MayHold(dns.TypeAAAA) || c.MayHold(dns.TypeCNAME) {
		t.Error("MayHold true for a type never offered")
	}
}

func TestExpiredEntryIsRemovedOnGet(t *testing.T) {
	c := New(Config{})
	k := NewKey("a.example.", dns.TypeA, dns.ClassINET)
	c.Put(k, aEntry(t, "a.example.", 10), t0)
	if _, ok := c.Get(k, t0.Add(10*time.Second)); ok {
		t.Fatal("entry still served at its expiry")
	}
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("after expiry Len = %d, Bytes = %d, want 0, 0", c.Len(), c.Bytes())
	}
}

func TestEntryOnGraceIsServedWithTTLZeroUntilTheGraceEnds(t *testing.T) {
	c := New(Config{})
	k := NewKey("old.example.", dns.TypeDNAME, dns.ClassINET)
	e := Entry{RRs: []dns.RR{mustRR(t, "old.example. 0 IN DNAME new.example.")}, Grace: 2 * time.Second}
	if !c.Put(k, e, t0) {
		t.Fatal("Put refused a TTL-0 entry with a grace")
	}
	for _, tc := range []struct {
		after time.Duration
		live  bool
	}{{0, true}, {1500 * time.Millisecond, true}, {2 * time.Second, false}} {
		got, ok := c.Get(k, t0.Add(tc.after))
		if ok != tc.live {
			t.Fatalf("after %v: live = %v, want %v", tc.after, ok, tc.live)
		}
		if ok && got.RRs[0].Header().Ttl != 0 {
			t.Errorf("after %v: TTL %d, want 0", tc.after, got.RRs[0].Header().Ttl)
		}
	}
}

func TestNXDomainIsCachedUnderTypeNXDomain(t *testing.T) {
	c := New(Config{})
	soa := mustRR(t, "example.com. 3600 IN SOA ns.example.com. host.example.com. 1 7200 900 1209600 900")
	k := NewKey("Nope.Example.COM", TypeNXDomain, dns.ClassINET)
	ok := c.Put(k, Entry{Ns: []dns.RR{soa}, Rcode: dns.RcodeNameError, Rank: RankAuthorityAA}, t0)
	if !ok {
		t.Fatal("Put refused an NXDOMAIN with SOA")
	}
	got, ok := c.Get(NewKey("nope.example.com.", TypeNXDomain, dns.ClassINET), t0.Add(100*time.Second))
	if !ok || got.Rcode != dns.RcodeNameError || !got.Negative() {
		t.Fatalf("Get = %+v, %v; want the NXDOMAIN entry", got, ok)
	}
	if ttl := got.Ns[0].Header().Ttl; ttl != 800 {
		t.Errorf("SOA TTL = %d, want 800 (MINIMUM 900 less 100 s)", ttl)
	}
	if _, ok := c.Get(NewKey("nope.example.com.", dns.TypeA, dns.ClassINET), t0); ok {
		t.Error("an A lookup found the NXDOMAIN entry: the caller must ask TypeNXDomain")
	}
}

func TestReturnedEntryIsIndependentOfTheStoredOne(t *testing.T) {
	c := New(Config{})
	k := NewKey("a.example.", dns.TypeA, dns.ClassINET)
	in := aEntry(t, "a.example.", 300)
	in.Sigs = []dns.RR{testSig("a.example.", dns.TypeA, 300, uint32(t0.Unix())+86400)}
	c.Put(k, in, t0)
	in.RRs[0].(*dns.A).A[15] = 9 // the caller reuses its records after Put

	got, _ := c.Get(k, t0)
	got.RRs[0].(*dns.A).A[15] = 7
	got.RRs = append(got.RRs, mustRR(t, "a.example. 1 IN A 192.0.2.99"))
	got.Sigs[0].Header().Ttl = 1

	again, _ := c.Get(k, t0)
	if ip := again.RRs[0].(*dns.A).A.String(); ip != "192.0.2.1" {
		t.Errorf("stored address changed to %s", ip)
	}
	if len(again.RRs) != 1 || again.Sigs[0].Header().Ttl != 300 {
		t.Errorf("stored entry changed: %d RRs, sig TTL %d", len(again.RRs), again.Sigs[0].Header().Ttl)
	}
	if got.Sigs[0].Header().Rrtype != dns.TypeRRSIG {
		t.Error("append to RRs overwrote Sigs in the shared backing array")
	}
}

func TestDeleteAndFlushRemoveEntries(t *testing.T) {
	c := New(Config{})
	keys := []Key{
		NewKey("a.example.", dns.TypeA, dns.ClassINET),
		NewKey("b.example.", dns.TypeA, dns.ClassINET),
		NewKey("c.example.", dns.TypeA, dns.ClassINET),
	}
	for _, k := range keys {
		c.Put(k, aEntry(t, k.Name, 300), t0)
	}
	c.Delete(keys[0])
	if _, ok := c.Get(keys[0], t0); ok || c.Len() != 2 {
		t.Fatalf("after Delete: found = %v, Len = %d, want false, 2", ok, c.Len())
	}
	c.Flush()
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("after Flush Len = %d, Bytes = %d, want 0, 0", c.Len(), c.Bytes())
	}
}

func TestConfigDefaultsAndShardRounding(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantShards int
	}{
		{"zero value gets 64 shards", Config{}, 64},
		{"three rounds up to four", Config{Shards: 3}, 4},
		{"power of two kept", Config{Shards: 16}, 16},
		{"absurd count is capped", Config{Shards: 1 << 40, MaxBytes: 1 << 40}, 1 << 16},
		{"small memory gets fewer shards", Config{Shards: 64, MaxBytes: 64 << 10}, 4},
		{"tiny memory gets one shard", Config{MaxBytes: 1000}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(tt.cfg)
			if len(c.shards) != tt.wantShards {
				t.Errorf("shards = %d, want %d", len(c.shards), tt.wantShards)
			}
		})
	}
	d := New(Config{}).cfg
	if d.MaxBytes != 64<<20 || d.MaxTTL != 24*time.Hour || d.MaxNegativeTTL != time.Hour || d.BogusTTL != time.Minute {
		t.Errorf("defaults = %+v", d)
	}
}

func TestSidesKeepDisagreeingCopiesApart(t *testing.T) {
	main := NewKey("ns.example.net.", dns.TypeA, dns.ClassINET)
	glue := aEntry(t, "ns.example.net.", 300)
	glue.Rank = RankGlue
	c := New(Config{})
	if !c.Put(main.On(SideParent), glue, t0) {
		t.Fatal("Put refused the parent side's glue")
	}
	child := aEntry(t, "ns.example.net.", 300)
	child.RRs[0].(*dns.A).A = []byte{192, 0, 2, 99}
	if !c.Put(main, child, t0) {
		t.Fatal("Put refused the child's answer")
	}
	tests := []struct {
		name string
		key  Key
		want string
		rank Rank
	}{
		{"MainHoldsTheChildsAnswer", main, "192.0.2.99", RankAnswerAA},
		{"ParentSideKeepsTheGlueTheAnswerOutranks", main.On(SideParent), "192.0.2.1", RankGlue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := c.Get(tt.key, t0)
			if !ok {
				t.Fatal("not found")
			}
			if a := got.RRs[0].(*dns.A).A.String(); a != tt.want || got.Rank != tt.rank {
				t.Errorf("got %s at %s, want %s at %s", a, got.Rank, tt.want, tt.rank)
			}
		})
	}
	if _, ok := c.Get(main.On(SideChild), t0); ok {
		t.Error("a side never stored answered")
	}
}

// TestHashCollisionIsAMissNotAWrongEntry plants an entry under the hash
// of another key, as a 64-bit collision would: the other key must miss,
// must not delete it, and its own Put must replace it whatever the ranks.
func TestHashCollisionIsAMissNotAWrongEntry(t *testing.T) {
	c := New(Config{})
	ka, kb := NewKey("a.example.", dns.TypeA, dns.ClassINET), NewKey("b.example.", dns.TypeA, dns.ClassINET)
	ea := aEntry(t, "a.example.", 300)
	ea.Rank = RankAnswerAA
	h := c.hash(kb)
	s := &c.shards[h&c.mask]
	s.mu.Lock()
	it := newItem(ka, &ea, t0.Add(time.Hour).UnixNano())
	s.addLocked(h, it, it.cost())
	s.mu.Unlock()
	if _, ok := c.Get(kb, t0); ok {
		t.Fatal("Get of the colliding key returned the other key's entry")
	}
	c.Delete(kb)
	if c.Len() != 1 {
		t.Fatal("Delete of the colliding key removed the other key's entry")
	}
	eb := aEntry(t, "b.example.", 300)
	eb.Rank = RankAdditional
	if !c.Put(kb, eb, t0) {
		t.Fatal("a lower-ranked entry of another key was refused over a collision")
	}
	if got, ok := c.Get(kb, t0); !ok || got.RRs[0].Header().Name != "b.example." {
		t.Fatalf("Get after Put = %v, %v", got, ok)
	}
}

// TestCopyRRIsADeepCopy: the address records copyRR and copyOne lay out
// themselves equal the original and share no byte with it, like
// dns.Copy's.
func TestCopyRRIsADeepCopy(t *testing.T) {
	one := func(rr dns.RR) dns.RR {
		s := copyOne(rr)
		if len(s) != 1 || cap(s) != 1 {
			t.Fatalf("copyOne(%s) = %v, cap %d", rr, s, cap(s))
		}
		return s[0]
	}
	for _, copyFn := range []func(dns.RR) dns.RR{copyRR, one} {
		for _, rr := range []dns.RR{
			mustRR(t, "a.example. 300 IN A 192.0.2.1"), // the 16-byte form text gives
			&dns.A{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 1).To4()},
			mustRR(t, "a.example. 300 IN AAAA 2001:db8::1"),
			mustRR(t, "a.example. 300 IN TXT \"x\""),
		} {
			want := rr.String()
			cp := copyFn(rr)
			if cp == rr || cp.String() != want || dns.Len(cp) != dns.Len(rr) {
				t.Fatalf("copy of %s = %v", want, cp)
			}
			switch v := cp.(type) {
			case *dns.A:
				if len(v.A) != len(rr.(*dns.A).A) {
					t.Errorf("copy of %s: a %d-byte address became %d bytes", want, len(rr.(*dns.A).A), len(v.A))
				}
				v.A[len(v.A)-1] ^= 0xff
			case *dns.AAAA:
				v.AAAA[len(v.AAAA)-1] ^= 0xff
			}
			cp.Header().Ttl++
			if rr.String() != want {
				t.Errorf("changing the copy of %s changed the original to %s", want, rr)
			}
		}
	}
}
