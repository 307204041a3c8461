package transport

import (
	"errors"
	"testing"

	"github.com/miekg/dns"
)

// TestMismatchedRepliesRejectedAndGenuineAccepted plays each bad reply
// (right ID unless said otherwise) ahead of the genuine one on the same
// association: each must be counted and skipped, the genuine one accepted
// over UDP.
func TestMismatchedRepliesRejectedAndGenuineAccepted(t *testing.T) {
	raw := func(b []byte) func(*dns.Msg) []byte { return func(*dns.Msg) []byte { return b } }
	forge := func(f func(*dns.Msg)) func(*dns.Msg) []byte {
		return func(q *dns.Msg) []byte { return pack(mutated(q, f)) }
	}
	tests := []struct {
		name  string
		bad   func(q *dns.Msg) []byte
		check func(Stats) bool
	}{
		{"QDCOUNTZero", forge(func(m *dns.Msg) { m.Question = nil }), func(s Stats) bool { return s.MismatchedQuestion == 1 }},
		{"QDCOUNTTwo", forge(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), func(s Stats) bool { return s.MismatchedQuestion == 1 }},
		{"OtherType", forge(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAAAA }), func(s Stats) bool { return s.MismatchedQuestion == 1 }},
		{"OtherClass", forge(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), func(s Stats) bool { return s.MismatchedQuestion == 1 }},
		{"OtherName", forge(func(m *dns.Msg) { m.Question[0].Name = "www.evil.test." }), func(s Stats) bool { return s.MismatchedQuestion == 1 }},
		{"OtherOpcode", forge(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), func(s Stats) bool { return s.MismatchedQuestion == 1 }},
		{"NotAReply", forge(func(m *dns.Msg) { m.Response = false }), func(s Stats) bool { return s.Malformed == 1 }},
		{"FiveBytes", raw([]byte{1, 2, 3, 4, 5}), func(s Stats) bool { return s.Malformed == 1 }},
		{"BadCompressionAfterQuestion", func(q *dns.Msg) []byte {
			b := pack(answer(q, "6.6.6.6"))
			return append(b[:len(pack(q))-11], 0xc0, 0xff) // answer owner points past the end
		}, func(s Stats) bool { return s.Malformed == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
				return []fakeReply{{data: tt.bad(q)}, {data: pack(answer(q, "192.0.2.1"))}}
			}}
			c := NewExchanger(fn, Config{}, nil)
			r, err := ask(t, c, "www.example.com.")
			if err != nil {
				t.Fatal(err)
			}
			if got := firstA(t, r); got != "192.0.2.1" || r.TCP {
				t.Fatalf("got %s tcp=%v", got, r.TCP)
			}
			if s := c.Stats(); !tt.check(s) || s.Accepted != 1 || s.QueriesUDP != 1 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestFormerrToEDNSRetriedPlainAndRemembered(t *testing.T) {
	for _, rcode := range []int{dns.RcodeFormatError, dns.RcodeNotImplemented} {
		t.Run(dns.RcodeToString[rcode], func(t *testing.T) {
			fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
				if q.IsEdns0() != nil {
					return one(new(dns.Msg).SetRcode(q, rcode))
				}
				return one(answer(q, "192.0.2.1"))
			}}
			c := NewExchanger(fn, Config{}, nil)
			for i := range 2 {
				r, err := ask(t, c, "www.example.com.")
				if err != nil {
					t.Fatal(err)
				}
				if r.EDNS || r.Msg.Rcode != dns.RcodeSuccess {
					t.Fatalf("query %d: edns=%v rcode %d", i, r.EDNS, r.Msg.Rcode)
				}
			}
			if qs := fn.queries(); len(qs) != 3 || qs[2].msg.IsEdns0() != nil {
				t.Fatalf("sent %d queries; the second exchange must go plain at once", len(qs))
			}
		})
	}
}

func TestFormerrToPlainQueryIsReturned(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		return one(new(dns.Msg).SetRcode(q, dns.RcodeFormatError))
	}}
	r, err := ask(t, NewExchanger(fn, Config{}, nil), "www.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if r.EDNS || r.Msg.Rcode != dns.RcodeFormatError {
		t.Fatalf("edns=%v rcode %d, want the plain FORMERR", r.EDNS, r.Msg.Rcode)
	}
}

func TestServerIgnoringEDNSIsProbedWithPlainDNS(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		if q.IsEdns0() != nil {
			return nil
		}
		return one(answer(q, "192.0.2.1"))
	}}
	c := NewExchanger(fn, Config{EDNSTimeouts: 2}, nil)
	for range 2 {
		if _, err := ask(t, c, "www.example.com."); !errors.Is(err, ErrTimeout) {
			t.Fatalf("err %v, want ErrTimeout", err)
		}
	}
	for i := range 2 {
		r, err := ask(t, c, "www.example.com.")
		if err != nil || r.EDNS {
			t.Fatalf("query %d after the timeouts: %v (edns=%v)", i, err, r != nil && r.EDNS)
		}
	}
	if s := c.Stats(); s.EDNSFallbacks != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTruncatedReplyRetriedOverTCP(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		r := answer(q, "192.0.2.1")
		if !tcp {
			r.Answer, r.Truncated = nil, true
		}
		return one(r)
	}}
	c := NewExchanger(fn, Config{}, nil)
	r, err := ask(t, c, "www.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if got := firstA(t, r); got != "192.0.2.1" || !r.TCP || !r.EDNS {
		t.Fatalf("got %s tcp=%v edns=%v", got, r.TCP, r.EDNS)
	}
	if s := c.Stats(); s.TCEscalations != 1 || s.QueriesUDP != 1 || s.QueriesTCP != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTCPOnlyServerAskedOverTCPFromTheStart(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		if !tcp {
			return nil
		}
		return one(answer(q, "192.0.2.1"))
	}}
	c := NewExchanger(fn, Config{}, nil)
	r, err := ask(t, c, "www.example.com.", func(q *Query) { q.TCP = true })
	if err != nil {
		t.Fatal(err)
	}
	if !r.TCP || c.Stats().QueriesUDP != 0 {
		t.Fatalf("tcp=%v stats %+v", r.TCP, c.Stats())
	}
}

func TestReassembledReplyDroppedAndRetriedOverTCP(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		if tcp {
			return one(answer(q, "192.0.2.1"))
		}
		return []fakeReply{{data: pack(answer(q, "6.6.6.6")), reassembled: true}}
	}}
	c := NewExchanger(fn, Config{}, nil)
	r, err := ask(t, c, "www.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if got := firstA(t, r); got != "192.0.2.1" || !r.TCP {
		t.Fatalf("got %s tcp=%v", got, r.TCP)
	}
	if s := c.Stats(); s.ReassembledDropped != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestSilentServerGivesErrTimeout(t *testing.T) {
	fn := &fakeNet{handle: func(*dns.Msg, bool) []fakeReply { return nil }}
	_, err := ask(t, NewExchanger(fn, Config{}, nil), "www.example.com.")
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
}

func TestResponseCarriesTheResolverSpelling(t *testing.T) {
	const name = "Www.Example.COM."
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		r := answer(q, "192.0.2.1")
		// Spelled out in the sender's case, not compressed against the question.
		ns, _ := dns.NewRR(q.Question[0].Name[4:] + " 300 IN NS ns.example.com.")
		r.Ns = append(r.Ns, ns)
		r.Compress = false
		return one(r)
	}}
	r, err := ask(t, NewExchanger(fn, Config{}, nil), name)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Msg.Question[0].Name; got != name {
		t.Fatalf("question %s, want %s", got, name)
	}
	if got := r.Msg.Answer[0].Header().Name; got != name {
		t.Fatalf("answer owner %s, want %s", got, name)
	}
	if got := r.Msg.Ns[0].Header().Name; got != name[4:] {
		t.Fatalf("authority owner %s, want %s", got, name[4:])
	}
}

func TestQueryCarriesFreshIDCaseAndFlags(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply { return one(answer(q, "192.0.2.1")) }}
	c := NewExchanger(fn, Config{}, nil)
	const name = "abcdefghijklmnopqrstuvwxyz.example.com."
	const n = 200
	for range n {
		if _, err := ask(t, c, name); err != nil {
			t.Fatal(err)
		}
	}
	ids, upper := map[uint16]bool{}, 0
	for _, s := range fn.queries() {
		m := s.msg
		opt := m.IsEdns0()
		if m.RecursionDesired || !m.CheckingDisabled || opt == nil || !opt.Do() || opt.UDPSize() != 1232 {
			t.Fatalf("query flags: %v", m)
		}
		ids[m.Id] = true
		for _, ch := range m.Question[0].Name {
			if ch >= 'A' && ch <= 'Z' {
				upper++
			}
		}
	}
	letters := n * (len(name) - 3)
	if frac := float64(upper) / float64(letters); frac < 0.45 || frac > 0.55 {
		t.Fatalf("upper-case fraction %.3f over %d letters", frac, letters)
	}
	if len(ids) < n-5 {
		t.Fatalf("%d distinct IDs in %d queries", len(ids), n)
	}
}
