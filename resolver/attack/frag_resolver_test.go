package attack

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

const (
	// fragRootNS is the one root server's name; its address is authIP.
	fragRootNS = "ns.test."
	// fragZone holds the names the attacker makes the resolver ask.
	fragZone = "bank.test."
	// fragAnswerAddrs is the size of every answer's A RRset: 1,067 bytes
	// of reply, within the 1232 the resolver advertises, so the server
	// needs no misbehaviour; only the path MTU of 576 fragments it, and
	// the second fragment holds the last 32 addresses.
	fragAnswerAddrs = 64
)

// TestFragmentForgeryDoesNotPoisonResolver is FRAG-2 for the whole
// resolver: resolver.New as the daemon wires it, its transport opening
// sockets in the resolver's namespace, iterating from a root server in
// the other namespace. That server is authoritative for the root zone and
// everything under it (no delegation to follow: the iterator still primes,
// minimises and scrubs as it does on the Internet), and answers an A
// question under bank.test with 64 in-zone addresses, so the forged
// records are the answer RRset itself, which the scrubber keeps. Before
// each attempt the attacker asks the server's IPID counter (in the real
// attack: by making the server fragment a reply to the attacker) and
// plants forged last fragments for the next plantAhead IPIDs, rewriting
// every address in them to 6.6.6.6 with the UDP checksum kept. Each attempt
// asks a fresh name the attacker chose, so the cache cannot answer it.
// The zone is unsigned and the resolver does not validate: this is the
// fragment defense alone, without DNSSEC behind it.
func TestFragmentForgeryDoesNotPoisonResolver(t *testing.T) {
	const attempts, plantAhead = 50, 4
	for _, run := range fragRuns() {
		t.Run(run.mode, func(t *testing.T) {
			tl := attackFragResolver(t, run.tcfg, attempts, plantAhead)
			t.Logf("RESULT FRAG-2 resolver %s: %v", run.mode, tl)
			if tl.failed > 0 {
				t.Errorf("%d client queries failed: %v", tl.failed, tl)
			}
			if run.on && (tl.poisoned > 0 || tl.poisonedCache > 0 || tl.genuine != attempts || tl.dropped != attempts || tl.tcp < attempts) {
				t.Errorf("defense on: want 0 poisoned answers and cache entries, every reassembled reply dropped and re-asked over TCP: %v", tl)
			}
			if !run.on && (tl.poisoned < attempts-2 || tl.poisonedCache < attempts-2) {
				t.Errorf("no teeth: without the defense the IPID is known, so (nearly) every answer and cache entry must be poisoned: %v", tl)
			}
		})
	}
}

// fragResolverTally is what one whole-resolver FRAG-2 run measured.
type fragResolverTally struct {
	attempts, poisoned, poisonedCache, genuine, failed int
	forged, rewritten                                  int
	reasmOKs                                           int64
	dropped, tcp, udp                                  uint64
}

func (tl fragResolverTally) String() string {
	return fmt.Sprintf("attempts=%d forged_fragments=%d (rewriting %d of %d answer addresses each) poisoned_answers=%d poisoned_cache=%d genuine=%d failed=%d reassembled_dropped=%d upstream_udp=%d upstream_tcp=%d ReasmOKs=+%d",
		tl.attempts, tl.forged, tl.rewritten, fragAnswerAddrs, tl.poisoned, tl.poisonedCache, tl.genuine, tl.failed, tl.dropped, tl.udp, tl.tcp, tl.reasmOKs)
}

// attackFragResolver builds the namespace pair, the root server and a
// resolver whose transport has tcfg, and runs the attempts within 20 s.
func attackFragResolver(t *testing.T, tcfg transport.Config, attempts, plantAhead int) fragResolverTally {
	t.Helper()
	p := newNSPair(t, fragMTU)
	auth := startFragAuth(t, p, 4*attempts, rootReply)
	ex := transport.NewExchanger(nsNetwork{th: p.r, inner: transport.NewSocketNetwork(transport.SocketConfig{})}, tcfg, nil)
	t.Cleanup(ex.Close)
	r, c := fragResolver(t, ex)
	_, oks0, err := p.r.reasm()
	if err != nil {
		t.Fatal(err)
	}
	forger, err := newFragSender(p.a, attempts*plantAhead)
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	tl := fragResolverTally{attempts: attempts}
	end := time.Now().Add(20 * time.Second)
	for k := range attempts {
		name := fmt.Sprintf("a%03d.%s", k, fragZone)
		tl.rewritten = plant(t, forger, name, rootReply, int(auth.next.Load()), plantAhead)
		tl.ask(r, c, name, end)
	}
	_, oks1, err := p.r.reasm()
	if err != nil {
		t.Fatal(err)
	}
	st := ex.Stats()
	tl.forged, tl.reasmOKs = int(forger.sent.Load()), oks1-oks0
	tl.dropped, tl.tcp, tl.udp = st.ReassembledDropped, st.QueriesTCP, st.QueriesUDP
	return tl
}

// fragResolver is the daemon's resolver (resolver.New with the default
// configuration) with the test's root server as its hints, IPv4 only (the
// namespaces have no IPv6 route), and no validator: the zone is unsigned.
func fragResolver(t *testing.T, ex transport.Exchanger) (*resolver.Resolver, *cache.Cache) {
	t.Helper()
	cfg := resolver.DefaultConfig()
	cfg.RootHints = []dns.RR{rr(". 86400 IN NS " + fragRootNS), rr(fragRootNS + " 86400 IN A " + authIP.String())}
	cfg.DoIPv6 = false
	c := cache.New(cfg.CacheConfig(0))
	core, _ := observer.New(zapcore.WarnLevel)
	r, err := resolver.New(cfg, resolver.Deps{Exchanger: ex, Cache: c, Logger: zap.New(core), Clock: wallClock{}})
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

// ask sends one client query for name and judges the answer and what the
// cache then holds for it.
func (tl *fragResolverTally) ask(r *resolver.Resolver, c *cache.Cache, name string, end time.Time) {
	if time.Now().After(end) {
		tl.failed++
		return
	}
	req := new(dns.Msg)
	req.SetQuestion(name, dns.TypeA)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	resp := r.Answer(ctx, req)
	cancel()
	switch {
	case resp == nil || resp.Rcode != dns.RcodeSuccess || len(addrs(resp)) == 0:
		tl.failed++
	case isForged(resp):
		tl.poisoned++
	default:
		tl.genuine++
	}
	if en, ok := c.Get(cache.NewKey(name, dns.TypeA, dns.ClassINET), time.Now()); ok && carriesAddr(en.RRs, forgedAddr) {
		tl.poisonedCache++
	}
}

// carriesAddr reports whether rrs hold the A address addr.
func carriesAddr(rrs []dns.RR, addr string) bool {
	for _, x := range rrs {
		if a, ok := x.(*dns.A); ok && a.A.String() == addr {
			return true
		}
	}
	return false
}

// rootReply is the root server's answer: the root NS set and its glue,
// the server's own address, 64 addresses for any name directly under
// bank.test, no data for the other names on the way there, and NXDOMAIN
// for the rest. Owner names keep the question's letter case, so every
// byte after the question is the same whatever case the resolver chose
// (see fragReply).
func rootReply(q *dns.Msg) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative, r.Compress = true, true
	r.SetEdns0(1232, false)
	qn, qt := q.Question[0].Name, q.Question[0].Qtype
	name := strings.ToLower(qn)
	leaf := dns.IsSubDomain(fragZone, name) && dns.CountLabel(name) == dns.CountLabel(fragZone)+1
	switch {
	case name == "." && qt == dns.TypeNS:
		r.Answer = []dns.RR{&dns.NS{Hdr: fragHdr(qn, dns.TypeNS), Ns: fragRootNS}}
		r.Extra = append([]dns.RR{&dns.A{Hdr: fragHdr(fragRootNS, dns.TypeA), A: net.IP(authIP.AsSlice())}}, r.Extra...)
	case name == fragRootNS && qt == dns.TypeA:
		r.Answer = []dns.RR{&dns.A{Hdr: fragHdr(qn, dns.TypeA), A: net.IP(authIP.AsSlice())}}
	case leaf && qt == dns.TypeA:
		for i := range fragAnswerAddrs {
			r.Answer = append(r.Answer, &dns.A{Hdr: fragHdr(qn, dns.TypeA), A: net.IPv4(198, 51, 100, byte(i+1))})
		}
	case leaf || name == "." || dns.IsSubDomain(name, fragZone) || dns.IsSubDomain(name, fragRootNS):
		r.Ns = []dns.RR{rootSOA()}
	default:
		r.Rcode = dns.RcodeNameError
		r.Ns = []dns.RR{rootSOA()}
	}
	return r
}

func fragHdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 86400}
}

func rootSOA() dns.RR {
	return &dns.SOA{Hdr: fragHdr(".", dns.TypeSOA), Ns: fragRootNS, Mbox: "hostmaster.test.", Serial: 1, Refresh: 3600, Retry: 900, Expire: 604800, Minttl: 300}
}
