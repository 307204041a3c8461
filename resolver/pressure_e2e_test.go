package resolver

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// sprayNet is the simulated network with a spoofer aiming at some
// servers: every UDP query to one of them draws per forged replies ahead
// of the genuine one, each with another question, so that it fails the
// transport's question check. TCP to the addresses in noTCP is refused.
type sprayNet struct {
	*simnet.Network
	targets map[netip.Addr]bool
	noTCP   map[netip.Addr]bool
	per     int
}

func (n *sprayNet) DialUDP(ctx context.Context, server netip.AddrPort) (transport.PacketConn, error) {
	c, err := n.Network.DialUDP(ctx, server)
	if err != nil || !n.targets[server.Addr()] {
		return c, err
	}
	return &sprayConn{PacketConn: c, per: n.per}, nil
}

func (n *sprayNet) DialTCP(ctx context.Context, server netip.AddrPort) (transport.StreamConn, error) {
	if n.noTCP[server.Addr()] {
		return nil, fmt.Errorf("connect %s: %w", server, transport.ErrRefused)
	}
	return n.Network.DialTCP(ctx, server)
}

type sprayConn struct {
	transport.PacketConn
	per    int
	forged [][]byte
}

func (c *sprayConn) Write(b []byte) error {
	q := new(dns.Msg)
	if q.Unpack(b) == nil && len(q.Question) == 1 {
		for i := range c.per {
			f := new(dns.Msg)
			f.SetReply(q)
			f.Question[0].Name = fmt.Sprintf("forged%d.bank.test.", i)
			if data, err := f.Pack(); err == nil {
				c.forged = append(c.forged, data)
			}
		}
	}
	return c.PacketConn.Write(b)
}

func (c *sprayConn) Read(ctx context.Context) (transport.Datagram, error) {
	if len(c.forged) > 0 {
		d := c.forged[0]
		c.forged = c.forged[1:]
		return transport.Datagram{Data: d}, nil
	}
	return c.PacketConn.Read(ctx)
}

const (
	testTLDServer = "127.53.0.2"
	bankServer    = "127.53.2.1"
	evilServer    = "127.53.6.6"
)

// pressureWorld is test. with bank.test. below it, and an attacker's
// server that answers for bank.test. with its own addresses.
func pressureWorld(t *testing.T) *simnet.Hierarchy {
	t.Helper()
	h := simnet.NewHierarchy(simnet.InstantTimeouts())
	h.Zone(".", []string{"127.53.0.1"}, "")
	h.Zone("test.", []string{testTLDServer}, "")
	h.Zone("bank.test.", []string{bankServer}, "* 300 A 192.0.2.80\n")
	evil, err := simnet.ParseZone("bank.test.", `
@ 3600 SOA ns.evil.test. hostmaster.evil.test. 1 3600 600 86400 300
@ 3600 NS  ns.evil.test.
* 300 A 6.6.6.6
`)
	if err != nil {
		t.Fatal(err)
	}
	h.Net.AddServer(netip.MustParseAddr(evilServer), evil)
	return h
}

type pressureFixture struct {
	r     *Resolver
	clock *simnet.Clock
	logs  *observer.ObservedLogs
}

func newPressureFixture(t *testing.T, h *simnet.Hierarchy, sn *sprayNet, threshold int) *pressureFixture {
	t.Helper()
	cfg := DefaultConfig()
	cfg.RootHints = h.RootHints()
	cfg.DoIPv6 = false
	cfg.ZonePressure.Threshold = threshold
	core, logs := observer.New(zap.InfoLevel)
	clock := simnet.NewClock(time.Unix(1_800_000_000, 0))
	ex := transport.NewExchanger(sn, transport.Config{Clock: clock}, nil)
	t.Cleanup(ex.Close)
	r, err := New(cfg, Deps{Exchanger: ex, Clock: clock, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	return &pressureFixture{r: r, clock: clock, logs: logs}
}

func (f *pressureFixture) ask(t *testing.T, name string) string {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(name, dns.TypeA)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return answerText(f.r.Answer(ctx, req))
}

// poison puts what a forgery that slipped in would leave: bank.test.
// delegated to the attacker's server, at the rank of an authoritative
// answer.
func (f *pressureFixture) poison(t *testing.T) {
	t.Helper()
	now := f.clock.Now()
	ns, _ := dns.NewRR("bank.test. 3600 IN NS ns.evil.test.")
	glue, _ := dns.NewRR("ns.evil.test. 3600 IN A " + evilServer)
	k := cache.NewKey("bank.test.", dns.TypeNS, dns.ClassINET)
	f.r.cache.Delete(k)
	if !f.r.cache.Put(k, cache.Entry{RRs: []dns.RR{ns}, Rank: cache.RankAnswerAA, Security: cache.Unchecked}, now) ||
		!f.r.cache.Put(cache.NewKey("ns.evil.test.", dns.TypeA, dns.ClassINET), cache.Entry{RRs: []dns.RR{glue}, Rank: cache.RankGlue, Security: cache.Unchecked}, now) {
		t.Fatal("poison not cached")
	}
}

func (f *pressureFixture) bankNS(t *testing.T) string {
	t.Helper()
	e, ok := f.r.cache.Get(cache.NewKey("bank.test.", dns.TypeNS, dns.ClassINET), f.clock.Now())
	if !ok {
		return ""
	}
	var names []string
	for _, rr := range e.RRs {
		names = append(names, rr.(*dns.NS).Ns)
	}
	return strings.Join(names, " ")
}

// tcpNSQueries counts the queries for bank.test. NS that test.'s server
// received over TCP.
func tcpNSQueries(h *simnet.Hierarchy) int {
	n := 0
	for _, q := range h.Server(testTLDServer).Queries() {
		if q.TCP && q.Type == dns.TypeNS && strings.EqualFold(q.Name, "bank.test.") {
			n++
		}
	}
	return n
}

func pressureWarnings(logs *observer.ObservedLogs) int {
	return logs.FilterMessageSnippet("spoofing pressure on a zone").FilterField(zap.String("zone", "bank.test.")).Len()
}

// setUpPoisonedBank resolves a bank.test. name cleanly, so that test.'s
// delegation is cached, then poisons bank.test.'s and turns the spoofer on.
func setUpPoisonedBank(t *testing.T, h *simnet.Hierarchy, sn *sprayNet, threshold int) *pressureFixture {
	t.Helper()
	f := newPressureFixture(t, h, sn, threshold)
	if got := f.ask(t, "warm.bank.test."); got != "warm.bank.test. A 192.0.2.80" {
		t.Fatalf("warm-up answer %q", got)
	}
	f.poison(t)
	if got := f.bankNS(t); got != "ns.evil.test." {
		t.Fatalf("poisoned NS set %q", got)
	}
	sn.per = 2
	return f
}

// spraying is h's network with forgeries sprayed ahead of every genuine
// UDP reply from bank.test's servers, the poisoned one included.
func spraying(h *simnet.Hierarchy) *sprayNet {
	return &sprayNet{Network: h.Net, targets: map[netip.Addr]bool{
		netip.MustParseAddr(bankServer): true, netip.MustParseAddr(evilServer): true}}
}

func TestZoneUnderSpoofingPressureHasItsDelegationRefetchedOverTCP(t *testing.T) {
	h := pressureWorld(t)
	sn := spraying(h)
	f := setUpPoisonedBank(t, h, sn, 5)
	// 2 unwanted replies per query: the third passes the threshold of 5.
	for i := range 3 {
		f.ask(t, fmt.Sprintf("h%d.bank.test.", i))
	}
	if got := f.bankNS(t); got != "ns1.bank.test." {
		t.Fatalf("bank.test. NS after the threshold: %q, want the parent's ns1.bank.test.", got)
	}
	if n := tcpNSQueries(h); n != 1 {
		t.Fatalf("test.'s server got %d TCP queries for bank.test. NS, want 1", n)
	}
	if n := pressureWarnings(f.logs); n != 1 {
		t.Fatalf("%d warnings naming bank.test., want 1; logs: %v", n, f.logs.All())
	}
	if s := f.r.Stats(); s.ZonePressureEscalations != 1 || s.DelegationsRevalidated != 1 || s.ZoneUnwantedReplies < 6 {
		t.Fatalf("stats %+v", s)
	}
	if got := f.ask(t, "after.bank.test."); got != "after.bank.test. A 192.0.2.80" {
		t.Fatalf("answer after re-validation %q, want the genuine server's", got)
	}
}

func TestZoneBelowThePressureThresholdKeepsItsDelegation(t *testing.T) {
	h := pressureWorld(t)
	sn := spraying(h)
	f := setUpPoisonedBank(t, h, sn, 10)
	for i := range 4 {
		f.ask(t, fmt.Sprintf("h%d.bank.test.", i))
	}
	if got := f.bankNS(t); got != "ns.evil.test." {
		t.Fatalf("bank.test. NS below the threshold: %q, want it untouched", got)
	}
	if n := tcpNSQueries(h); n != 0 {
		t.Fatalf("test.'s server got %d TCP queries for bank.test. NS, want none", n)
	}
	if n := pressureWarnings(f.logs); n != 0 {
		t.Fatalf("%d pressure warnings, want none", n)
	}
	if s := f.r.Stats(); s.ZonePressureEscalations != 0 || s.ZoneUnwantedReplies != 8 {
		t.Fatalf("stats %+v", s)
	}
}

func TestZoneAwaitingRevalidationTakesNoDelegationFromUDP(t *testing.T) {
	h := pressureWorld(t)
	sn := spraying(h)
	sn.noTCP = map[netip.Addr]bool{netip.MustParseAddr(testTLDServer): true}
	f := setUpPoisonedBank(t, h, sn, 4)
	for i := range 2 {
		f.ask(t, fmt.Sprintf("h%d.bank.test.", i))
	}
	if s := f.r.Stats(); s.ZonePressureEscalations != 1 || s.RevalidationsFailed != 1 {
		t.Fatalf("stats %+v, want one escalation whose re-validation failed", s)
	}
	// The poisoned NS set expires; test.'s referral over UDP must not
	// bring a delegation back while the re-validation is owed.
	f.r.cache.Delete(cache.NewKey("bank.test.", dns.TypeNS, dns.ClassINET))
	sn.per = 0
	if got := f.ask(t, "later.bank.test."); got != "later.bank.test. A 192.0.2.80" {
		t.Fatalf("answer %q", got)
	}
	if got := f.bankNS(t); got != "" {
		t.Fatalf("bank.test. NS %q cached from UDP while its re-validation is owed", got)
	}
}
