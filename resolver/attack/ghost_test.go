package attack

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// Ghost-domain timeline, compressed to seconds as in the threat model:
// the parent's delegation lives 5 s, is revoked at t=10 s, and by t=16 s
// (revocation + TTL + a second of slack) every answer must be NXDOMAIN;
// after t=17 s the revoked servers must see no query at all.
const (
	ghostParentTTL = 5
	ghostRevokeAt  = 10 * time.Second
	ghostNXAfter   = 16 * time.Second
	ghostQuietFrom = 17 * time.Second
	ghostEnd       = 22 * time.Second
	ghostEvery     = 200 * time.Millisecond
)

// ghostEnv delegates ghost.test. from test. with NS and glue TTL 5 s to
// the attacker's server on 127.<net>.5.1, which also delegates
// deep.ghost.test. (TTL one day) to 127.<net>.5.2. Both keep answering
// after the revocation, and the ghost server appends a renamed NS set for
// ghost.test. (TTL one day, with glue) to every answer: the Phoenix and
// ghost-domain tricks of refreshing a delegation from the child side.
func ghostEnv(t *testing.T, net byte) (*env, *simnet.Zone, []*simnet.Server) {
	t.Helper()
	needRoot(t)
	g1, g2 := addr(net, 5, 1), addr(net, 5, 2)
	h := simnet.NewHierarchy()
	h.Zone(".", []string{addr(net, 0, 1)}, "")
	tld := h.Zone("test.", []string{addr(net, 0, 2)}, fmt.Sprintf("ghost %d NS ns1.ghost\nns1.ghost %d A %s\n", ghostParentTTL, ghostParentTTL, g1))
	h.Zone("bank.test.", []string{addr(net, 1, 1)}, "www 300 A "+genuineAddr+"\n")
	ghost, err := simnet.ParseZone("ghost.test.", fmt.Sprintf(`@ 86400 SOA ns1 h 1 3600 900 604800 300
@ 86400 NS ns1
ns1 86400 A %s
deep 86400 NS ns.deep
ns.deep 86400 A %s
* 300 A %s
`, g1, g2, genuineAddr))
	if err != nil {
		t.Fatal(err)
	}
	deep, err := simnet.ParseZone("deep.ghost.test.", fmt.Sprintf("@ 86400 SOA ns h 1 3600 900 604800 300\n@ 86400 NS ns\nns 86400 A %s\n* 300 A %s\n", g2, genuineAddr))
	if err != nil {
		t.Fatal(err)
	}
	s1 := h.Net.AddServer(netip.MustParseAddr(g1), ghost)
	s2 := h.Net.AddServer(netip.MustParseAddr(g2), deep)
	e := startEnv(t, h, net, transport.Config{}, transport.SocketConfig{}, nil)
	k := 0
	honestly(s1, func(q *dns.Msg, tcp bool, m *dns.Msg) *dns.Msg {
		if m == nil || len(m.Answer) == 0 {
			return m
		}
		k++
		ns := fmt.Sprintf("ns%d.ghost.test.", 100+k%50)
		m.Ns = append(m.Ns, rr("ghost.test. 86400 IN NS "+ns))
		m.Extra = append(m.Extra, rr(ns+" 86400 IN A "+g1))
		return m
	})
	return e, tld, []*simnet.Server{s1, s2}
}

// ghostTally counts one variant's answers in the three phases.
type ghostTally struct{ early, earlyOK, late, lateNX, quiet int }

// TestRevokedGhostDomainDiesWithinTheParentTTL is BAIL-5 live: the
// attacker keeps asking names under the revoked domain, alternately
// directly (renamed child NS sets, the ghost-domain trick) and under its
// deep sub-delegation (the Phoenix trick), every 200 ms. The first must
// die within the parent's TTL, and so must the second: a delegation never
// outlives the one it was learnt through.
func TestRevokedGhostDomainDiesWithinTheParentTTL(t *testing.T) {
	e, tld, ghosts := ghostEnv(t, 112)
	start := time.Now()
	var v [2]ghostTally // [0] renamed NS, [1] deep sub-delegation
	var quietMark [2]int
	marked, revoked := false, false
	sent := 0
	for i := 0; i < 300 && time.Since(start) < ghostEnd; i++ {
		if next := start.Add(time.Duration(i) * ghostEvery); time.Until(next) > 0 {
			time.Sleep(time.Until(next))
		}
		at := time.Since(start)
		if !revoked && at >= ghostRevokeAt {
			tld.Remove("ghost.test.", dns.TypeNS)
			tld.Remove("ns1.ghost.test.", dns.TypeA)
			revoked = true
		}
		if !marked && at >= ghostQuietFrom {
			quietMark = [2]int{ghosts[0].QueryCount(), ghosts[1].QueryCount()}
			marked = true
		}
		name := fmt.Sprintf("q%d.ghost.test.", i)
		if i%2 == 1 {
			name = fmt.Sprintf("q%d.deep.ghost.test.", i)
		}
		r := e.ask(name, dns.TypeA, 3*time.Second)
		sent++
		g := &v[i%2]
		switch {
		case at < ghostRevokeAt:
			g.early++
			if len(addrs(r)) > 0 {
				g.earlyOK++
			}
		case at >= ghostNXAfter:
			g.late++
			if r != nil && r.Rcode == dns.RcodeNameError {
				g.lateNX++
			}
		}
	}
	for i, s := range ghosts {
		v[i].quiet = s.QueryCount() - quietMark[i]
	}
	for i, variant := range []string{"renamed-ns", "deep-sub-delegation"} {
		g := v[i]
		t.Logf("RESULT BAIL-5 live %s: queries=%d resolved_before_revocation=%d/%d nxdomain_after_16s=%d/%d queries_to_revoked_server_after_17s=%d",
			variant, g.early+g.late, g.earlyOK, g.early, g.lateNX, g.late, g.quiet)
	}
	t.Logf("RESULT BAIL-5 live total client queries=%d", sent)
	ns := v[0]
	if ns.earlyOK != ns.early || v[1].earlyOK != v[1].early {
		t.Errorf("the domain did not resolve before revocation: %+v", v)
	}
	if ns.late == 0 || ns.lateNX*100 < 99*ns.late || ns.quiet != 0 {
		t.Errorf("renamed child NS kept the revoked domain alive: %+v", ns)
	}
	if d := v[1]; d.late == 0 || d.lateNX*100 < 99*d.late || d.quiet != 0 {
		t.Errorf("a sub-delegation learnt below ghost.test outlived its revoked parent: NXDOMAIN %d of %d after t=16 s, %d queries to its server after t=17 s", d.lateNX, d.late, d.quiet)
	}
}
