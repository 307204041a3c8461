package resolver

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func rrs(t testing.TB, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("bad RR %q: %v", l, err)
		}
		out = append(out, rr)
	}
	return out
}

func reply(rcode int, aa bool, answer, ns, extra []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.Response = true
	m.Rcode = rcode
	m.Authoritative = aa
	m.Answer, m.Ns, m.Extra = answer, ns, extra
	return m
}

func names(rrs []dns.RR) string {
	var b []string
	for _, rr := range rrs {
		b = append(b, strings.ToLower(rr.Header().Name)+"/"+dns.TypeToString[rr.Header().Rrtype])
	}
	return strings.Join(b, " ")
}

func TestScrub(t *testing.T) {
	ns3 := rrs(t, "bank.test. 3600 NS a.bank.test.", "bank.test. 3600 NS b.bank.test.", "bank.test. 3600 NS c.bank.test.")
	glue3 := rrs(t, "a.bank.test. 3600 A 192.0.2.1", "b.bank.test. 3600 A 192.0.2.2", "c.bank.test. 3600 AAAA 2001:db8::3")
	tests := []struct {
		name             string
		zone, qname      string
		qtype            uint16
		maxNS            int // 0: the default of 20
		msg              *dns.Msg
		answer, ns, glue string
	}{
		{
			name: "NSAnswerKeepsFirstRecordsAndTheirAddresses",
			zone: "bank.test.", qname: "bank.test.", qtype: dns.TypeNS, maxNS: 1,
			msg:    reply(0, true, ns3, nil, glue3),
			answer: "bank.test./NS",
			glue:   "a.bank.test./A",
		},
		{
			name: "ReferralKeepsFirstRecordsAndTheirGlue",
			zone: "test.", qname: "www.bank.test.", qtype: dns.TypeA, maxNS: 2,
			msg:  reply(0, false, nil, ns3, glue3),
			ns:   "bank.test./NS bank.test./NS",
			glue: "a.bank.test./A b.bank.test./A",
		},
		{
			name: "SetWithinTheLimitIsWhole",
			zone: "test.", qname: "www.bank.test.", qtype: dns.TypeA, maxNS: 20,
			msg:  reply(0, false, nil, ns3, glue3),
			ns:   "bank.test./NS bank.test./NS bank.test./NS",
			glue: "a.bank.test./A b.bank.test./A c.bank.test./AAAA",
		},
		{
			name: "ReferralOutOfBailiwickGlueIsIgnored",
			zone: "test.", qname: "www.bank.test.", qtype: dns.TypeA,
			msg: reply(0, false, nil,
				rrs(t, "bank.test. 3600 NS ns1.bank.test.", "bank.test. 3600 NS ns.evil.example."),
				rrs(t, "ns1.bank.test. 3600 A 192.0.2.1", "ns.evil.example. 3600 A 6.6.6.6", "www.bank.test. 3600 A 6.6.6.6")),
			ns:   "bank.test./NS bank.test./NS",
			glue: "ns1.bank.test./A",
		},
		{
			name: "GlueMatchesItsNSTargetWhateverTheCase",
			zone: "test.", qname: "www.bank.test.", qtype: dns.TypeA,
			msg: reply(0, false, nil,
				rrs(t, "bank.test. 3600 NS NS1.Bank.TEST."),
				rrs(t, "ns1.bank.test. 3600 A 192.0.2.1", "ns2.bank.test. 3600 A 6.6.6.6")),
			ns:   "bank.test./NS",
			glue: "ns1.bank.test./A",
		},
		{
			name: "ManyAddressesKeepOnlyTheNamedOnes",
			zone: "test.", qname: "www.bank.test.", qtype: dns.TypeA,
			msg: reply(0, false, nil,
				rrs(t, "bank.test. 3600 NS ns9.bank.test."),
				rrs(t, "ns1.bank.test. 3600 A 6.6.6.1", "ns2.bank.test. 3600 A 6.6.6.2", "ns3.bank.test. 3600 A 6.6.6.3",
					"ns4.bank.test. 3600 A 6.6.6.4", "ns5.bank.test. 3600 A 6.6.6.5", "ns6.bank.test. 3600 A 6.6.6.6",
					"ns7.bank.test. 3600 A 6.6.6.7", "ns8.bank.test. 3600 A 6.6.6.8", "ns9.bank.test. 3600 A 192.0.2.9")),
			ns:   "bank.test./NS",
			glue: "ns9.bank.test./A",
		},
		{
			name: "AnswerForAnotherNameIsDropped",
			zone: "bank.test.", qname: "www.bank.test.", qtype: dns.TypeA,
			msg:    reply(0, true, rrs(t, "www.bank.test. 300 A 192.0.2.1", "mail.bank.test. 300 A 6.6.6.6"), nil, nil),
			answer: "www.bank.test./A",
		},
		{
			name: "CNAMETargetDataIsAskedForAgain",
			zone: "bank.test.", qname: "www.bank.test.", qtype: dns.TypeA,
			msg: reply(0, true, rrs(t,
				"www.bank.test. 300 CNAME web.bank.test.",
				"web.bank.test. 300 CNAME cdn.other.test.",
				"cdn.other.test. 300 A 6.6.6.6"), nil, nil),
			answer: "www.bank.test./CNAME",
		},
		{
			name: "PromiscuousNSForOtherZoneIsDropped",
			zone: "test.", qname: "www.bank.test.", qtype: dns.TypeA,
			msg: reply(0, false, nil,
				rrs(t, "bank.test. 3600 NS ns1.bank.test.", "other.test. 3600 NS ns.evil.test."), nil),
			ns: "bank.test./NS",
		},
		{
			name: "AuthorityOutsideZoneIsDropped",
			zone: "bank.test.", qname: "nx.bank.test.", qtype: dns.TypeA,
			msg: reply(dns.RcodeNameError, true, nil,
				rrs(t, "bank.test. 300 SOA ns1.bank.test. h.bank.test. 1 2 3 4 300", "test. 300 NS ns.evil.test."), nil),
			ns: "bank.test./SOA",
		},
		{
			name: "DNAMEInsideZoneIsKeptWithoutTargetData",
			zone: "bank.test.", qname: "www.old.bank.test.", qtype: dns.TypeA,
			msg: reply(0, true, rrs(t,
				"old.bank.test. 300 DNAME new.bank.test.",
				"www.old.bank.test. 300 CNAME www.new.bank.test.",
				"www.new.bank.test. 300 A 192.0.2.2"), nil, nil),
			answer: "old.bank.test./DNAME www.old.bank.test./CNAME",
		},
		{
			name: "CNAMEBeforeOtherDataWins",
			zone: "bank.test.", qname: "www.bank.test.", qtype: dns.TypeA,
			msg:    reply(0, true, rrs(t, "www.bank.test. 300 CNAME web.bank.test.", "www.bank.test. 300 A 192.0.2.1"), nil, nil),
			answer: "www.bank.test./CNAME",
		},
		{
			name: "OtherDataBeforeCNAMEWins",
			zone: "bank.test.", qname: "www.bank.test.", qtype: dns.TypeA,
			msg:    reply(0, true, rrs(t, "www.bank.test. 300 A 192.0.2.1", "www.bank.test. 300 CNAME web.bank.test."), nil, nil),
			answer: "www.bank.test./A",
		},
		{
			name: "RRSIGOfDroppedRRsetIsDropped",
			zone: "bank.test.", qname: "www.bank.test.", qtype: dns.TypeA,
			msg: reply(0, true, rrs(t,
				"www.bank.test. 300 A 192.0.2.1",
				"www.bank.test. 300 RRSIG A 8 3 300 20300101000000 20200101000000 1 bank.test. AAAA",
				"mail.bank.test. 300 RRSIG A 8 3 300 20300101000000 20200101000000 1 bank.test. AAAA"), nil, nil),
			answer: "www.bank.test./A www.bank.test./RRSIG",
		},
		{
			name: "NSECAnswerPointingOutsideZoneIsDropped",
			zone: "bank.test.", qname: "bank.test.", qtype: dns.TypeNSEC,
			msg: reply(0, true, rrs(t,
				"bank.test. 300 NSEC b.other.test. NS SOA RRSIG NSEC",
				"bank.test. 300 RRSIG NSEC 8 2 300 20300101000000 20200101000000 1 bank.test. AAAA"), nil, nil),
		},
		{
			name: "NSECProofPointingOutsideZoneIsDropped",
			zone: "bank.test.", qname: "nx.bank.test.", qtype: dns.TypeA,
			msg: reply(dns.RcodeNameError, true, nil, rrs(t,
				"bank.test. 300 SOA ns1.bank.test. h.bank.test. 1 2 3 4 300",
				"mail.bank.test. 300 NSEC www.other.test. A RRSIG NSEC",
				"bank.test. 300 NSEC mail.bank.test. NS SOA RRSIG NSEC"), nil),
			ns: "bank.test./SOA bank.test./NSEC",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxNS := tc.maxNS
			if maxNS == 0 {
				maxNS = 20
			}
			s := scrub(tc.msg.Copy(), tc.zone, tc.qname, tc.qtype, maxNS)
			if got := names(s.msg.Answer); got != tc.answer {
				t.Errorf("answer = %q, want %q", got, tc.answer)
			}
			if got := names(s.msg.Ns); got != tc.ns {
				t.Errorf("authority = %q, want %q", got, tc.ns)
			}
			if got := names(s.msg.Extra); got != tc.glue {
				t.Errorf("additional = %q, want %q", got, tc.glue)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	soa := "bank.test. 300 SOA ns1.bank.test. h.bank.test. 1 2 3 4 300"
	tests := []struct {
		name  string
		zone  string
		qtype uint16
		msg   *dns.Msg
		want  responseKind
	}{
		{"Answer", "bank.test.", dns.TypeA, reply(0, true, rrs(t, "www.bank.test. 300 A 192.0.2.1"), nil, nil), kindAnswer},
		{"CNAME", "bank.test.", dns.TypeA, reply(0, true, rrs(t, "www.bank.test. 300 CNAME x.bank.test."), nil, nil), kindCNAME},
		{"NXDomain", "bank.test.", dns.TypeA, reply(dns.RcodeNameError, true, nil, rrs(t, soa), nil), kindNXDomain},
		{"NoData", "bank.test.", dns.TypeA, reply(0, true, nil, rrs(t, soa), nil), kindNoData},
		{"Referral", "test.", dns.TypeA, reply(0, false, nil, rrs(t, "bank.test. 300 NS ns1.bank.test."), nil), kindReferral},
		{"UpwardReferralIsLame", "bank.test.", dns.TypeA, reply(0, false, nil, rrs(t, "test. 300 NS ns1.test."), nil), kindLame},
		{"ReferralToSameZoneIsLame", "bank.test.", dns.TypeA, reply(0, false, nil, rrs(t, "bank.test. 300 NS ns1.bank.test."), nil), kindLame},
		{"RefusedIsLame", "bank.test.", dns.TypeA, reply(dns.RcodeRefused, false, nil, nil, nil), kindLame},
		{"ServfailIsLame", "bank.test.", dns.TypeA, reply(dns.RcodeServerFailure, false, nil, nil, nil), kindLame},
		{"EmptyReplyIsNoData", "bank.test.", dns.TypeA, reply(0, true, nil, nil, nil), kindNoData},
		{"TruncatedOverTCPIsLame", "bank.test.", dns.TypeA, func() *dns.Msg {
			m := reply(0, true, rrs(t, "www.bank.test. 300 A 192.0.2.1"), nil, nil)
			m.Truncated = true
			return m
		}(), kindLame},
		{"JunkAnswerIsNoData", "bank.test.", dns.TypeA, reply(0, true, rrs(t, "evil.example. 300 A 6.6.6.6"), nil, nil), kindNoData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := scrub(tc.msg, tc.zone, "www.bank.test.", tc.qtype, 20)
			if got := classify(s, tc.zone, "www.bank.test.", tc.qtype); got != tc.want {
				t.Errorf("classify = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzScrub(f *testing.F) {
	m := reply(0, false, nil, rrs(f, "bank.test. 3600 NS ns1.bank.test."), rrs(f, "ns1.bank.test. 3600 A 192.0.2.1", "ns.evil.example. 3600 A 6.6.6.6"))
	m.SetQuestion("www.bank.test.", dns.TypeA)
	b, _ := m.Pack()
	f.Add(b, "test.")
	f.Fuzz(func(t *testing.T, data []byte, zone string) {
		var in dns.Msg
		if in.Unpack(data) != nil || len(in.Question) != 1 {
			return
		}
		if _, ok := dns.IsDomainName(zone); !ok {
			return
		}
		zone = dns.Fqdn(zone)
		q := in.Question[0]
		s := scrub(&in, zone, q.Name, q.Qtype, 20)
		for _, sec := range [][]dns.RR{s.msg.Answer, s.msg.Ns, s.msg.Extra} {
			for _, rr := range sec {
				if rr.Header().Rrtype != dns.TypeOPT && !inBailiwick(rr.Header().Name, zone) {
					t.Fatalf("out-of-bailiwick record kept for zone %s: %s", zone, rr)
				}
			}
		}
		classify(s, zone, q.Name, q.Qtype)
	})
}

func TestScrubKeepsADNAMEWithTheCNAMEItSynthesises(t *testing.T) {
	const dname = "old.bank.test. 300 DNAME new.bank.test."
	tests := []struct {
		name         string
		qtype        uint16
		answer       []string
		want         string
		contradicted bool
	}{
		{"MatchingCNAMEIsKept", dns.TypeA,
			[]string{dname, "www.old.bank.test. 300 CNAME www.new.bank.test."},
			"old.bank.test. DNAME new.bank.test.; www.old.bank.test. CNAME www.new.bank.test.", false},
		{"MissingCNAMEIsSynthesisedWithTheDNAMETTL", dns.TypeA,
			[]string{dname},
			"old.bank.test. DNAME new.bank.test.; www.old.bank.test. CNAME www.new.bank.test.", false},
		{"ContradictingCNAMEIsReplacedAndReported", dns.TypeA,
			[]string{dname, "www.old.bank.test. 300 CNAME www.evil.test."},
			"old.bank.test. DNAME new.bank.test.; www.old.bank.test. CNAME www.new.bank.test.", true},
		{"ReversedOrderIsTheSame", dns.TypeA,
			[]string{"www.old.bank.test. 300 CNAME www.new.bank.test.", dname},
			"www.old.bank.test. CNAME www.new.bank.test.; old.bank.test. DNAME new.bank.test.", false},
		{"DataAtTheNameUnderADNAMEIsDropped", dns.TypeA,
			[]string{dname, "www.old.bank.test. 300 A 6.6.6.6"},
			"old.bank.test. DNAME new.bank.test.; www.old.bank.test. CNAME www.new.bank.test.", false},
		{"CNAMEQuestionGetsTheDNAMEToo", dns.TypeCNAME,
			[]string{dname, "www.old.bank.test. 300 CNAME www.new.bank.test."},
			"old.bank.test. DNAME new.bank.test.; www.old.bank.test. CNAME www.new.bank.test.", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := scrub(reply(0, true, rrs(t, tc.answer...), nil, nil), "bank.test.", "www.old.bank.test.", tc.qtype, 20)
			var got []string
			for _, rr := range s.msg.Answer {
				f := strings.Fields(rr.String())
				got = append(got, f[0]+" "+strings.Join(f[3:], " "))
				if rr.Header().Ttl != 300 {
					t.Errorf("%s: TTL %d, want the DNAME's 300", rr.Header().Name, rr.Header().Ttl)
				}
			}
			if strings.Join(got, "; ") != tc.want {
				t.Errorf("answer %q, want %q", strings.Join(got, "; "), tc.want)
			}
			if s.contradicted != tc.contradicted {
				t.Errorf("contradicted = %v, want %v", s.contradicted, tc.contradicted)
			}
		})
	}
}

// An unsigned answer's sections are the reply's own, capped: appending
// to them must not write into the reply.
func TestScrubbedSectionsLeaveTheReplyAlone(t *testing.T) {
	answer := rrs(t, "www.example.com. 300 IN A 192.0.2.1", "www.example.com. 300 IN A 192.0.2.2")
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1232}}
	in := reply(dns.RcodeSuccess, true, append(make([]dns.RR, 0, 4), answer...), nil, append(make([]dns.RR, 0, 4), opt))
	s := scrub(in, "example.com.", "www.example.com.", dns.TypeA, 20)
	if names(s.msg.Answer) != names(answer) || len(s.msg.Extra) != 1 || s.msg.Extra[0] != opt {
		t.Fatalf("scrubbed answer %v, additional %v", s.msg.Answer, s.msg.Extra)
	}
	extra := rrs(t, "x.example.com. 300 IN A 192.0.2.9")[0]
	_ = append(s.msg.Answer, extra)
	_ = append(s.msg.Extra, extra)
	if in.Answer[:3][2] != nil || in.Extra[:2][1] != nil {
		t.Error("appending to a scrubbed section wrote into the reply")
	}
}
