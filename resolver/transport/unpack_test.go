package transport

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/miekg/dns"
)

// replyWire packs a reply to qname/qtype with the records given in text
// form (section by section) and returns it with the wireQuery whose
// question it echoes.
func replyWire(t testing.TB, qname string, qtype uint16, rcode int, answer, ns, extra []string) ([]byte, *wireQuery) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.Response, m.Authoritative, m.Rcode = true, true, rcode
	for _, sec := range []struct {
		dst  *[]dns.RR
		text []string
	}{{&m.Answer, answer}, {&m.Ns, ns}, {&m.Extra, extra}} {
		for _, s := range sec.text {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Fatalf("%q: %v", s, err)
			}
			*sec.dst = append(*sec.dst, rr)
		}
	}
	m.SetEdns0(1232, true)
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b, echoedQuestion(b, qname)
}

// echoedQuestion is the wireQuery of a message whose question is qname,
// packed without compression right after the header.
func echoedQuestion(b []byte, qname string) *wireQuery {
	plain := make([]byte, 256)
	n, err := dns.PackDomainName(qname, plain, 0, nil, false)
	if err != nil || headerLen+n > len(b) {
		return nil
	}
	return &wireQuery{nameEnd: headerLen + n, plainName: plain[:n]}
}

var commonReplies = []struct {
	name              string
	qname             string
	qtype             uint16
	rcode             int
	answer, ns, extra []string
}{
	{"AnswerWithAuthorityAndGlue", "h0.leaf.bench.", dns.TypeA, dns.RcodeSuccess,
		[]string{"h0.leaf.bench. 86400 IN A 10.0.0.0"},
		[]string{"leaf.bench. 86400 IN NS ns.leaf.bench."},
		[]string{"ns.leaf.bench. 86400 IN A 127.77.0.3"}},
	{"Referral", "z0.leaf.bench.", dns.TypeNS, dns.RcodeSuccess, nil,
		[]string{"z0.leaf.bench. 86400 IN NS dz.leaf.bench."}, nil},
	{"NameError", "nx.leaf.bench.", dns.TypeA, dns.RcodeNameError, nil,
		[]string{"leaf.bench. 3600 IN SOA ns.leaf.bench. host.leaf.bench. 1 7200 3600 1209600 3600"}, nil},
	{"SignedCNAME", "www.Example.ORG.", dns.TypeA, dns.RcodeSuccess,
		[]string{"www.example.org. 300 IN CNAME web.example.org.",
			"www.example.org. 300 IN RRSIG CNAME 13 3 300 20300101000000 20200101000000 12345 example.org. dGVzdA==",
			"web.example.org. 300 IN A 192.0.2.1"}, nil, nil},
	{"Root", ".", dns.TypeNS, dns.RcodeSuccess,
		[]string{". 518400 IN NS a.root-servers.net."}, nil,
		[]string{"a.root-servers.net. 518400 IN A 198.41.0.4", "a.root-servers.net. 518400 IN AAAA 2001:503:ba3e::2:30"}},
}

func TestUnpackFastReadsCommonRepliesAsTheLibraryDoes(t *testing.T) {
	for _, tc := range commonReplies {
		t.Run(tc.name, func(t *testing.T) {
			b, wq := replyWire(t, tc.qname, tc.qtype, tc.rcode, tc.answer, tc.ns, tc.extra)
			fast, ok := unpackFast(append([]byte(nil), b...), wq, tc.qname)
			if !ok {
				t.Fatal("the fast path refused a common reply")
			}
			slow, err := unpackLibrary(append([]byte(nil), b...), tc.qname)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast path:\n%v\nlibrary:\n%v", fast, slow)
			}
		})
	}
}

func TestUnpackFastLeavesUnusualRepliesToTheLibrary(t *testing.T) {
	b, wq := replyWire(t, "h0.leaf.bench.", dns.TypeA, dns.RcodeSuccess, []string{"h0.leaf.bench. 60 IN A 10.0.0.0"}, nil, nil)
	lying := append([]byte(nil), b...)
	binary.BigEndian.PutUint16(lying[6:], 40) // forty answers in a short message
	escaped, ewq := replyWire(t, `a\.b.leaf.bench.`, dns.TypeA, dns.RcodeSuccess, []string{`a\.b.leaf.bench. 60 IN A 10.0.0.0`}, nil, nil)
	truncated := b[:len(b)-3]
	for _, tc := range []struct {
		name  string
		b     []byte
		wq    *wireQuery
		qname string
	}{
		{"CountsTheMessageCannotHold", lying, wq, "h0.leaf.bench."},
		{"NameThatNeedsEscapes", escaped, ewq, `a\.b.leaf.bench.`},
		{"RecordCutShort", truncated, wq, "h0.leaf.bench."},
		{"QuestionSpelledOtherwise", b, wq, "h1.leaf.bench."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m, ok := unpackFast(append([]byte(nil), tc.b...), tc.wq, tc.qname); ok {
				t.Fatalf("fast path read it: %v", m)
			}
		})
	}
}

// FuzzUnpackFastMatchesTheLibrary: whatever the fast path reads, the
// library's path reads the same.
func FuzzUnpackFastMatchesTheLibrary(f *testing.F) {
	for _, tc := range commonReplies {
		b, _ := replyWire(f, tc.qname, tc.qtype, tc.rcode, tc.answer, tc.ns, tc.extra)
		f.Add(tc.qname, b)
	}
	f.Fuzz(func(t *testing.T, qname string, b []byte) {
		qname = dns.Fqdn(qname)
		if _, ok := dns.IsDomainName(qname); !ok {
			return
		}
		wq := echoedQuestion(b, qname)
		if wq == nil {
			return
		}
		copy(b[headerLen:wq.nameEnd], wq.plainName)
		fast, ok := unpackFast(append([]byte(nil), b...), wq, qname)
		if !ok {
			return
		}
		slow, err := unpackLibrary(append([]byte(nil), b...), qname)
		if err != nil {
			t.Fatalf("fast path read what the library refuses (%v):\n%v", err, fast)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path:\n%v\nlibrary:\n%v", fast, slow)
		}
	})
}

// BenchmarkUnpackReply: a cold name's answer as NSD sends it (the answer,
// the zone's NS set, its glue, OPT), through unpackReply's two paths.
func BenchmarkUnpackReply(b *testing.B) {
	tc := commonReplies[0]
	wire, wq := replyWire(b, tc.qname, tc.qtype, tc.rcode, tc.answer, tc.ns, tc.extra)
	buf := make([]byte, len(wire))
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			copy(buf, wire)
			if _, ok := unpackFast(buf, wq, tc.qname); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			copy(buf, wire)
			if _, err := unpackLibrary(buf, tc.qname); err != nil {
				b.Fatal(err)
			}
		}
	})
}
