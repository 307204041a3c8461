package resolver

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is the test hierarchy: a root, test., and zones below it that
// exercise the iterator's cases.
func world(t testing.TB) *simnet.Hierarchy {
	t.Helper()
	h := simnet.NewHierarchy(simnet.InstantTimeouts())
	h.Zone(".", []string{"127.53.0.1"}, "")
	h.Zone("test.", []string{"127.53.0.2"}, "")
	h.Zone("example.test.", []string{"127.53.1.1"}, `
www    300 A     192.0.2.1
www    300 AAAA  2001:db8::1
@      300 MX    10 mail.example.test.
mail   300 A     192.0.2.25
alias  300 CNAME www.other.test.
loop1  300 CNAME loop2.example.test.
loop2  300 CNAME loop1.example.test.
old    300 DNAME other.test.
selfloop 300 DNAME selfloop.example.test.
ns-for-glueless 300 A 127.53.1.3
`)
	h.Zone("other.test.", []string{"127.53.1.2"}, `
www 300 A 192.0.2.2
`)
	h.ZoneWithNS("glueless.test.", map[string][]string{"ns-for-glueless.example.test.": {"127.53.1.3"}}, `
host 300 A 192.0.2.3
`)
	return h
}

type fixture struct {
	h   *simnet.Hierarchy
	r   *Resolver
	net *transport.Client
}

func newFixture(t testing.TB, h *simnet.Hierarchy, mutate func(*Config)) *fixture {
	t.Helper()
	cfg := DefaultConfig()
	cfg.RootHints = h.RootHints()
	cfg.DoIPv6 = false
	if mutate != nil {
		mutate(&cfg)
	}
	// Benchmarks log at the daemon's default level, so that they do not
	// time debug logging.
	level := zap.DebugLevel
	if _, ok := t.(*testing.B); ok {
		level = zap.InfoLevel
	}
	ex := transport.NewExchanger(h.Net, transport.Config{}, nil)
	r, err := New(cfg, Deps{Exchanger: ex, Clock: simnet.NewClock(time.Unix(1_800_000_000, 0)), Logger: zaptest.NewLogger(t, zaptest.Level(level))})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{h: h, r: r, net: ex}
}

func (f *fixture) ask(t testing.TB, name string, qtype uint16) *dns.Msg {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	req.SetEdns0(1232, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f.r.Answer(ctx, req)
}

func answerText(m *dns.Msg) string {
	var parts []string
	for _, rr := range m.Answer {
		s := rr.String()
		f := strings.Fields(s)
		parts = append(parts, f[0]+" "+strings.Join(f[3:], " "))
	}
	return strings.Join(parts, "; ")
}

func TestResolveFromRoot(t *testing.T) {
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer string
	}{
		{"A", "www.example.test.", dns.TypeA, dns.RcodeSuccess, "www.example.test. A 192.0.2.1"},
		{"AAAA", "www.example.test.", dns.TypeAAAA, dns.RcodeSuccess, "www.example.test. AAAA 2001:db8::1"},
		{"MX", "example.test.", dns.TypeMX, dns.RcodeSuccess, "example.test. MX 10 mail.example.test."},
		{"CNAMEAcrossZones", "alias.example.test.", dns.TypeA, dns.RcodeSuccess,
			"alias.example.test. CNAME www.other.test.; www.other.test. A 192.0.2.2"},
		{"DNAME", "www.old.example.test.", dns.TypeA, dns.RcodeSuccess,
			"old.example.test. DNAME other.test.; www.old.example.test. CNAME www.other.test.; www.other.test. A 192.0.2.2"},
		{"NXDOMAIN", "nope.example.test.", dns.TypeA, dns.RcodeNameError, ""},
		{"NODATA", "www.other.test.", dns.TypeMX, dns.RcodeSuccess, ""},
		{"DelegationWithoutGlue", "host.glueless.test.", dns.TypeA, dns.RcodeSuccess, "host.glueless.test. A 192.0.2.3"},
		{"CNAMELoopIsServfail", "loop1.example.test.", dns.TypeA, dns.RcodeServerFailure, ""},
		{"CNAMEQuestionUnderDNAMEGetsTheDNAME", "www.old.example.test.", dns.TypeCNAME, dns.RcodeSuccess,
			"old.example.test. DNAME other.test.; www.old.example.test. CNAME www.other.test."},
		{"DNAMEOntoItselfIsAnsweredAsItStands", "x.selfloop.example.test.", dns.TypeA, dns.RcodeSuccess,
			"selfloop.example.test. DNAME selfloop.example.test.; x.selfloop.example.test. CNAME x.selfloop.example.test."},
	}
	f := newFixture(t, world(t), nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for round := 0; round < 2; round++ { // cold, then from the cache
				m := f.ask(t, tc.qname, tc.qtype)
				if m.Rcode != tc.rcode {
					t.Fatalf("round %d: rcode %s, want %s", round, dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
				}
				if got := answerText(m); got != tc.answer {
					t.Errorf("round %d: answer %q, want %q", round, got, tc.answer)
				}
				if (tc.rcode == dns.RcodeNameError || tc.answer == "" && tc.rcode == 0) && !hasType(m.Ns, dns.TypeSOA) {
					t.Errorf("round %d: negative answer without SOA: %v", round, m.Ns)
				}
			}
		})
	}
}

func TestServerFaultsAreSurvived(t *testing.T) {
	tests := []struct {
		name  string
		knobs simnet.Knobs
	}{
		{"Lame", simnet.Knobs{Lame: simnet.LameRefused}},
		{"LameUpward", simnet.Knobs{Lame: simnet.LameUpward}},
		{"Dead", simnet.Knobs{Dead: true}},
		{"Truncating", simnet.Knobs{Truncate: true}},
		{"EDNSIntolerant", simnet.Knobs{EDNSIntolerant: true}},
		{"TCPOnly", simnet.Knobs{TCPOnly: true}},
		{"CaseMangling", simnet.Knobs{MangleCase: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := world(t)
			// example.test gets a second server with the fault; the first
			// must still work, or the faulty one be usable (TC, EDNS).
			h.Zone("faulty.test.", []string{"127.53.2.1", "127.53.2.2"}, "www 300 A 192.0.2.9")
			h.Server("127.53.2.1").SetKnobs(tc.knobs)
			if tc.knobs.Truncate || tc.knobs.EDNSIntolerant || tc.knobs.TCPOnly || tc.knobs.MangleCase {
				h.Server("127.53.2.2").SetKnobs(tc.knobs) // both faulty: the transport must cope
			}
			f := newFixture(t, h, nil)
			for i := 0; i < 5; i++ {
				f.r.cache.Flush()
				m := f.ask(t, "www.faulty.test.", dns.TypeA)
				if got := answerText(m); got != "www.faulty.test. A 192.0.2.9" {
					t.Fatalf("try %d: %s %q", i, dns.RcodeToString[m.Rcode], got)
				}
			}
		})
	}
}

func TestAllServersDeadIsServfailWithinDeadline(t *testing.T) {
	h := world(t)
	h.Server("127.53.1.1").SetKnobs(simnet.Knobs{Dead: true})
	f := newFixture(t, h, nil)
	m := f.ask(t, "www.example.test.", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if ede := edeOf(m); ede == nil || ede.InfoCode != dns.ExtendedErrorCodeNoReachableAuthority {
		t.Errorf("EDE %v, want No Reachable Authority", ede)
	}
}

func edeOf(m *dns.Msg) *dns.EDNS0_EDE {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}

func TestNSFanOutStopsAtLimit(t *testing.T) {
	h := world(t)
	ns := map[string][]string{}
	for i := 0; i < 30; i++ {
		ns["ns"+string(rune('a'+i%26))+strings.Repeat("x", i/26)+".nowhere.other.test."] = nil
	}
	h.ZoneWithNS("fanout.test.", ns, "")
	f := newFixture(t, h, nil)
	m := f.ask(t, "www.fanout.test.", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	other := h.Server("127.53.1.2").QueryCount()
	if max := DefaultConfig().Limits.MaxNSLookups * 2; other > max {
		t.Errorf("%d queries reached other.test for one client query, limit is %d", other, max)
	}
}

func TestQNameMinimisationSendsOneLabelMore(t *testing.T) {
	h := world(t)
	f := newFixture(t, h, nil)
	f.ask(t, "a.b.www.example.test.", dns.TypeA)
	for _, q := range h.Server("127.53.0.1").Queries() {
		if n := strings.ToLower(q.Name); n != "test." && n != "." {
			t.Errorf("root saw %q; minimisation should show it only test.", q.Name)
		}
	}
	off := newFixture(t, world(t), func(c *Config) { c.QNameMinimisation = false })
	off.ask(t, "a.b.www.example.test.", dns.TypeA)
}

func TestIdenticalQuestionsInFlightShareOneUpstreamQuery(t *testing.T) {
	h := world(t)
	h.Server("127.53.1.1").SetKnobs(simnet.Knobs{Latency: 50 * time.Millisecond})
	f := newFixture(t, h, nil)
	f.ask(t, "mail.example.test.", dns.TypeA) // warm the delegation
	h.Server("127.53.1.1").Reset()
	done := make(chan struct{})
	for i := 0; i < 100; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			f.ask(t, "www.example.test.", dns.TypeA)
		}()
	}
	for i := 0; i < 100; i++ {
		<-done
	}
	if n := h.Server("127.53.1.1").QueryCount(); n > 2 {
		t.Errorf("%d upstream queries for 100 identical client queries, want ≤ 2", n)
	}
}

func TestFailedResolutionIsRememberedBriefly(t *testing.T) {
	h := world(t)
	h.Server("127.53.1.1").SetKnobs(simnet.Knobs{Dead: true})
	f := newFixture(t, h, nil)
	f.ask(t, "www.example.test.", dns.TypeA)
	before := h.Server("127.53.1.1").QueryCount()
	for i := 0; i < 10; i++ {
		if m := f.ask(t, "www.example.test.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
			t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
		}
	}
	if after := h.Server("127.53.1.1").QueryCount(); after != before {
		t.Errorf("%d more upstream queries for repeats of a failed question, want 0", after-before)
	}
}

func TestTTLIsCappedByMaxTTL(t *testing.T) {
	h := world(t)
	h.Zone("long.test.", []string{"127.53.3.1"}, "www 604800 A 192.0.2.7")
	f := newFixture(t, h, func(c *Config) { c.MaxTTL = time.Hour })
	f.ask(t, "www.long.test.", dns.TypeA)
	m := f.ask(t, "www.long.test.", dns.TypeA)
	if len(m.Answer) != 1 || m.Answer[0].Header().Ttl > 3600 {
		t.Fatalf("answer %v, want one record with TTL ≤ 3600", m.Answer)
	}
}

func TestRecursionNotDesiredIsRefusedWithoutSnooping(t *testing.T) {
	f := newFixture(t, world(t), nil)
	req := new(dns.Msg)
	req.SetQuestion("www.example.test.", dns.TypeA)
	req.RecursionDesired = false
	if m := f.r.Answer(context.Background(), req); m.Rcode != dns.RcodeRefused {
		t.Fatalf("rcode %s, want REFUSED", dns.RcodeToString[m.Rcode])
	}
}

func TestRefreshAsksUpstreamEvenWhenCached(t *testing.T) {
	h := world(t)
	f := newFixture(t, h, nil)
	f.ask(t, "www.example.test.", dns.TypeA)
	before := h.Server("127.53.1.1").QueryCount()
	req := new(dns.Msg)
	req.SetQuestion("www.example.test.", dns.TypeA)
	if m := f.r.Refresh(context.Background(), req); len(m.Answer) != 1 {
		t.Fatalf("refresh answer %v", m.Answer)
	}
	if after := h.Server("127.53.1.1").QueryCount(); after != before+1 {
		t.Errorf("refresh sent %d upstream queries, want 1", after-before)
	}
}

func TestCachedAnswerTTLCountsDownOnTheInjectedClock(t *testing.T) {
	f := newFixture(t, world(t), nil)
	f.ask(t, "www.example.test.", dns.TypeA)
	f.r.clock.(*simnet.Clock).Advance(100 * time.Second)
	m := f.ask(t, "www.example.test.", dns.TypeA)
	if len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 200 {
		t.Fatalf("answer %v, want one record with TTL 300-100=200", m.Answer)
	}
	f.r.clock.(*simnet.Clock).Advance(201 * time.Second)
	before := f.h.Server("127.53.1.1").QueryCount()
	f.ask(t, "www.example.test.", dns.TypeA)
	if f.h.Server("127.53.1.1").QueryCount() == before {
		t.Error("expired answer was served from the cache")
	}
}

func TestNamesOfOneZoneAskedAtOnceShareTheDelegationQuery(t *testing.T) {
	h := world(t)
	h.Zone("many.test.", []string{"127.53.4.1"}, "* 300 A 192.0.2.44")
	f := newFixture(t, h, nil)
	f.ask(t, "www.example.test.", dns.TypeA) // warm the root and test.
	h.Server("127.53.0.2").Reset()
	h.Server("127.53.0.2").SetKnobs(simnet.Knobs{Latency: 50 * time.Millisecond})
	askTogether(t, f, namesUnder("many.test.", 20))
	if n := h.Server("127.53.0.2").QueryCount(); n > 2 {
		t.Errorf("test. was asked %d times for 20 names of one zone, want ≤ 2", n)
	}
}

// namesUnder is n names under zone: h0.zone. to h<n-1>.zone.
func namesUnder(zone string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("h%d.%s", i, zone)
	}
	return names
}

// askTogether asks the names' A records concurrently and returns the
// answers in the names' order.
func askTogether(t *testing.T, f *fixture, names []string) []*dns.Msg {
	t.Helper()
	answers := make([]*dns.Msg, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { answers[i] = f.ask(t, name, dns.TypeA) })
	}
	wg.Wait()
	return answers
}

// askAtOnce asks the names concurrently and checks that each is answered
// with want.
func askAtOnce(t *testing.T, f *fixture, names []string, want string) {
	t.Helper()
	for i, m := range askTogether(t, f, names) {
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != want {
			t.Errorf("%s: got %s %v, want %s", names[i], dns.RcodeToString[m.Rcode], m.Answer, want)
		}
	}
}

// loseFirstQuery makes srv hold its next query long enough for the
// queries asked with it to wait on it, then drop it; it answers the
// others as its zones do.
func loseFirstQuery(srv *simnet.Server) {
	srv.Reset()
	var seen atomic.Int32
	srv.Update(func(k *simnet.Knobs) {
		k.Handler = func(q *dns.Msg, tcp bool) *dns.Msg {
			if seen.Add(1) == 1 {
				time.Sleep(50 * time.Millisecond)
				return nil
			}
			return srv.Honest(q, tcp)
		}
	})
}

func TestNamesAskedTogetherRetryTogetherWhenTheParentDropsTheirReferralQuery(t *testing.T) {
	h := world(t)
	h.Zone("many.test.", []string{"127.53.4.1"}, "* 300 A 192.0.2.44")
	f := newFixture(t, h, nil)
	f.ask(t, "www.example.test.", dns.TypeA) // warm the root and test.
	srv := h.Server("127.53.0.2")
	loseFirstQuery(srv)
	askAtOnce(t, f, namesUnder("many.test.", 20), "192.0.2.44")
	// The names that waited on the dropped query retry over TCP together
	// with the one that sent it.
	var got []string
	for _, q := range srv.Queries() {
		got = append(got, fmt.Sprintf("%s tcp=%v", strings.ToLower(q.Name), q.TCP))
	}
	if want := []string{"many.test. tcp=false", "many.test. tcp=true"}; !slices.Equal(got, want) {
		t.Errorf("test. was asked %v for 20 names of one zone, want %v", got, want)
	}
}

func TestALostDatagramSharedByManyQueriesCountsAsOneLoss(t *testing.T) {
	h := world(t)
	f := newFixture(t, h, nil)
	f.ask(t, "www.example.test.", dns.TypeA) // warm the root, test. and example.test.
	srv := h.Server("127.53.1.1")
	loseFirstQuery(srv)
	// The names of glueless.test. all need the address of its server,
	// which example.test.'s server gives: one exchange, shared.
	askTogether(t, f, namesUnder("glueless.test.", 20))
	// One lost datagram and one TCP answer: neither a dead server nor
	// one to ask over TCP first.
	srv.Reset()
	if m := f.ask(t, "mail.example.test.", dns.TypeA); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("mail.example.test.: %s", dns.RcodeToString[m.Rcode])
	}
	if qs := srv.Queries(); len(qs) != 1 || qs[0].TCP {
		t.Errorf("the next question went as %+v, want one UDP query", qs)
	}
}

func TestEachLostExchangeCountsOneTimeoutHoweverManyQueriesShareIt(t *testing.T) {
	h := world(t)
	f := newFixture(t, h, nil)
	f.ask(t, "www.example.test.", dns.TypeA) // warm the root, test. and example.test.
	srv := h.Server("127.53.1.1")
	srv.Reset()
	srv.Update(func(k *simnet.Knobs) {
		k.Handler = func(*dns.Msg, bool) *dns.Msg {
			time.Sleep(20 * time.Millisecond) // long enough for others to share the query
			return nil
		}
	})
	askTogether(t, f, namesUnder("glueless.test.", 20))
	f.r.infra.mu.Lock()
	timeouts := f.r.infra.get(netip.MustParseAddr("127.53.1.1")).timeouts
	f.r.infra.mu.Unlock()
	if sent := srv.QueryCount(); timeouts > sent {
		t.Errorf("%d timeouts counted for %d queries lost", timeouts, sent)
	}
}

func TestNamesAskedTogetherAreAnsweredWhenOneServerServesTheZoneAndItsChild(t *testing.T) {
	h := world(t)
	h.Zone("co.test.", []string{"127.53.5.1"}, "")
	h.Zone("sub.co.test.", []string{"127.53.5.1"}, "* 300 A 192.0.2.55")
	f := newFixture(t, h, nil)
	f.ask(t, "www.example.test.", dns.TypeA) // warm the root and test.
	h.Server("127.53.5.1").SetKnobs(simnet.Knobs{Latency: 20 * time.Millisecond})
	names := namesUnder("sub.co.test.", 20)
	askAtOnce(t, f, names, "192.0.2.55")
	asked := 0
	for _, q := range h.Server("127.53.5.1").Queries() {
		if strings.EqualFold(q.Name, "sub.co.test.") {
			asked++
		}
	}
	// The server answers the minimised question for sub.co.test. itself,
	// which leaves no cut in the cache: each name that waited on the
	// first asker asks once more (together, when they are in time to
	// share the query), and none waits again.
	if asked == 0 || asked > 1+len(names) {
		t.Errorf("sub.co.test. was asked %d times for %d names under it, want 1 to %d", asked, len(names), 1+len(names))
	}
}

func TestSnoopForAnUncachedNameGetsTheCachedDelegation(t *testing.T) {
	f := newFixture(t, world(t), func(c *Config) { c.AllowSnoop = true })
	f.ask(t, "www.example.test.", dns.TypeA)
	req := new(dns.Msg)
	req.SetQuestion("elsewhere.example.test.", dns.TypeA)
	req.RecursionDesired = false
	m := f.r.Answer(context.Background(), req)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || !hasType(m.Ns, dns.TypeNS) || m.Ns[0].Header().Name != "example.test." {
		t.Fatalf("got %s answer=%v authority=%v, want the example.test. delegation", dns.RcodeToString[m.Rcode], m.Answer, m.Ns)
	}
}
