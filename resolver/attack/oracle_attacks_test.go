package attack

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// packet is one forged datagram: its claimed source and payload.
type packet struct {
	src     netip.AddrPort
	payload []byte
}

// forger turns an observed query into the packets the attacker sends.
type forger func(e *env, rec simnet.QueryRecord) []packet

// tally is the outcome of one run of a scenario.
type tally struct {
	attempts, forgedSent, poisonedAnswers, genuine, servfail, poisonedCache int
	latency                                                                 time.Duration // mean client latency
	lat                                                                     []time.Duration
}

func (t tally) String() string {
	return fmt.Sprintf("attempts=%d forged_sent=%d poisoned_answers=%d genuine=%d servfail=%d poisoned_cache_entries=%d mean_latency=%v",
		t.attempts, t.forgedSent, t.poisonedAnswers, t.genuine, t.servfail, t.poisonedCache, t.latency.Round(time.Millisecond))
}

// oracleRun asks attempts fresh names under bank.test while the oracle
// hands every UDP query the bank server sees to forge, whose packets the
// spoofer sends at once; the bank server delays its genuine replies by
// latency. Two clean queries first teach the resolver the delegation and
// the server's RTT.
func oracleRun(t *testing.T, e *env, attempts int, latency time.Duration, forge forger) tally {
	t.Helper()
	e.bank.Update(func(k *simnet.Knobs) { k.Latency = latency })
	for _, w := range []string{"www.bank.test.", "warm.bank.test."} {
		if r := e.ask(w, dns.TypeA, 5*time.Second); len(addrs(r)) == 0 {
			t.Fatalf("warm-up failed: %v", r)
		}
	}
	sp, err := newSpoofer(100000, 50000, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	seen := e.bank.QueryCount()
	go func() {
		defer wg.Done()
		watchQueries(ctx, e.bank, seen, func(rec simnet.QueryRecord) {
			for _, p := range forge(e, rec) {
				if err := sp.send(p.src, rec.From, p.payload); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}()
	var tl tally
	var total time.Duration
	for i := range attempts {
		name := oracleName(i)
		begin := time.Now()
		r := e.ask(name, dns.TypeA, 10*time.Second)
		took := time.Since(begin)
		total += took
		tl.lat = append(tl.lat, took)
		tl.attempts++
		switch {
		case isForged(r):
			tl.poisonedAnswers++
		case len(addrs(r)) > 0:
			tl.genuine++
		case r != nil && r.Rcode == dns.RcodeServerFailure:
			tl.servfail++
		}
		tl.poisonedCache += e.poisonedCache(name)
	}
	cancel()
	wg.Wait()
	tl.forgedSent = sp.sent
	tl.latency = total / time.Duration(max(attempts, 1))
	return tl
}

// oracleName is the i-th fresh name an oracle run asks. It has 31
// letters, above the threat model's 16 for OFF-5: a lower-case forgery
// matches a query's random 0x20 case once in 2^31. OFF-5 exposes 40 UDP
// queries per run (20 attempts in each of its two guarded runs), so a run
// fails by chance with 40/2^31 = 2e-8. With 9 letters that was 7.5%, and
// with the 19 letters of accountname<i> still 40/2^19 = 7.6e-5.
func oracleName(i int) string {
	return fmt.Sprintf("accountholdernamelookup%d.bank.test.", i)
}

// forgery packs the attacker's reply to rec: its ID (unless id >= 0 says
// otherwise), the question as mutate leaves it, and when echoCookie the
// query's client cookie with a made-up server cookie, as an on-path
// injector that read the query can.
func forgery(rec simnet.QueryRecord, id int, echoCookie bool, mutate func(*dns.Msg)) []byte {
	qid := rec.ID
	if id >= 0 {
		qid = uint16(id)
	}
	m := forgedReply(qid, rec.Name, rec.Type, "127.66.6.6")
	m.SetEdns0(1232, rec.DO)
	if echoCookie && len(rec.Cookie) >= 8 {
		ck := append(append([]byte(nil), rec.Cookie[:8]...), 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: fmt.Sprintf("%x", ck)})
	}
	if mutate != nil {
		mutate(m)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// only applies forge to queries for the attempt names, not to the
// resolver's other traffic (NS, DNSKEY) with the bank server.
func only(f forger) forger {
	return func(e *env, rec simnet.QueryRecord) []packet {
		if rec.Type != dns.TypeA || !strings.HasPrefix(strings.ToLower(rec.Name), "a") {
			return nil
		}
		return f(e, rec)
	}
}

// isolate is the transport with every spoofing defense off except the one
// keep turns back on, so a scenario shows that defense alone holds.
func isolate(keep func(*transport.Config)) transport.Config {
	cfg := defensesOff(transport.Config{})
	if keep != nil {
		keep(&cfg)
	}
	return cfg
}

// scenario is one oracle attack with its budget and the defense it tests.
type scenario struct {
	name     string
	net      byte
	attempts int
	latency  time.Duration
	forge    forger
	defense  func(*transport.Config) // turns the defense under test on
	// passOn judges the run with the defense on (alone and with every
	// default); teeth runs must be poisoned at least once.
	passOn func(tally) bool
}

func (sc scenario) run(t *testing.T) {
	runs := []struct {
		mode string
		cfg  transport.Config
		on   bool
	}{
		{"defense-on", isolate(sc.defense), true},
		{"all-defaults", transport.Config{}, true},
		{"defense-off", isolate(nil), false},
	}
	for i, run := range runs {
		t.Run(run.mode, func(t *testing.T) {
			e := newEnv(t, sc.net+byte(i), run.cfg, transport.SocketConfig{})
			tl := oracleRun(t, e, sc.attempts, sc.latency, only(sc.forge))
			st := e.ex.Stats()
			t.Logf("RESULT %s %s: %v | mismatched_id=%d mismatched_case=%d mismatched_cookie=%d injections=%d conflicting=%d tcp_queries=%d",
				sc.name, run.mode, tl, st.MismatchedID, st.MismatchedCase, st.MismatchedCookie, st.InjectionsDetected, st.ConflictingReplies, st.QueriesTCP)
			if run.on && !sc.passOn(tl) {
				t.Errorf("%s with the defense on: %v", sc.name, tl)
			}
			if !run.on && tl.poisonedAnswers == 0 {
				t.Errorf("%s without the defense was not poisoned: the test has no teeth: %v", sc.name, tl)
			}
		})
	}
}

// lower spells a forgery's names in lower case, as an off-path forger
// who cannot see the query's 0x20 case must guess.
func lower(m *dns.Msg) {
	m.Question[0].Name = strings.ToLower(m.Question[0].Name)
	m.Answer[0].Header().Name = strings.ToLower(m.Answer[0].Header().Name)
}

type simnetQR = simnet.QueryRecord

func neverPoisoned(tl tally) bool {
	return tl.poisonedAnswers == 0 && tl.poisonedCache == 0 && tl.genuine == tl.attempts
}

// TestOffPathForgeryWithKnownPortAndIDButWrongCaseIsRejected is OFF-5: the
// oracle gives the port and ID, not the 0x20 case; the forgery spells the
// name in lower case (see oracleName for the odds of a lucky guess).
func TestOffPathForgeryWithKnownPortAndIDButWrongCaseIsRejected(t *testing.T) {
	scenario{name: "OFF-5", net: 61, attempts: 20, latency: 150 * time.Millisecond,
		forge: func(e *env, rec simnet.QueryRecord) []packet {
			return []packet{{serverAP(e.bank), forgery(rec, -1, false, lower)}}
		},
		defense: func(c *transport.Config) { c.DisableCaseMix = false },
		passOn:  neverPoisoned,
	}.run(t)
}

// TestOffPathForgeryAfterANearMissIsRejected is OFF-4: one wrong-ID reply,
// then a forgery right in port, ID and case: the near-miss has moved the
// exchange to TCP, so the correct forgery finds no socket.
func TestOffPathForgeryAfterANearMissIsRejected(t *testing.T) {
	scenario{name: "OFF-4", net: 64, attempts: 20, latency: 150 * time.Millisecond,
		forge: func(e *env, rec simnet.QueryRecord) []packet {
			return []packet{
				{serverAP(e.bank), forgery(rec, int(rec.ID^0x5a5a), false, nil)},
				{serverAP(e.bank), forgery(rec, -1, false, nil)},
			}
		},
		defense: func(c *transport.Config) { c.NearMissMax = 1 },
		passOn:  neverPoisoned,
	}.run(t)
}

// TestOffPathForgeryWithoutTheClientCookieIsRejected is OFF-7: the oracle
// gives port, ID and case, but the off-path forger cannot read the cookie.
func TestOffPathForgeryWithoutTheClientCookieIsRejected(t *testing.T) {
	scenario{name: "OFF-7", net: 67, attempts: 20, latency: 150 * time.Millisecond,
		forge: func(e *env, rec simnet.QueryRecord) []packet {
			return []packet{{serverAP(e.bank), forgery(rec, -1, false, nil)}}
		},
		defense: func(c *transport.Config) { c.DisableCookies = false },
		passOn:  neverPoisoned,
	}.run(t)
}

// TestOnPathInjectionIntoUnsignedZoneLosesToHoldOn is ONP-2: the injector
// sees each query (port, ID, case, cookie) and answers within a
// millisecond; the genuine reply follows 150 ms later. It ignores TCP.
func TestOnPathInjectionIntoUnsignedZoneLosesToHoldOn(t *testing.T) {
	scenario{name: "ONP-2", net: 70, attempts: 50, latency: 150 * time.Millisecond,
		forge: func(e *env, rec simnet.QueryRecord) []packet {
			return []packet{{serverAP(e.bank), forgery(rec, -1, true, nil)}}
		},
		defense: func(c *transport.Config) { c.DisableHoldOn = false },
		passOn:  func(tl tally) bool { return tl.genuine*100 >= 95*tl.attempts && tl.poisonedCache == 0 },
	}.run(t)
}
