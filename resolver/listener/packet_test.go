package listener

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func withEDNS(m *dns.Msg, size uint16, version uint8) *dns.Msg {
	m.SetEdns0(size, false)
	m.IsEdns0().SetVersion(version)
	return m
}

func withTwoOPT(m *dns.Msg) *dns.Msg {
	m.SetEdns0(1232, false)
	m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1232}})
	return m
}

func withOpcode(m *dns.Msg, op int) *dns.Msg { m.Opcode = op; return m }

func withQR(m *dns.Msg) *dns.Msg { m.Response = true; return m }

func rawWithQDCount(t *testing.T, n uint16) []byte {
	b := pack(t, query("example.", dns.TypeA))
	b[4], b[5] = byte(n>>8), byte(n)
	return b
}

func TestProcessAppliesEachRuleBeforeTheHandler(t *testing.T) {
	q := func() *dns.Msg { return query("example.", dns.TypeA) }
	port := func(p uint16) netip.AddrPort { return netip.AddrPortFrom(loopback.Addr(), p) }
	outside := netip.MustParseAddrPort("192.0.2.7:4000")
	private := netip.MustParseAddrPort("192.168.1.1:4000")
	tests := []struct {
		name   string
		raw    []byte
		client netip.AddrPort
		udp    bool
		drop   bool
		rcode  int
		served bool // the handler saw the query
	}{
		{name: "AllowedQueryReachesHandler", raw: pack(t, q()), client: loopback, udp: true, rcode: dns.RcodeSuccess, served: true},
		{name: "ShorterThanHeaderIsDropped", raw: []byte{1, 2, 3, 4, 5}, client: loopback, udp: true, drop: true},
		{name: "ResponseBitSetIsDropped", raw: pack(t, withQR(q())), client: loopback, udp: true, drop: true},
		{name: "SourcePort0IsDropped", raw: pack(t, q()), client: port(0), udp: true, drop: true},
		{name: "SourcePort7IsDropped", raw: pack(t, q()), client: port(7), udp: true, drop: true},
		{name: "SourcePort13IsDropped", raw: pack(t, q()), client: port(13), udp: true, drop: true},
		{name: "SourcePort19IsDropped", raw: pack(t, q()), client: port(19), udp: true, drop: true},
		{name: "SourcePort37IsDropped", raw: pack(t, q()), client: port(37), udp: true, drop: true},
		{name: "SourcePort7OverTCPIsServed", raw: pack(t, q()), client: port(7), udp: false, rcode: dns.RcodeSuccess, served: true},
		{name: "ClientOutsideAccessListIsRefused", raw: pack(t, q()), client: outside, udp: true, rcode: dns.RcodeRefused},
		{name: "PrivateClientIsRefusedByDefault", raw: pack(t, q()), client: private, udp: true, rcode: dns.RcodeRefused},
		{name: "NotifyOpcodeIsNotImplemented", raw: pack(t, withOpcode(q(), dns.OpcodeNotify)), client: loopback, udp: true, rcode: dns.RcodeNotImplemented},
		{name: "UpdateOpcodeIsNotImplemented", raw: pack(t, withOpcode(q(), dns.OpcodeUpdate)), client: loopback, udp: true, rcode: dns.RcodeNotImplemented},
		{name: "UnpackableBodyIsFormErr", raw: pack(t, q())[:15], client: loopback, udp: true, rcode: dns.RcodeFormatError},
		{name: "HeaderOnlyIsFormErr", raw: pack(t, q())[:12], client: loopback, udp: true, rcode: dns.RcodeFormatError},
		{name: "NoQuestionIsFormErr", raw: rawWithQDCount(t, 0)[:12], client: loopback, udp: true, rcode: dns.RcodeFormatError},
		{name: "TwoQuestionsIsFormErr", raw: append(rawWithQDCount(t, 2), pack(t, q())[12:]...), client: loopback, udp: true, rcode: dns.RcodeFormatError},
		{name: "QDCountLyingAboutOneMoreIsFormErr", raw: rawWithQDCount(t, 2), client: loopback, udp: true, rcode: dns.RcodeFormatError},
		{name: "EDNSVersion1IsBadVers", raw: pack(t, withEDNS(q(), 1232, 1)), client: loopback, udp: true, rcode: dns.RcodeBadVers},
		{name: "TwoOPTRecordsIsFormErr", raw: pack(t, withTwoOPT(q())), client: loopback, udp: true, rcode: dns.RcodeFormatError},
		{name: "RecordsInAuthorityIsFormErr", raw: pack(t, withAuthority(q())), client: loopback, udp: true, rcode: dns.RcodeFormatError},
		{name: "HandlerPanicIsServFail", raw: pack(t, query("panic.", dns.TypeA)), client: loopback, udp: true, rcode: dns.RcodeServerFailure, served: true},
		{name: "HandlerNilIsServFail", raw: pack(t, query("nil.", dns.TypeA)), client: loopback, udp: true, rcode: dns.RcodeServerFailure, served: true},
		{name: "HandlerGetsADeadline", raw: pack(t, query("deadline.", dns.TypeA)), client: loopback, udp: true, rcode: dns.RcodeSuccess, served: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHandler()
			s := New(Config{}, h)
			out := s.process(tc.raw, tc.client, tc.udp)
			if tc.drop {
				if out != nil {
					t.Fatalf("want no reply, got %d bytes", len(out))
				}
				if st := s.Stats(); st.Dropped != 1 {
					t.Errorf("dropped counter %d, want 1", st.Dropped)
				}
				return
			}
			resp := new(dns.Msg)
			if err := resp.Unpack(out); err != nil {
				t.Fatalf("reply does not unpack: %v", err)
			}
			if resp.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
			if !resp.Response || resp.Id != uint16(tc.raw[0])<<8|uint16(tc.raw[1]) {
				t.Errorf("reply QR=%v ID=%d does not answer the query", resp.Response, resp.Id)
			}
			if served := len(h.calls) > 0; served != tc.served {
				t.Errorf("handler called %v, want %v", served, tc.served)
			}
			if n := s.Stats().Rcodes[dns.RcodeToString[tc.rcode]]; n != 1 {
				t.Errorf("rcode counter %d, want 1", n)
			}
		})
	}
}

func TestAccessRulesOverrideTheDefault(t *testing.T) {
	rules := append(DefaultAccess(),
		AccessRule{Prefix: netip.MustParsePrefix("192.168.0.0/16"), Action: Allow},
		AccessRule{Prefix: netip.MustParsePrefix("192.168.9.0/24"), Action: Deny},
		AccessRule{Prefix: netip.MustParsePrefix("127.0.0.2/32"), Action: Refuse},
	)
	tests := []struct {
		client string
		want   Action
	}{
		{"192.168.1.1", Allow},
		{"192.168.9.9", Deny},
		{"127.0.0.1", Allow},
		{"127.0.0.2", Refuse},
		{"::ffff:192.168.1.1", Allow},
		{"::1", Allow},
		{"10.0.0.1", Refuse},
		{"fd00::1", Refuse},
	}
	l := newAccessList(rules)
	for _, tc := range tests {
		if got := l.decide(netip.MustParseAddr(tc.client)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.client, got, tc.want)
		}
	}
}

func TestParseAccessRuleNamesTheBadPart(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "192.168.0.0/16 allow", want: "192.168.0.0/16 allow"},
		{in: "10.1.2.3/8 REFUSE", want: "10.0.0.0/8 refuse"},
		{in: "fd00::1 deny", want: "fd00::1/128 deny"},
		{in: "192.168.0.0/16", err: `access rule "192.168.0.0/16": want PREFIX ACTION (allow, refuse or deny)`},
		{in: "192.168.0.0/16 permit", err: `access rule "192.168.0.0/16 permit": action "permit" is not allow, refuse or deny`},
		{in: "300.0.0.0/8 allow", err: `access rule "300.0.0.0/8 allow": netip.ParsePrefix("300.0.0.0/8"): ParseAddr("300.0.0.0"): IPv4 field has value >255`},
	}
	for _, tc := range tests {
		r, err := ParseAccessRule(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || r.Prefix.String()+" "+r.Action.String() != tc.want {
			t.Errorf("%q: %v %v, want %s", tc.in, r, err, tc.want)
		}
	}
}

func TestReplyCarriesEDNSOnlyWhenTheClientSentIt(t *testing.T) {
	s := New(Config{}, newFakeHandler())
	plain := new(dns.Msg)
	if err := plain.Unpack(s.process(pack(t, query("example.", dns.TypeA)), loopback, true)); err != nil {
		t.Fatal(err)
	}
	if plain.IsEdns0() != nil {
		t.Errorf("reply to a plain query has OPT")
	}
	q := query("example.", dns.TypeA)
	q.SetEdns0(4096, true)
	withOpt := new(dns.Msg)
	if err := withOpt.Unpack(s.process(pack(t, q), loopback, true)); err != nil {
		t.Fatal(err)
	}
	opt := withOpt.IsEdns0()
	if opt == nil || opt.UDPSize() != ednsBufferSize || !opt.Do() || opt.Version() != 0 {
		t.Errorf("OPT %v, want buffer %d, DO copied, version 0", opt, ednsBufferSize)
	}
}

func TestLargeUDPReplyIsTruncatedToTheClientBuffer(t *testing.T) {
	tests := []struct {
		name  string
		edns  uint16 // 0: no EDNS
		udp   bool
		tc    bool
		limit int
	}{
		{name: "PlainUDPGets512", udp: true, tc: true, limit: 512},
		{name: "EDNS4096GetsAtMost1232", edns: 4096, udp: true, tc: true, limit: 1232},
		{name: "EDNSBelow512Gets512", edns: 200, udp: true, tc: true, limit: 512},
		{name: "TCPIsNotTruncated", udp: false, limit: tcpMaxSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{}, newFakeHandler())
			q := query("big.", dns.TypeA)
			if tc.edns > 0 {
				q.SetEdns0(tc.edns, false)
			}
			out := s.process(pack(t, q), loopback, tc.udp)
			resp := new(dns.Msg)
			if err := resp.Unpack(out); err != nil {
				t.Fatal(err)
			}
			if len(out) > tc.limit || resp.Truncated != tc.tc {
				t.Fatalf("%d bytes TC=%v, want at most %d TC=%v", len(out), resp.Truncated, tc.limit, tc.tc)
			}
			if tc.tc && (len(resp.Answer) != 0 || len(resp.Question) != 1) {
				t.Errorf("truncated reply has %d answers and %d questions, want 0 and 1", len(resp.Answer), len(resp.Question))
			}
			if !tc.tc && len(resp.Answer) != 100 {
				t.Errorf("%d answers, want 100", len(resp.Answer))
			}
			if want := map[bool]uint64{true: 1}[tc.tc]; s.Stats().Truncated != want {
				t.Errorf("truncated counter %d, want %d", s.Stats().Truncated, want)
			}
		})
	}
}

// withAuthority adds an SOA to the authority section, as an IXFR query
// carries it.
func withAuthority(m *dns.Msg) *dns.Msg {
	soa, _ := dns.NewRR("example. 0 IN SOA ns. host. 12 0 0 0 0")
	m.Ns = append(m.Ns, soa)
	return m
}

func TestFormErrCarriesNoRA(t *testing.T) {
	s := New(Config{}, newFakeHandler())
	out := s.process(pack(t, withAuthority(query("example.", dns.TypeA))), loopback, true)
	resp := new(dns.Msg)
	if err := resp.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != dns.RcodeFormatError || resp.RecursionAvailable || len(resp.Question) != 0 {
		t.Errorf("got %s RA=%v question=%v, want FORMERR without RA or question", dns.RcodeToString[resp.Rcode], resp.RecursionAvailable, resp.Question)
	}
}

func TestFitEDNSLeavesTheClientOneOPT(t *testing.T) {
	opt := func(size uint16, do bool, ede bool) *dns.OPT {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(size)
		o.SetDo(do)
		if ede {
			o.Option = []dns.EDNS0{&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther}}
		}
		return o
	}
	glue := mustRR("ns.example. 300 IN A 192.0.2.1")
	tests := []struct {
		name    string
		extra   []dns.RR
		rcode   int
		wantEDE bool // the handler's option is kept
	}{
		{name: "None"},
		{name: "Glue", extra: []dns.RR{glue}},
		{name: "Fitted", extra: []dns.RR{opt(ednsBufferSize, false, true)}, wantEDE: true},
		{name: "FittedDO", extra: []dns.RR{glue, opt(ednsBufferSize, true, false)}},
		{name: "OtherSize", extra: []dns.RR{opt(4096, false, true)}, wantEDE: true},
		{name: "NotLast", extra: []dns.RR{opt(ednsBufferSize, false, true), glue}, wantEDE: true},
		{name: "TwoOPTLastCounts", extra: []dns.RR{opt(ednsBufferSize, false, false), opt(ednsBufferSize, false, true)}, wantEDE: true},
		{name: "ExtendedRcode", extra: []dns.RR{opt(ednsBufferSize, false, false)}, rcode: dns.RcodeBadCookie},
	}
	for _, tc := range tests {
		for _, edns := range []clientEDNS{{}, {present: true, size: 4096}, {present: true, size: 512, do: true}} {
			if tc.rcode > 0xF && !edns.present {
				continue // an extended rcode needs an OPT
			}
			resp := &dns.Msg{Extra: append([]dns.RR(nil), tc.extra...)}
			resp.Rcode = tc.rcode
			fitEDNS(resp, edns)
			out := new(dns.Msg)
			if raw, err := resp.Pack(); err != nil || out.Unpack(raw) != nil {
				t.Fatalf("%s %+v: reply does not pack: %v", tc.name, edns, err)
			}
			o := out.IsEdns0()
			switch {
			case !edns.present:
				if o != nil {
					t.Errorf("%s: OPT for a client without EDNS", tc.name)
				}
			case o == nil || out.Extra[len(out.Extra)-1] != o:
				t.Errorf("%s %+v: additional %v, want one OPT, last", tc.name, edns, out.Extra)
			case o.UDPSize() != ednsBufferSize || o.Do() != edns.do || o.Version() != 0 || (len(o.Option) == 1) != tc.wantEDE:
				t.Errorf("%s %+v: OPT %v", tc.name, edns, o)
			}
			if got, want := len(resp.Extra), len(tc.extra)-countOPT(tc.extra); got-countOPT(resp.Extra) != want {
				t.Errorf("%s %+v: additional %v, want the handler's %d other records", tc.name, edns, resp.Extra, want)
			}
		}
	}
}

func countOPT(rrs []dns.RR) int {
	n := 0
	for _, rr := range rrs {
		if _, ok := rr.(*dns.OPT); ok {
			n++
		}
	}
	return n
}

// A miss worker's reply packed into its room is the reply process makes,
// also when it does not fit the room.
func TestReplyPackedIntoRoomIsTheSame(t *testing.T) {
	s := New(Config{}, newFakeHandler())
	room := make([]byte, missReplyRoom)
	for _, name := range []string{"example.", "big."} {
		for _, udp := range []bool{true, false} {
			raw := pack(t, withEDNS(query(name, dns.TypeA), 1232, 0))
			want := s.process(raw, loopback, udp)
			if got := s.processInto(room, raw, loopback, udp); !bytes.Equal(got, want) {
				t.Errorf("%s (udp %v): reply packed into room differs", name, udp)
			}
		}
	}
}
