package transport

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// cookieOf returns the raw COOKIE option of m, nil without one.
func cookieOf(m *dns.Msg) []byte {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				b, _ := hex.DecodeString(c.Cookie)
				return b
			}
		}
	}
	return nil
}

// withCookie adds an OPT carrying cookie (raw bytes) to m.
func withCookie(m *dns.Msg, cookie []byte) *dns.Msg {
	m.SetEdns0(1232, true)
	if cookie != nil {
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(cookie)})
	}
	return m
}

var serverCookie = []byte{1, 2, 3, 4, 5, 6, 7, 8}

// cookieAnswer is a cookie-capable server's reply: our client cookie and
// its server cookie.
func cookieAnswer(q *dns.Msg, addr string) *dns.Msg {
	cc := cookieOf(q)
	if len(cc) < 8 {
		return withCookie(answer(q, addr), nil)
	}
	return withCookie(answer(q, addr), append(append([]byte(nil), cc[:8]...), serverCookie...))
}

func TestCookieSentAndServerCookieReturnedOnTheNextQuery(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply { return one(cookieAnswer(q, "192.0.2.1")) }}
	c := NewExchanger(fn, Config{DisableHoldOn: true}, nil)
	for range 2 {
		r, err := ask(t, c, "www.example.com.")
		if err != nil || !r.ServerCookie {
			t.Fatalf("err %v, server cookie %v", err, r != nil && r.ServerCookie)
		}
	}
	qs := fn.queries()
	first, second := cookieOf(qs[0].msg), cookieOf(qs[1].msg)
	if len(first) != 8 || len(second) != 16 || !bytes.Equal(first, second[:8]) || !bytes.Equal(second[8:], serverCookie) {
		t.Fatalf("cookies sent %x then %x", first, second)
	}
}

func TestClientCookieDiffersPerServer(t *testing.T) {
	c := NewExchanger(&fakeNet{}, Config{}, nil)
	a := c.cookieFor(nil, testServer)
	b := c.cookieFor(nil, netipMust("192.0.2.54:53"))
	if len(a) != 8 || bytes.Equal(a, b) {
		t.Fatalf("cookies %x and %x", a, b)
	}
}

func TestReplyWithAnotherClientCookieDroppedThenGenuineAccepted(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		forged := withCookie(answer(q, "6.6.6.6"), append([]byte{9, 9, 9, 9, 9, 9, 9, 9}, serverCookie...))
		return one(forged, cookieAnswer(q, "192.0.2.1"))
	}}
	c := NewExchanger(fn, Config{DisableHoldOn: true}, nil)
	r, err := ask(t, c, "www.example.com.")
	if err != nil || firstA(t, r) != "192.0.2.1" || r.TCP {
		t.Fatalf("err %v, reply %v", err, r)
	}
	if s := c.Stats(); s.MismatchedCookie != 1 || s.UnwantedReplies != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCookieServerReplyWithoutCookieMovesToTCP(t *testing.T) {
	stopped := false
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		if stopped {
			return one(withCookie(answer(q, "192.0.2.2"), nil))
		}
		return one(cookieAnswer(q, "192.0.2.1"))
	}}
	c := NewExchanger(fn, Config{DisableHoldOn: true}, nil)
	if _, err := ask(t, c, "www.example.com."); err != nil {
		t.Fatal(err)
	}
	stopped = true
	r, err := ask(t, c, "www.example.com.")
	if err != nil || !r.TCP || r.ServerCookie {
		t.Fatalf("err %v, reply %+v", err, r)
	}
	if s := c.Stats(); s.CookieEscalations != 1 || s.CookiesForgotten != 1 {
		t.Fatalf("stats %+v", s)
	}
	// Learned over TCP that the server stopped: UDP is trusted again.
	if r, err := ask(t, c, "www.example.com."); err != nil || r.TCP {
		t.Fatalf("err %v, reply %+v", err, r)
	}
}

func TestBadCookieRetriedOnceWithTheNewServerCookie(t *testing.T) {
	n := 0
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		n++
		m := cookieAnswer(q, "192.0.2.1")
		if n == 1 {
			m.Answer = nil
			m.Rcode = dns.RcodeBadCookie
		}
		return one(m)
	}}
	c := NewExchanger(fn, Config{DisableHoldOn: true}, nil)
	r, err := ask(t, c, "www.example.com.")
	if err != nil || r.TCP || firstA(t, r) != "192.0.2.1" {
		t.Fatalf("err %v, reply %+v", err, r)
	}
	qs := fn.queries()
	if len(qs) != 2 || len(cookieOf(qs[1].msg)) != 16 || c.Stats().BadCookieRetries != 1 {
		t.Fatalf("%d queries, second cookie %x, stats %+v", len(qs), cookieOf(qs[len(qs)-1].msg), c.Stats())
	}
}

func TestNoCookiesWhenDisabled(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply { return one(answer(q, "192.0.2.1")) }}
	c := NewExchanger(fn, Config{DisableCookies: true, DisableHoldOn: true}, nil)
	if _, err := ask(t, c, "www.example.com."); err != nil {
		t.Fatal(err)
	}
	if ck := cookieOf(fn.queries()[0].msg); ck != nil {
		t.Fatalf("cookie %x sent", ck)
	}
}

func TestSpoofingPressureMovesServerToTCP(t *testing.T) {
	fn := &fakeNet{handle: func(q *dns.Msg, tcp bool) []fakeReply {
		var rs []fakeReply
		if !tcp {
			for range 10 {
				rs = append(rs, one(mutated(q, func(m *dns.Msg) { m.Question[0].Name = "other.example.com." }))...)
			}
		}
		return append(rs, one(answer(q, "192.0.2.1"))...)
	}}
	c := NewExchanger(fn, Config{DisableHoldOn: true}, nil)
	if r, err := ask(t, c, "www.example.com."); err != nil || r.TCP {
		t.Fatalf("err %v, reply %+v", err, r)
	}
	r, err := ask(t, c, "www.example.com.")
	if err != nil || !r.TCP {
		t.Fatalf("err %v, reply %+v", err, r)
	}
	if s := c.Stats(); s.PressureEscalations != 1 || s.UnwantedReplies != 10 {
		t.Fatalf("stats %+v", s)
	}
}

// TestCheckCookieVerdicts pins the verdict on COOKIE options at and past
// the RFC 7873 bounds and on hex the option cannot hold.
func TestCheckCookieVerdicts(t *testing.T) {
	client := "0102030405060708"
	wq := &wireQuery{clientCookie: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
	tests := []struct {
		cookie string
		want   cookieVerdict
		server int // bytes of server cookie returned
	}{
		{client + strings.Repeat("ab", 8), cookieValid, 8},
		{client + strings.Repeat("AB", 32), cookieValid, 32},
		{client + strings.Repeat("ab", 7), cookieWrong, 0},
		{client + strings.Repeat("ab", 33), cookieWrong, 0},
		{client + strings.Repeat("ab", 8) + "a", cookieWrong, 0},
		{client + strings.Repeat("zz", 8), cookieWrong, 0},
		{"0102030405060709" + strings.Repeat("ab", 8), cookieWrong, 0},
		{client, cookieWrong, 0},
	}
	for _, tt := range tests {
		m := new(dns.Msg)
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: tt.cookie})
		var raw [maxCookieLen]byte
		if got, sc := checkCookie(wq, m, &raw); got != tt.want || len(sc) != tt.server {
			t.Errorf("cookie %s: verdict %d with %d server bytes, want %d with %d", tt.cookie, got, len(sc), tt.want, tt.server)
		}
	}
}

func TestRememberedClientCookiesAreTheDerivedOnes(t *testing.T) {
	j := newCookieJar(time.Hour)
	now := time.Now()
	derive := func(a netip.Addr) [8]byte {
		mac := hmac.New(sha256.New, j.secret[:])
		b, _ := a.AppendBinary(nil)
		mac.Write(b)
		var cc [8]byte
		copy(cc[:], mac.Sum(nil))
		return cc
	}
	// More servers than the memo has slots, asked twice over, so that
	// slots are shared and overwritten.
	var servers []netip.AddrPort
	for i := range 3 * cookieMemo {
		servers = append(servers, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 77, byte(i >> 8), byte(i)}), 53),
			netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i)), 53))
	}
	for round := range 2 {
		for _, s := range servers {
			if got, want := j.client(s, now), derive(s.Addr()); got != want {
				t.Fatalf("round %d: cookie for %v is %x, want %x", round, s, got, want)
			}
		}
	}
	s := servers[0]
	before := j.client(s, now)
	if after := j.client(s, now.Add(time.Hour)); after == before || after != derive(s.Addr()) {
		t.Fatalf("after rotation the cookie for %v is %x (was %x, derived %x)", s, after, before, derive(s.Addr()))
	}
}

func BenchmarkClientCookie(b *testing.B) {
	j := newCookieJar(time.Hour)
	now := time.Now()
	server := netip.MustParseAddrPort("192.0.2.53:53")
	j.client(server, now)
	b.ReportAllocs()
	for b.Loop() {
		j.client(server, now)
	}
}
