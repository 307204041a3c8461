package simnet

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const exampleZone = `
www     300 IN A     192.0.2.1
alias   300 IN CNAME www
chain   300 IN CNAME alias
ext     300 IN CNAME www.other.test.
*.wild  300 IN A     192.0.2.7
d       300 IN DNAME target.example.test.
a.target 300 IN A    192.0.2.9
sub     300 IN NS    ns.sub
ns.sub  300 IN A     192.0.2.53
leaf.ent 300 IN A    192.0.2.10
mx      300 IN MX    10 www
`

func testHierarchy(t *testing.T) *Hierarchy {
	t.Helper()
	h := NewHierarchy(InstantTimeouts())
	h.Zone(".", []string{"127.53.0.1"}, ``)
	h.Zone("test.", []string{"127.53.0.2"}, ``)
	big := h.Zone("example.test.", []string{"127.53.1.1", "127.53.1.2"}, exampleZone)
	for i := 0; i < 40; i++ {
		rr, _ := dns.NewRR("big.example.test. 300 IN TXT \"" + strings.Repeat("x", 50) + string(rune('a'+i%26)) + strings.Repeat("y", i) + "\"")
		if err := big.Add(rr); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// exchange sends m to addr over the in-memory network and returns the reply.
func exchange(t *testing.T, n *Network, addr string, m *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	r, err := tryExchange(n, addr, m, tcp)
	if err != nil {
		t.Fatalf("exchange with %s: %v", addr, err)
	}
	return r
}

func tryExchange(n *Network, addr string, m *dns.Msg, tcp bool) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ap := netip.AddrPortFrom(netip.MustParseAddr(addr), 53)
	wire, err := m.Pack()
	if err != nil {
		return nil, err
	}
	var b []byte
	if tcp {
		c, err := n.DialTCP(ctx, ap)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		if err := c.WriteMsg(wire); err != nil {
			return nil, err
		}
		b, err = c.ReadMsg(ctx)
		if err != nil {
			return nil, err
		}
	} else {
		c, _ := n.DialUDP(ctx, ap)
		defer c.Close()
		if err := c.Write(wire); err != nil {
			return nil, err
		}
		d, err := c.Read(ctx)
		if err != nil {
			return nil, err
		}
		b = d.Data
	}
	r := new(dns.Msg)
	return r, r.Unpack(b)
}

func query(name string, qtype uint16, do bool) *dns.Msg {
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.RecursionDesired = false
	if do {
		m.SetEdns0(1232, true)
	}
	return m
}

// summary renders a section as "owner/TYPE" words, OPT left out.
func summary(rrs []dns.RR) string {
	var w []string
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			w = append(w, rr.Header().Name+"/"+dns.TypeToString[rr.Header().Rrtype])
		}
	}
	return strings.Join(w, " ")
}

type answerCase struct {
	name, server, qname string
	qtype               uint16
	tcp                 bool
	rcode               int
	aa, tc              bool
	answer, ns, extra   string
}

var answerCases = []answerCase{
	{name: "ExactMatchIsAuthoritative", server: "127.53.1.1", qname: "www.example.test.", qtype: dns.TypeA,
		aa: true, answer: "www.example.test./A"},
	{name: "SecondServerServesTheSameZone", server: "127.53.1.2", qname: "www.example.test.", qtype: dns.TypeA,
		aa: true, answer: "www.example.test./A"},
	{name: "CNAMEChainInsideTheZoneIsFollowed", server: "127.53.1.1", qname: "chain.example.test.", qtype: dns.TypeA,
		aa: true, answer: "chain.example.test./CNAME alias.example.test./CNAME www.example.test./A"},
	{name: "CNAMEOutOfZoneStopsAtTheAlias", server: "127.53.1.1", qname: "ext.example.test.", qtype: dns.TypeA,
		aa: true, answer: "ext.example.test./CNAME"},
	{name: "CNAMEQueriedForItself", server: "127.53.1.1", qname: "alias.example.test.", qtype: dns.TypeCNAME,
		aa: true, answer: "alias.example.test./CNAME"},
	{name: "DNAMESynthesisesACNAMEAndFollowsIt", server: "127.53.1.1", qname: "a.d.example.test.", qtype: dns.TypeA,
		aa: true, answer: "d.example.test./DNAME a.d.example.test./CNAME a.target.example.test./A"},
	{name: "WildcardAnswerTakesTheQueryName", server: "127.53.1.1", qname: "foo.wild.example.test.", qtype: dns.TypeA,
		aa: true, answer: "foo.wild.example.test./A"},
	{name: "WildcardWithoutTheTypeIsNoData", server: "127.53.1.1", qname: "foo.wild.example.test.", qtype: dns.TypeMX,
		aa: true, ns: "example.test./SOA"},
	{name: "ReferralAtDelegationCarriesNSAndGlueWithoutAA", server: "127.53.1.1", qname: "host.sub.example.test.", qtype: dns.TypeA,
		ns: "sub.example.test./NS", extra: "ns.sub.example.test./A"},
	{name: "DSAtDelegationIsAnsweredByTheParent", server: "127.53.1.1", qname: "sub.example.test.", qtype: dns.TypeDS,
		aa: true, ns: "example.test./SOA"},
	{name: "MissingNameIsNXDomainWithSOA", server: "127.53.1.1", qname: "nope.example.test.", qtype: dns.TypeA,
		rcode: dns.RcodeNameError, aa: true, ns: "example.test./SOA"},
	{name: "MissingTypeIsNoDataWithSOA", server: "127.53.1.1", qname: "www.example.test.", qtype: dns.TypeAAAA,
		aa: true, ns: "example.test./SOA"},
	{name: "EmptyNonTerminalIsNoData", server: "127.53.1.1", qname: "ent.example.test.", qtype: dns.TypeA,
		aa: true, ns: "example.test./SOA"},
	{name: "NameOutsideTheZonesIsRefused", server: "127.53.1.1", qname: "www.other.test.", qtype: dns.TypeA,
		rcode: dns.RcodeRefused},
	{name: "MXAnswerCarriesTargetAddress", server: "127.53.1.1", qname: "mx.example.test.", qtype: dns.TypeMX,
		aa: true, answer: "mx.example.test./MX", extra: "www.example.test./A"},
	{name: "RootRefersToTheTLDWithGlue", server: "127.53.0.1", qname: "www.example.test.", qtype: dns.TypeA,
		ns: "test./NS", extra: "ns1.test./A"},
	{name: "TLDRefersToTheLeafWithGlueForEveryServer", server: "127.53.0.2", qname: "www.example.test.", qtype: dns.TypeA,
		ns: "example.test./NS example.test./NS", extra: "ns1.example.test./A ns2.example.test./A"},
	{name: "RootPrimingAnswerCarriesAddresses", server: "127.53.0.1", qname: ".", qtype: dns.TypeNS,
		aa: true, answer: "./NS", extra: "ns1.root-servers.test./A"},
	{name: "RootServerNamesAreAuthoritativeInTheirZone", server: "127.53.0.2", qname: "ns1.root-servers.test.", qtype: dns.TypeA,
		aa: true, answer: "ns1.root-servers.test./A"},
	{name: "OversizedUDPAnswerIsTruncatedAndEmpty", server: "127.53.1.1", qname: "big.example.test.", qtype: dns.TypeTXT,
		aa: true, tc: true},
}

func TestAuthoritativeAnswers(t *testing.T) {
	h := testHierarchy(t)
	cases := answerCases
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := exchange(t, h.Net, c.server, query(c.qname, c.qtype, false), c.tcp)
			if r.Rcode != c.rcode || r.Authoritative != c.aa || r.Truncated != c.tc {
				t.Errorf("rcode %s aa %v tc %v, want %s %v %v", dns.RcodeToString[r.Rcode], r.Authoritative, r.Truncated,
					dns.RcodeToString[c.rcode], c.aa, c.tc)
			}
			if got := summary(r.Answer); got != c.answer {
				t.Errorf("answer %q, want %q", got, c.answer)
			}
			if got := summary(r.Ns); got != c.ns {
				t.Errorf("authority %q, want %q", got, c.ns)
			}
			if got := summary(r.Extra); got != c.extra {
				t.Errorf("additional %q, want %q", got, c.extra)
			}
		})
	}
}

func TestNegativeAnswerSOATTLIsTheMinimum(t *testing.T) {
	h := testHierarchy(t)
	r := exchange(t, h.Net, "127.53.1.1", query("nope.example.test.", dns.TypeA, false), false)
	if len(r.Ns) != 1 || r.Ns[0].Header().Ttl != NegativeTTL {
		t.Fatalf("authority %v, want one SOA with TTL %d", r.Ns, NegativeTTL)
	}
}

func TestTruncationFollowsTheEDNSBufferAndTCPCarriesAll(t *testing.T) {
	h := testHierarchy(t)
	small := query("big.example.test.", dns.TypeTXT, false)
	small.SetEdns0(1232, false)
	if r := exchange(t, h.Net, "127.53.1.1", small, false); !r.Truncated || len(r.Answer) != 0 || r.IsEdns0() == nil {
		t.Errorf("EDNS 1232: tc %v answers %d opt %v, want truncated with OPT kept", r.Truncated, len(r.Answer), r.IsEdns0())
	}
	large := query("big.example.test.", dns.TypeTXT, false)
	large.SetEdns0(8192, false)
	if r := exchange(t, h.Net, "127.53.1.1", large, false); r.Truncated || len(r.Answer) != 40 {
		t.Errorf("EDNS 8192: tc %v answers %d, want 40", r.Truncated, len(r.Answer))
	}
	if r := exchange(t, h.Net, "127.53.1.1", query("big.example.test.", dns.TypeTXT, false), true); r.Truncated || len(r.Answer) != 40 {
		t.Errorf("TCP: tc %v answers %d, want 40", r.Truncated, len(r.Answer))
	}
}

func TestRootHintsListEveryRootServer(t *testing.T) {
	h := NewHierarchy()
	h.Zone(".", []string{"127.53.0.1", "127.53.0.3"}, ``)
	got := summary(h.RootHints())
	want := "./NS ./NS ns1.root-servers.test./A ns2.root-servers.test./A"
	if got != want {
		t.Fatalf("root hints %q, want %q", got, want)
	}
}

func TestGluelessDelegationPointsToAnotherZone(t *testing.T) {
	h := NewHierarchy(InstantTimeouts())
	h.Zone(".", []string{"127.53.0.1"}, ``)
	h.Zone("test.", []string{"127.53.0.2"}, ``)
	h.ZoneWithNS("example.test.", map[string][]string{"ns.provider.test.": {"127.53.2.1"}}, `www 300 IN A 192.0.2.1`)
	h.Zone("provider.test.", []string{"127.53.3.1"}, ``)

	r := exchange(t, h.Net, "127.53.0.2", query("www.example.test.", dns.TypeA, false), false)
	if summary(r.Ns) != "example.test./NS" || len(r.Extra) != 0 {
		t.Errorf("referral ns %q extra %q, want NS without glue", summary(r.Ns), summary(r.Extra))
	}
	r = exchange(t, h.Net, "127.53.3.1", query("ns.provider.test.", dns.TypeA, false), false)
	if summary(r.Answer) != "ns.provider.test./A" || !r.Authoritative {
		t.Errorf("provider answer %q, want the NS name's address", summary(r.Answer))
	}
	r = exchange(t, h.Net, "127.53.2.1", query("www.example.test.", dns.TypeA, false), false)
	if summary(r.Answer) != "www.example.test./A" {
		t.Errorf("served answer %q", summary(r.Answer))
	}
}

func TestZonesMayBeAddedChildFirst(t *testing.T) {
	h := NewHierarchy()
	h.Zone("example.test.", []string{"127.53.1.1"}, `www 300 IN A 192.0.2.1`)
	h.Zone(".", []string{"127.53.0.1"}, ``)
	r := exchange(t, h.Net, "127.53.0.1", query("www.example.test.", dns.TypeA, false), false)
	if summary(r.Ns) != "example.test./NS" || summary(r.Extra) != "ns1.example.test./A" {
		t.Fatalf("referral ns %q extra %q", summary(r.Ns), summary(r.Extra))
	}
}

func TestParseZoneErrorNamesTheLine(t *testing.T) {
	_, err := ParseZone("example.test.", "www 300 IN A 192.0.2.1\nbad 300 IN A not-an-address\n")
	if err == nil || !strings.Contains(err.Error(), "line: 2") {
		t.Fatalf("error %v, want it to name line 2", err)
	}
	if _, err := ParseZone("example.test.", "www.other.test. 300 IN A 192.0.2.1"); err == nil {
		t.Fatal("record outside the zone accepted")
	}
}

func TestQuestionCaseIsEchoedExactly(t *testing.T) {
	h := testHierarchy(t)
	r := exchange(t, h.Net, "127.53.1.1", query("WwW.ExAmPlE.tEsT.", dns.TypeA, false), false)
	if r.Question[0].Name != "WwW.ExAmPlE.tEsT." || len(r.Answer) != 1 {
		t.Fatalf("question %q answers %d", r.Question[0].Name, len(r.Answer))
	}
}
