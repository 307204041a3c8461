package attack

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver"
	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/bulwark-dns/bulwark/resolver/transport"
	"github.com/bulwark-dns/bulwark/validate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// needRoot skips a test that binds port 53 or opens raw sockets when the
// suite does not run as root; CI runs as root, so there it always runs.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("attack scenarios need root: port 53 on 127.x addresses and raw IPPROTO_RAW sockets")
	}
}

// Addresses of the genuine and forged data.
const (
	genuineAddr = "198.51.100.80"
	forgedAddr  = "6.6.6.6"
)

// env is one resolver under attack and the loopback internet it resolves:
// root, test., bank.test. (the victim) and evil.test. (the attacker's
// zone), each on its own 127.<net>.x.y address.
type env struct {
	t     *testing.T
	h     *simnet.Hierarchy
	r     *resolver.Resolver
	ex    *transport.Client
	cache *cache.Cache
	logs  *observer.ObservedLogs
	bank  *simnet.Server
	evil  *simnet.Server
}

// addr returns 127.<net>.a.b: every test picks its own <net>, so tests and
// other processes (one holds 127.0.2.4:53) never clash.
func addr(net, a, b byte) string { return fmt.Sprintf("127.%d.%d.%d", net, a, b) }

// requireUDPWarmUp stops a test whose warm-up went over TCP. That happens
// only when a UDP try timed out, on a machine stalled past the first
// timeout; the resolver then asks the server over TCP, which no UDP
// forgery reaches, and the run would pass without testing anything.
func requireUDPWarmUp(t *testing.T, e *env) {
	t.Helper()
	if n := e.ex.Stats().QueriesTCP; n > 0 {
		t.Fatalf("the warm-up asked over TCP %d times: a UDP try timed out, so the attack could not be tested over UDP", n)
	}
}

// defensesOff is the transport with every spoofing defense switched off:
// the "teeth" configuration.
func defensesOff(cfg transport.Config) transport.Config {
	cfg.DisableCaseMix, cfg.DisableCookies, cfg.DisableHoldOn, cfg.AcceptFragments = true, true, true, true
	cfg.NearMissMax, cfg.UnwantedThreshold = 1<<30, pressureOff
	return cfg
}

// pressureOff is the transport's unwanted-reply threshold that switches
// spoofing pressure off; startEnv then switches off its per-zone half in
// the resolver too, since both halves are one defense.
const pressureOff = 1 << 30

// newEnv builds the hierarchy on 127.<net>/16, serves it on port 53 and
// starts a resolver over real sockets.
func newEnv(t *testing.T, net byte, tcfg transport.Config, scfg transport.SocketConfig) *env {
	t.Helper()
	needRoot(t)
	h := simnet.NewHierarchy()
	h.Zone(".", []string{addr(net, 0, 1)}, "")
	h.Zone("test.", []string{addr(net, 0, 2)}, "")
	h.Zone("bank.test.", []string{addr(net, 1, 1)}, "www 300 A "+genuineAddr+"\n* 300 A "+genuineAddr+"\n")
	h.Zone("evil.test.", []string{addr(net, 2, 1)}, "www 300 A "+forgedAddr+"\n")
	return startEnv(t, h, net, tcfg, scfg, nil)
}

// startEnv serves h on port 53 and starts a resolver over real sockets,
// validating with v when it is not nil.
func startEnv(t *testing.T, h *simnet.Hierarchy, net byte, tcfg transport.Config, scfg transport.SocketConfig, v *validate.Validator) *env {
	t.Helper()
	if err := h.Net.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Net.Close() })
	core, logs := observer.New(zapcore.WarnLevel)
	log := zap.New(core)
	ex := transport.NewExchanger(transport.NewSocketNetwork(scfg), tcfg, log)
	t.Cleanup(ex.Close)
	cfg := resolver.DefaultConfig()
	cfg.RootHints = h.RootHints()
	cfg.DoIPv6 = false
	if tcfg.UnwantedThreshold == pressureOff {
		cfg.ZonePressure.Threshold = 0
	}
	c := cache.New(cfg.CacheConfig(0))
	r, err := resolver.New(cfg, resolver.Deps{Exchanger: ex, Cache: c, Logger: log, Clock: wallClock{}, Validator: v})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, h: h, r: r, ex: ex, cache: c, logs: logs}
	e.bank = h.Net.Server(netip.MustParseAddr(addr(net, 1, 1)))
	e.evil = h.Net.Server(netip.MustParseAddr(addr(net, 2, 1)))
	return e
}

// ask sends a client query and returns the resolver's answer.
func (e *env) ask(name string, qtype uint16, timeout time.Duration) *dns.Msg {
	req := new(dns.Msg)
	req.SetQuestion(dns.Fqdn(name), qtype)
	req.RecursionDesired = true
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return e.r.Answer(ctx, req)
}

// addrs returns the A addresses of an answer.
func addrs(m *dns.Msg) []string {
	var out []string
	if m == nil {
		return nil
	}
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

func isForged(m *dns.Msg) bool {
	for _, a := range addrs(m) {
		if a == forgedAddr {
			return true
		}
	}
	return false
}

// poisonedCache counts poisoned cache entries: a forged address for
// name, and a bank.test NS set that names the attacker's server.
func (e *env) poisonedCache(name string) int {
	now := time.Now()
	n := 0
	if en, ok := e.cache.Get(cache.NewKey(dns.Fqdn(name), dns.TypeA, dns.ClassINET), now); ok {
		for _, rr := range en.RRs {
			if a, ok := rr.(*dns.A); ok && a.A.String() == forgedAddr {
				n++
			}
		}
	}
	if en, ok := e.cache.Get(cache.NewKey("bank.test.", dns.TypeNS, dns.ClassINET), now); ok {
		for _, rr := range en.RRs {
			if ns, ok := rr.(*dns.NS); ok && strings.HasSuffix(ns.Ns, "evil.test.") {
				n++
			}
		}
	}
	return n
}

// forgedReply is the attacker's answer to a question: the forged address,
// a bank.test NS pointing at the attacker, and its glue (Kaminsky).
func forgedReply(id uint16, qname string, qtype uint16, attackerNS string) *dns.Msg {
	m := new(dns.Msg)
	m.Id = id
	m.Response, m.Authoritative = true, true
	m.Question = []dns.Question{{Name: qname, Qtype: qtype, Qclass: dns.ClassINET}}
	if qtype == dns.TypeA {
		a, _ := dns.NewRR(qname + " 300 IN A " + forgedAddr)
		m.Answer = []dns.RR{a}
	}
	ns, _ := dns.NewRR("bank.test. 86400 IN NS ns.evil.test.")
	glue, _ := dns.NewRR("ns.evil.test. 86400 IN A " + attackerNS)
	m.Ns = []dns.RR{ns}
	m.Extra = []dns.RR{glue}
	return m
}

// wallClock is real time: the attack suite runs on real sockets and real
// timing, so TTLs age with it.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }
