package attack

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver"
	"github.com/bulwark-dns/bulwark/resolver/simnet"
)

// forwardEnv is bailEnv's hierarchy plus corp.test., which nothing
// delegates: it is served only by a malicious forwarder on 127.<net>.5.1.
// The resolver forwards corp.test there and resolves everything else from
// the root, with one cache for both. unscrubbed turns the scrub of
// forwarded replies off (the teeth run).
func forwardEnv(t *testing.T, net byte, unscrubbed bool) (e *env, fwd, promisc *simnet.Server) {
	t.Helper()
	e, promisc = bailEnv(t, net)
	corp, err := simnet.ParseZone("corp.test.", "@ 300 SOA ns.corp.test. h.corp.test. 1 3600 900 604800 300\n@ 300 NS ns.corp.test.\n* 300 A "+genuineAddr+"\n")
	if err != nil {
		t.Fatal(err)
	}
	fwd = e.h.Net.AddServer(netip.MustParseAddr(addr(net, 5, 1)), corp)
	if err := fwd.Listen(); err != nil { // closed with the hierarchy
		t.Fatal(err)
	}
	cfg := resolver.DefaultConfig()
	cfg.RootHints = e.h.RootHints()
	cfg.DoIPv6 = false
	cfg.ForwardZones = []resolver.ForwardZone{{Zone: "corp.test.", Addrs: []netip.AddrPort{netip.AddrPortFrom(fwd.Addr(), 53)}}}
	cfg.UnsafeForwardUnscrubbed = unscrubbed
	core, logs := observer.New(zapcore.WarnLevel)
	e.cache, e.logs = cache.New(cfg.CacheConfig(0)), logs
	if e.r, err = resolver.New(cfg, resolver.Deps{Exchanger: e.ex, Cache: e.cache, Logger: zap.New(core), Clock: wallClock{}}); err != nil {
		t.Fatal(err)
	}
	return e, fwd, promisc
}

// maginot makes the forwarder add, to every section of every answer, NS
// sets for test. and bank.test. naming ns.evil.test, whose glue points at
// the promiscuous server, and a forged www.bank.test address: BIND before
// CVE-2021-25220 cached such NS from a forwarder and used them to iterate.
func maginot(fwd *simnet.Server, promiscAddr string) {
	honestly(fwd, func(q *dns.Msg, tcp bool, m *dns.Msg) *dns.Msg {
		if m == nil || len(m.Answer) == 0 {
			return m
		}
		ns := []dns.RR{rr("test. 86400 IN NS ns.evil.test."), rr("bank.test. 86400 IN NS ns.evil.test.")}
		extra := []dns.RR{rr("ns.evil.test. 86400 IN A " + promiscAddr), rr("www.bank.test. 86400 IN A " + forgedAddr)}
		m.Answer = append(append(m.Answer, ns...), extra...)
		m.Ns = append(m.Ns, ns...)
		m.Extra = append(m.Extra, extra...)
		return m
	})
}

// TestMaginotDNSForwarderCannotPlantDelegations is BAIL-4: a forward zone
// corp.test whose forwarder is malicious and adds test. and bank.test NS
// sets with glue pointing at the attacker to its answers. Asked before and
// after bank.test is known, www.bank.test and its siblings stay genuine
// and no query reaches the attacker's servers. With the scrub of forwarded
// replies switched off the same attack must poison, or the test has no
// teeth.
func TestMaginotDNSForwarderCannotPlantDelegations(t *testing.T) {
	tests := []struct {
		name       string
		net        byte
		unscrubbed bool
	}{
		{name: "Scrubbed", net: 147},
		{name: "UnscrubbedIsPoisoned", net: 148, unscrubbed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, fwd, promisc := forwardEnv(t, tc.net, tc.unscrubbed)
			maginot(fwd, promisc.Addr().String())
			var corpNames, bankNames []string
			for i := range 10 {
				corpNames = append(corpNames, fmt.Sprintf("c%d.corp.test.", i))
				bankNames = append(bankNames, fmt.Sprintf("b%d.bank.test.", i))
			}
			gc1, _ := e.askAll(corpNames[:5]...) // bank.test unknown yet
			gb1, fb1 := e.askAll("www.bank.test.", bankNames[0])
			gc2, _ := e.askAll(corpNames[5:]...) // bank.test cached now
			gb2, fb2 := e.askAll(append([]string{"www.bank.test."}, bankNames[1:]...)...)
			attempts := len(fwd.Queries())
			toEvil := queriesUnder(e.evil, ".") + queriesUnder(promisc, ".")
			poisoned := e.poisonedCache("www.bank.test.")
			if ns := e.cachedNS("test."); slices.Contains(ns, "ns.evil.test.") {
				poisoned++
			}
			poisonedRun := fb1+fb2 > 0 || toEvil > 0 || poisoned > 0
			t.Logf("RESULT BAIL-4 %s: forwarded_answers_carrying_the_attack=%d/%d injected_per_answer=8(answer 4, authority 2, additional 2) genuine_bank=%d/%d forged_bank=%d queries_to_evil=%d poisoned_cache_entries=%d cached_ns_bank=%v cached_ns_test=%v poisoned=%v",
				tc.name, gc1+gc2, attempts, gb1+gb2, 2+len(bankNames), fb1+fb2, toEvil, poisoned, e.cachedNS("bank.test."), e.cachedNS("test."), poisonedRun)
			if gc1+gc2 != len(corpNames) || attempts != len(corpNames) {
				t.Fatalf("the forwarder answered %d of %d corp.test names in %d queries: the attack was not delivered", gc1+gc2, len(corpNames), attempts)
			}
			if tc.unscrubbed {
				if !poisonedRun {
					t.Errorf("no teeth: with forwarded replies unscrubbed the attack still failed")
				}
				return
			}
			if gb1+gb2 != 2+len(bankNames) || poisonedRun {
				t.Errorf("bank.test: %d genuine of %d, %d forged, %d queries to the attacker, %d poisoned cache entries", gb1+gb2, 2+len(bankNames), fb1+fb2, toEvil, poisoned)
			}
		})
	}
}
