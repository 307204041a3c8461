package attack

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// bailEnv is newEnv's hierarchy plus other.test. (a bystander zone on
// 127.<net>.4.1), with wildcards so every name asked exists, and a
// promiscuous server on 127.<net>.3.1 that claims bank.test, other.test
// and test. and logs who asks it. Nothing delegates to it.
func bailEnv(t *testing.T, net byte) (*env, *simnet.Server) {
	t.Helper()
	needRoot(t)
	h := simnet.NewHierarchy()
	h.Zone(".", []string{addr(net, 0, 1)}, "")
	h.Zone("test.", []string{addr(net, 0, 2)}, "")
	h.Zone("bank.test.", []string{addr(net, 1, 1)}, "www 300 A "+genuineAddr+"\n* 300 A "+genuineAddr+"\n")
	h.Zone("evil.test.", []string{addr(net, 2, 1)}, "www 300 A "+forgedAddr+"\n* 300 A "+forgedAddr+"\nns 300 A "+addr(net, 3, 1)+"\n")
	h.Zone("other.test.", []string{addr(net, 4, 1)}, "* 300 A "+genuineAddr+"\n")
	var zs []*simnet.Zone
	for _, o := range []string{"bank.test.", "other.test.", "test."} {
		z, err := simnet.ParseZone(o, "@ 300 SOA ns.evil.test. h.evil.test. 1 3600 900 604800 300\n@ 300 NS ns.evil.test.\n* 300 A "+forgedAddr+"\n")
		if err != nil {
			t.Fatal(err)
		}
		zs = append(zs, z)
	}
	promisc := h.Net.AddServer(netip.MustParseAddr(addr(net, 3, 1)), zs...)
	return startEnv(t, h, net, transport.Config{}, transport.SocketConfig{}, nil), promisc
}

// queriesUnder counts the queries s received for names at or below zone.
func queriesUnder(s *simnet.Server, zone string) int {
	n := 0
	for _, q := range s.Queries() {
		if dns.IsSubDomain(zone, strings.ToLower(q.Name)) {
			n++
		}
	}
	return n
}

// cachedNS returns the NS names cached for zone, sorted.
func (e *env) cachedNS(zone string) []string {
	en, ok := e.cache.Get(cache.NewKey(zone, dns.TypeNS, dns.ClassINET), time.Now())
	if !ok {
		return nil
	}
	var out []string
	for _, rr := range en.RRs {
		if ns, ok := rr.(*dns.NS); ok {
			out = append(out, strings.ToLower(ns.Ns))
		}
	}
	slices.Sort(out)
	return out
}

func rr(s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return r
}

// askAll asks names and counts the answers with the genuine address only.
func (e *env) askAll(names ...string) (genuine, forged int) {
	for _, n := range names {
		r := e.ask(n, dns.TypeA, 5*time.Second)
		switch {
		case isForged(r):
			forged++
		case slices.Equal(addrs(r), []string{genuineAddr}):
			genuine++
		}
	}
	return genuine, forged
}

// TestEvilServerCannotClaimBankThroughItsOwnAnswers is BAIL-2: the
// attacker's own server (no spoofing) appends `www.bank.test A` to the
// additional section and `bank.test NS ns.evil.test` (with glue) to the
// authority section of every answer for its own names, before and after
// the resolver has learnt bank.test. No query for bank.test may reach it.
func TestEvilServerCannotClaimBankThroughItsOwnAnswers(t *testing.T) {
	e, promisc := bailEnv(t, 110)
	honestly(e.evil, func(q *dns.Msg, tcp bool, m *dns.Msg) *dns.Msg {
		if m == nil || len(m.Answer) == 0 {
			return m
		}
		m.Ns = append(m.Ns, rr("bank.test. 86400 IN NS ns.evil.test."))
		m.Extra = append(m.Extra, rr("www.bank.test. 86400 IN A "+forgedAddr), rr("ns.evil.test. 86400 IN A "+promisc.Addr().String()))
		return m
	})
	var evilNames, bankNames []string
	for i := range 10 {
		evilNames = append(evilNames, fmt.Sprintf("e%d.evil.test.", i))
		bankNames = append(bankNames, fmt.Sprintf("b%d.bank.test.", i))
	}
	_, fe1 := e.askAll(evilNames[:5]...) // bank.test unknown yet
	g1, fb1 := e.askAll("www.bank.test.", bankNames[0])
	_, fe2 := e.askAll(evilNames[5:]...) // bank.test cached now
	g2, fb2 := e.askAll(append([]string{"www.bank.test."}, bankNames[1:]...)...)
	toEvil, toPromisc := queriesUnder(e.evil, "bank.test."), queriesUnder(promisc, "bank.test.")
	poisoned := e.poisonedCache("www.bank.test.")
	t.Logf("RESULT BAIL-2: attempts=%d evil_answers_carrying_the_attack=%d genuine_bank=%d/%d forged_bank=%d bank_queries_to_evil=%d to_attacker_ns=%d poisoned_cache_entries=%d cached_bank_ns=%v",
		len(evilNames), fe1+fe2, g1+g2, 2+len(bankNames), fb1+fb2, toEvil, toPromisc, poisoned, e.cachedNS("bank.test."))
	if fe1+fe2 != len(evilNames) {
		t.Errorf("the evil server answered %d of %d: the attack was not delivered", fe1+fe2, len(evilNames))
	}
	if g1+g2 != 2+len(bankNames) || fb1+fb2 != 0 {
		t.Errorf("bank.test answers: %d genuine of %d, %d forged", g1+g2, 2+len(bankNames), fb1+fb2)
	}
	if toEvil+toPromisc != 0 || poisoned != 0 {
		t.Errorf("bank.test queries reached the attacker (%d evil, %d its NS) or the cache was poisoned (%d)", toEvil, toPromisc, poisoned)
	}
}

// TestPromiscuousNSInAPositiveAnswerChangesNoDelegation is BAIL-3: bank's
// own server, once compromised, adds NS sets for other zones (the bystander
// other.test, the parent test., and bank.test itself) pointing at a server
// of the attacker's to a positive answer. Authority NS of an answer never
// enters a delegation (only the zone's own apex NS set is kept, beside it,
// as a last resort when every delegated server fails): the delegations
// stay as they were and the attacker's server is never asked.
func TestPromiscuousNSInAPositiveAnswerChangesNoDelegation(t *testing.T) {
	e, promisc := bailEnv(t, 111)
	if g, _ := e.askAll("o0.other.test.", "www.bank.test."); g != 2 {
		t.Fatalf("warm-up failed: %d genuine of 2", g)
	}
	before := map[string][]string{}
	for _, z := range []string{"other.test.", "test.", "bank.test."} {
		before[z] = e.cachedNS(z)
	}
	honestly(e.bank, func(q *dns.Msg, tcp bool, m *dns.Msg) *dns.Msg {
		if m == nil || len(m.Answer) == 0 {
			return m
		}
		for _, z := range []string{"other.test.", "test.", "bank.test."} {
			m.Ns = append(m.Ns, rr(z+" 86400 IN NS ns.evil.test."))
		}
		m.Extra = append(m.Extra, rr("ns.evil.test. 86400 IN A "+promisc.Addr().String()))
		return m
	})
	var bankNames, otherNames []string
	for i := range 10 {
		bankNames = append(bankNames, fmt.Sprintf("p%d.bank.test.", i))
		otherNames = append(otherNames, fmt.Sprintf("o%d.other.test.", i+1))
	}
	gb, _ := e.askAll(bankNames...)
	gotherBefore := queriesUnder(promisc, ".")
	go1, fo := e.askAll(otherNames...)
	changed := 0
	for z, ns := range before {
		if after := e.cachedNS(z); !slices.Equal(after, ns) {
			changed++
			t.Errorf("cached NS of %s changed: %v → %v", z, ns, after)
		}
	}
	toPromisc := queriesUnder(promisc, ".")
	t.Logf("RESULT BAIL-3: attempts=%d genuine_bank=%d genuine_other=%d/%d forged=%d delegations_changed=%d queries_to_promiscuous_ns=%d (before other.test asks: %d) cached_ns=%v",
		len(bankNames), gb, go1, len(otherNames), fo, changed, toPromisc, gotherBefore, before)
	if gb != len(bankNames) || go1 != len(otherNames) || fo != 0 {
		t.Errorf("answers: bank %d/%d, other %d/%d genuine, %d forged", gb, len(bankNames), go1, len(otherNames), fo)
	}
	if toPromisc != 0 {
		t.Errorf("%d queries went to the promiscuous server", toPromisc)
	}
}
