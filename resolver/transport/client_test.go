package transport

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

var testServer = netip.MustParseAddrPort("192.0.2.53:53")

func ask(t *testing.T, c *Client, name string, mod ...func(*Query)) (*Response, error) {
	t.Helper()
	q := Query{Server: testServer, Name: name, Type: dns.TypeA, Class: dns.ClassINET, DO: true, CD: true}
	for _, m := range mod {
		m(&q)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Exchange(ctx, q)
}

func firstA(t *testing.T, r *Response) string {
	t.Helper()
	for _, rr := range r.Msg.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	t.Fatalf("no A record in %v", r.Msg)
	return ""
}

// mutated returns the genuine answer to q changed by f: a forgery or a
// broken reply that carries the query's ID unless f changes it.
func mutated(q *dns.Msg, f func(*dns.Msg)) *dns.Msg {
	m := answer(q, "6.6.6.6")
	f(m)
	return m
}

func TestWrongIDReplyIgnoredThenGenuineAccepted(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		return one(mutated(q, func(m *dns.Msg) { m.Id ^= 0x0101 }), answer(q, "192.0.2.1"))
	}}
	c := NewExchanger(fn, Config{NearMissMax: 2}, nil)
	r, err := ask(t, c, "www.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if got := firstA(t, r); got != "192.0.2.1" || r.TCP {
		t.Fatalf("got %s tcp=%v, want the genuine UDP answer", got, r.TCP)
	}
	if s := c.Stats(); s.MismatchedID != 1 || s.Accepted != 1 || s.NearMissEscalations != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNearMissMovesExchangeToTCPBeforeACorrectForgery(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		if tcp {
			return one(answer(q, "192.0.2.1"))
		}
		return one(mutated(q, func(m *dns.Msg) { m.Id++ }), answer(q, "6.6.6.6"))
	}}
	c := NewExchanger(fn, Config{}, nil)
	r, err := ask(t, c, "www.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if got := firstA(t, r); got != "192.0.2.1" || !r.TCP {
		t.Fatalf("got %s tcp=%v, want the genuine TCP answer", got, r.TCP)
	}
	if s := c.Stats(); s.NearMissEscalations != 1 || s.QueriesTCP != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLowercaseForgeryRejectedAndNoExemptionLearned(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		if tcp {
			return one(answer(q, "192.0.2.1"))
		}
		forged := answer(q, "6.6.6.6")
		forged.Question[0].Name = strings.ToLower(q.Question[0].Name)
		return one(forged)
	}}
	c := NewExchanger(fn, Config{}, nil)
	name := "abcdefghijklmnop.example.com." // 23 letters: lowercase by chance is 2^-23
	r, err := ask(t, c, name)
	if err != nil {
		t.Fatal(err)
	}
	if got := firstA(t, r); got != "192.0.2.1" {
		t.Fatalf("got %s, want the genuine answer", got)
	}
	s := c.Stats()
	if s.MismatchedCase != 1 || s.CaseEscalations != 1 || s.CaseExemptionsLearned != 0 {
		t.Fatalf("stats %+v", s)
	}
	if _, err := ask(t, c, name); err != nil {
		t.Fatal(err)
	}
	if qs := fn.queries(); qs[len(qs)-1].msg.Question[0].Name == name {
		t.Fatalf("0x20 was switched off by a spoofed reply: sent %s", name)
	}
}

func TestCaseManglingServerResolvedOverTCPAndExempted(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		r := answer(q, "192.0.2.1")
		r.Question[0].Name = strings.ToLower(q.Question[0].Name)
		return one(r)
	}}
	c := NewExchanger(fn, Config{}, nil)
	name := "abcdefghijklmnop.example.com."
	r, err := ask(t, c, name)
	if err != nil {
		t.Fatal(err)
	}
	if !r.TCP || r.Msg.Question[0].Name != name {
		t.Fatalf("tcp=%v question %s", r.TCP, r.Msg.Question[0].Name)
	}
	if s := c.Stats(); s.CaseExemptionsLearned != 1 {
		t.Fatalf("stats %+v", s)
	}
	r, err = ask(t, c, name)
	if err != nil {
		t.Fatal(err)
	}
	qs := fn.queries()
	if last := qs[len(qs)-1]; r.TCP || last.tcp || last.msg.Question[0].Name != name {
		t.Fatalf("exempt server: tcp=%v, sent %s over tcp=%v", r.TCP, last.msg.Question[0].Name, last.tcp)
	}
}

func TestCaseMismatchWithoutTCPIsErrCaseMismatch(t *testing.T) {
	fn := &fakeNet{refuseTCP: true, handle: func(q *dns.Msg, tcp bool) []fakeReply {
		r := answer(q, "192.0.2.1")
		r.Question[0].Name = strings.ToUpper(q.Question[0].Name)
		return one(r)
	}}
	_, err := ask(t, NewExchanger(fn, Config{}, nil), "abcdefghijklmnop.example.com.")
	if !errors.Is(err, ErrCaseMismatch) {
		t.Fatalf("err %v, want ErrCaseMismatch", err)
	}
}

func TestNameNotFullyQualifiedIsAnErrorNamingIt(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply { return one(answer(q, "192.0.2.1")) }}
	_, err := ask(t, NewExchanger(fn, Config{}, nil), "www.example.com")
	if err == nil || !strings.Contains(err.Error(), "www.example.com") || len(fn.queries()) != 0 {
		t.Fatalf("err %v after %d queries sent", err, len(fn.queries()))
	}
}

func TestConcurrentExchangesShareOneClient(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		return one(mutated(q, func(m *dns.Msg) { m.Id++ }), answer(q, "192.0.2.1"))
	}}
	c := NewExchanger(fn, Config{NearMissMax: 2}, nil)
	const workers, each = 8, 50
	errs := make(chan error, workers)
	for range workers {
		go func() {
			var err error
			for range each {
				if _, err = ask(t, c, "www.example.com."); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Accepted != workers*each || s.MismatchedID != workers*each {
		t.Fatalf("stats %+v", s)
	}
}

func TestRejectedReplyLoggedAtDebugWithServerAndName(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		return []fakeReply{{data: []byte{1, 2, 3}}, {data: pack(answer(q, "192.0.2.1"))}}
	}}
	if _, err := ask(t, NewExchanger(fn, Config{}, zap.New(core)), "www.example.com."); err != nil {
		t.Fatal(err)
	}
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d log entries, want one for the one rejected reply", len(entries))
	}
	f := entries[0].ContextMap()
	if entries[0].Level != zap.DebugLevel || f["server"] != testServer.String() || f["name"] != "www.example.com." {
		t.Fatalf("log entry %v %v", entries[0].Level, f)
	}
}

func TestExchangeReportsItsUnwantedReplies(t *testing.T) {
	wrongQuestion := func(q *dns.Msg) *dns.Msg {
		return mutated(q, func(m *dns.Msg) { m.Question[0].Name = "other.example.com." })
	}
	tests := []struct {
		name    string
		replies func(q *dns.Msg) []fakeReply
		want    int
		wantErr bool
	}{
		{"CleanExchangeReportsNone", func(q *dns.Msg) []fakeReply { return one(answer(q, "192.0.2.1")) }, 0, false},
		{"ForgeriesBeforeTheAnswerAreCounted", func(q *dns.Msg) []fakeReply {
			return one(wrongQuestion(q), wrongQuestion(q), wrongQuestion(q), answer(q, "192.0.2.1"))
		}, 3, false},
		{"ForgeriesBeforeATimeoutAreCounted", func(q *dns.Msg) []fakeReply {
			return one(wrongQuestion(q), wrongQuestion(q))
		}, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := &fakeNet{refuseTCP: true, handle: func(q *dns.Msg, tcp bool) []fakeReply { return tt.replies(q) }}
			c := NewExchanger(fn, Config{DisableHoldOn: true}, nil)
			r, err := ask(t, c, "www.example.com.")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrTimeout) {
				t.Fatalf("err %v does not wrap ErrTimeout", err)
			}
			if got := Unwanted(r, err); got != tt.want {
				t.Fatalf("Unwanted = %d, want %d (err %v)", got, tt.want, err)
			}
		})
	}
}
