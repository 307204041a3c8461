package resolver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/bulwark-dns/bulwark/validate"
)

// Addresses of the forward-zone tests: corp.test is served only by its
// forwarder (test. does not delegate it), and the attacker's server
// claims example.test.
const (
	forwarderAddr = "127.53.9.1"
	evilAddr      = "127.53.9.9"
	forgedA       = "6.6.6.6"
)

// forwardWorld is world plus corp.test on a forwarder nothing delegates
// to, and an evil server that answers for example.test with forgedA.
func forwardWorld(t *testing.T) (*simnet.Hierarchy, *simnet.Server, *simnet.Server) {
	t.Helper()
	h := world(t)
	corp, err := simnet.ParseZone("corp.test.", "@ 300 SOA ns.corp.test. h.corp.test. 1 3600 900 604800 300\n@ 300 NS ns.corp.test.\nwww 300 A 192.0.2.80\n")
	if err != nil {
		t.Fatal(err)
	}
	evil, err := simnet.ParseZone("example.test.", "@ 300 SOA ns.evil.test. h.evil.test. 1 3600 900 604800 300\n@ 300 NS ns.evil.test.\n* 300 A "+forgedA+"\n")
	if err != nil {
		t.Fatal(err)
	}
	fwd := h.Net.AddServer(netip.MustParseAddr(forwarderAddr), corp)
	bad := h.Net.AddServer(netip.MustParseAddr(evilAddr), evil)
	return h, fwd, bad
}

func forwardCorp(c *Config) {
	c.ForwardZones = []ForwardZone{{Zone: "Corp.Test", Addrs: []netip.AddrPort{netip.MustParseAddrPort(forwarderAddr + ":53")}}}
}

func TestForwardZoneIsAskedWithRecursionForTheFullName(t *testing.T) {
	h, fwd, _ := forwardWorld(t)
	f := newFixture(t, h, forwardCorp)
	m := f.ask(t, "a.b.www.corp.test.", dns.TypeA)
	if m.Rcode != dns.RcodeNameError {
		t.Fatalf("a.b.www.corp.test: rcode %s, want NXDOMAIN from the forwarder", dns.RcodeToString[m.Rcode])
	}
	if m = f.ask(t, "www.corp.test.", dns.TypeA); answerText(m) != "www.corp.test. A 192.0.2.80" {
		t.Fatalf("www.corp.test: %q", answerText(m))
	}
	qs := fwd.Queries()
	if len(qs) != 2 {
		t.Fatalf("forwarder got %d queries, want 2", len(qs))
	}
	for _, q := range qs {
		if q.Wire[2]&0x01 == 0 || q.Type != dns.TypeA || !strings.EqualFold(q.Name, "www.corp.test.") && !strings.EqualFold(q.Name, "a.b.www.corp.test.") {
			t.Errorf("forwarder asked %s %s with RD=%v, want the full name, type A, RD=1", q.Name, dns.TypeToString[q.Type], q.Wire[2]&0x01 != 0)
		}
	}
	if n := len(h.Server("127.53.0.1").Queries()); n != 0 {
		t.Errorf("the root was asked %d times for names in the forward zone", n)
	}
}

// TestForwardedNSAndGlueNeverSteerIteration is the unit-level MaginotDNS
// case: the forwarder adds NS sets for test. and example.test naming the
// evil server, with glue, to every section of its answers. Scrubbed, none
// of it is kept; unscrubbed (the teeth), example.test is hijacked.
func TestForwardedNSAndGlueNeverSteerIteration(t *testing.T) {
	tests := []struct {
		name       string
		unscrubbed bool
		wantA      string
	}{
		{name: "Scrubbed", wantA: "192.0.2.1"},
		{name: "UnscrubbedIsPoisoned", unscrubbed: true, wantA: forgedA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, fwd, bad := forwardWorld(t)
			fwd.Update(func(k *simnet.Knobs) {
				k.Handler = func(q *dns.Msg, tcp bool) *dns.Msg { return withInjectedDelegations(fwd.Honest(q, tcp)) }
			})
			f := newFixture(t, h, func(c *Config) { forwardCorp(c); c.UnsafeForwardUnscrubbed = tc.unscrubbed })
			if got := answerText(f.ask(t, "www.corp.test.", dns.TypeA)); !strings.HasPrefix(got, "www.corp.test. A 192.0.2.80") {
				t.Fatalf("www.corp.test: %q", got)
			}
			got := answerText(f.ask(t, "www.example.test.", dns.TypeA))
			if got != "www.example.test. A "+tc.wantA {
				t.Errorf("www.example.test: %q, want A %s", got, tc.wantA)
			}
			if n := len(bad.Queries()); (n > 0) != tc.unscrubbed {
				t.Errorf("the evil server was asked %d times", n)
			}
		})
	}
}

// withInjectedDelegations adds the attacker's NS sets and glue to every
// section of a reply.
func withInjectedDelegations(m *dns.Msg) *dns.Msg {
	if m == nil {
		return nil
	}
	var inject []dns.RR
	for _, s := range []string{"test. 86400 IN NS ns.evil.test.", "example.test. 86400 IN NS ns.evil.test.", "ns.evil.test. 86400 IN A " + evilAddr} {
		rr, _ := dns.NewRR(s)
		inject = append(inject, rr)
	}
	m.Answer = append(m.Answer, inject...)
	m.Ns = append(m.Ns, inject[:2]...)
	m.Extra = append(m.Extra, inject[2])
	return m
}

func TestScrubForwardedKeepsOnlyTheForwardZonesAnswers(t *testing.T) {
	tests := []struct {
		name                string
		answer, ns, extra   []dns.RR
		wantAn, wantNs, wEx string
	}{
		{
			name:   "AnswerKeptOutOfZoneDropped",
			answer: rrs(t, "www.corp.test. 300 IN A 192.0.2.80", "www.bank.test. 300 IN A 6.6.6.6", "bank.test. 300 IN NS ns.evil.test."),
			wantAn: "www.corp.test./A",
		},
		{
			name:   "NSAndGlueDroppedInsideTheZoneToo",
			answer: rrs(t, "www.corp.test. 300 IN A 192.0.2.80"),
			ns:     rrs(t, "corp.test. 300 IN NS ns.corp.test.", "test. 300 IN NS ns.evil.test."),
			extra:  rrs(t, "ns.corp.test. 300 IN A 192.0.2.53", "ns.evil.test. 300 IN A 6.6.6.6"),
			wantAn: "www.corp.test./A",
		},
		{
			name:   "NegativeProofsInsideTheZoneKept",
			ns:     rrs(t, "corp.test. 300 IN SOA ns.corp.test. h.corp.test. 1 3600 900 604800 300", "test. 300 IN SOA ns.test. h.test. 1 3600 900 604800 300"),
			wantNs: "corp.test./SOA",
		},
		{
			name:   "ChainTargetOutsideTheZoneAskedOnItsOwn",
			answer: rrs(t, "www.corp.test. 300 IN CNAME www.bank.test.", "www.bank.test. 300 IN A 6.6.6.6"),
			wantAn: "www.corp.test./CNAME",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := scrubForwarded(reply(dns.RcodeSuccess, false, tc.answer, tc.ns, tc.extra), "corp.test.", "www.corp.test.", dns.TypeA, 20)
			if got := names(s.msg.Answer); got != tc.wantAn {
				t.Errorf("answer %q, want %q", got, tc.wantAn)
			}
			if got := names(s.msg.Ns); got != tc.wantNs {
				t.Errorf("authority %q, want %q", got, tc.wantNs)
			}
			if got := names(s.msg.Extra); got != tc.wEx {
				t.Errorf("additional %q, want %q", got, tc.wEx)
			}
			if k := classify(s, "corp.test.", "www.corp.test.", dns.TypeA); k == kindReferral || k == kindLame {
				t.Errorf("classified %s: a forwarded reply is never a referral", k)
			}
		})
	}
}

func TestForwardZoneConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		zone ForwardZone
		want string
	}{
		{name: "NotAName", zone: ForwardZone{Zone: "a..b", Addrs: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}}, want: "is not a domain name"},
		{name: "NoForwarder", zone: ForwardZone{Zone: "corp.test."}, want: "has no forward-addr usable"},
		{name: "OnlyIPv6WithIPv6Off", zone: ForwardZone{Zone: "corp.test.", Addrs: []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::1]:53")}}, want: "has no forward-addr usable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.DoIPv6 = false
			c.ForwardZones = []ForwardZone{tc.zone}
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestForwardedAnswersAreValidated forwards the signed example.test of the
// e2e hierarchy to its own server: answers and denials through the
// forwarder validate, its DNSKEY set is fetched through the forwarder and
// its DS from the parent, and a forwarded answer whose signature is
// broken is SERVFAIL.
func TestForwardedAnswersAreValidated(t *testing.T) {
	tests := []struct {
		name, qname string
		tamper      bool
		rcode       int
		ad          bool
	}{
		{name: "Answer", qname: "www.example.test.", rcode: dns.RcodeSuccess, ad: true},
		{name: "NXDOMAIN", qname: "nothere.example.test.", rcode: dns.RcodeNameError, ad: true},
		{name: "CNAMEOutOfTheZoneIsIterated", qname: "alias.example.test.", rcode: dns.RcodeSuccess, ad: true},
		{name: "BrokenSignature", qname: "www.example.test.", tamper: true, rcode: dns.RcodeServerFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := buildE2E(t, leafSpec{signer: "go", alg: dns.ECDSAP256SHA256, mode: signModes[0], win: validWindow})
			if tc.tamper {
				tamper(t, w.h, e2eLeafAddr, editAnswerSigs(tc.qname, dns.TypeA, flipSignature))
			}
			e := w.resolver(t)
			r, err := New(func() Config {
				c := e.r.cfg
				c.ForwardZones = []ForwardZone{{Zone: "example.test.", Addrs: []netip.AddrPort{netip.MustParseAddrPort(e2eLeafAddr + ":53")}}}
				return c
			}(), e.r.deps)
			if err != nil {
				t.Fatal(err)
			}
			e.r = r
			m := e.ask(t, tc.qname, dns.TypeA, askFlags{do: true})
			if m.Rcode != tc.rcode || m.AuthenticatedData != tc.ad {
				t.Fatalf("%s AD=%v %q (EDE %v), want %s AD=%v", dns.RcodeToString[m.Rcode], m.AuthenticatedData, answerData(m), edeOf(m), dns.RcodeToString[tc.rcode], tc.ad)
			}
			if !askedFor(w.h.Server(e2eLeafAddr), "example.test.", dns.TypeDNSKEY) || askedFor(w.h.Server(e2eLeafAddr), "example.test.", dns.TypeDS) {
				t.Errorf("the forwarder should be asked for example.test's DNSKEY set and never for its DS")
			}
			if !askedFor(w.h.Server(e2eTLDAddr), "example.test.", dns.TypeDS) {
				t.Errorf("the parent was not asked for example.test's DS")
			}
		})
	}
}

// askedFor reports whether s received a query for (name, qtype).
func askedFor(s *simnet.Server, name string, qtype uint16) bool {
	for _, q := range s.Queries() {
		if q.Type == qtype && strings.EqualFold(q.Name, name) {
			return true
		}
	}
	return false
}

func TestForwardedReplyZoneIsTheTrustAnchorBelowTheForwardZone(t *testing.T) {
	ds := rrs(t, "a.example. 3600 IN DS 30899 5 1 d4bf9d2e10f6d76840d42ef5913022abcd0bf512")
	v, err := validate.New(validate.Config{Clock: simnet.NewClock(e2eNow), Anchors: ds})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, zone, qname string
		qtype             uint16
		validator         bool
		want              string
	}{
		{name: "AnchorBelowTheForwardZone", zone: ".", qname: "www.a.example.", qtype: dns.TypeA, validator: true, want: "a.example."},
		{name: "DSOfTheAnchorIsTheParents", zone: ".", qname: "a.example.", qtype: dns.TypeDS, validator: true, want: "."},
		{name: "ZoneBelowTheAnchorKept", zone: "b.a.example.", qname: "www.b.a.example.", qtype: dns.TypeA, validator: true, want: "b.a.example."},
		{name: "NoValidator", zone: ".", qname: "www.a.example.", qtype: dns.TypeA, want: "."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Resolver{}
			if tc.validator {
				r.deps.Validator = v
			}
			if got := r.anchoredZone(tc.zone, tc.qname, tc.qtype); got != tc.want {
				t.Errorf("zone %q, want %q", got, tc.want)
			}
		})
	}
}
