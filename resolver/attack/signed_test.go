package attack

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/bulwark-dns/bulwark/resolver/transport"
	"github.com/bulwark-dns/bulwark/validate"
)

// signingKey is one combined (CSK) P-256 key, made once per test binary.
type signingKey = simnet.Key

func keyFor(t *testing.T, owner string) signingKey {
	t.Helper()
	k, err := simnet.CachedKey("attack", owner, dns.ECDSAP256SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signText signs zone text with simnet.Sign (NSEC) for a window around
// the wall clock, which the suite's resolvers run on.
func signText(t *testing.T, origin, text string, k signingKey) string {
	t.Helper()
	z, err := simnet.ParseZone(origin, text)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	opts := simnet.SignOptions{Inception: uint32(now.Add(-time.Hour).Unix()), Expiration: uint32(now.Add(24 * time.Hour).Unix())}
	if err := simnet.Sign(z, k.RR, k.Priv, opts); err != nil {
		t.Fatalf("sign %s: %v", origin, err)
	}
	var b strings.Builder
	for _, rr := range z.Records() {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// signedHierarchy builds a signed root, test. and bank.test. (bankBody is
// added to bank's apex records) on 127.<net>/16, with an unsigned
// evil.test. delegated from test., and returns it with the root's DS as
// the trust anchor.
func signedHierarchy(t *testing.T, net byte, bankBody string) (*simnet.Hierarchy, dns.RR) {
	t.Helper()
	bankKey, tldKey, rootKey := keyFor(t, "bank.test."), keyFor(t, "test."), keyFor(t, ".")
	bank := signText(t, "bank.test.", fmt.Sprintf(`$ORIGIN bank.test.
@    3600 IN SOA ns1 hostmaster 1 3600 900 604800 300
@    3600 IN NS  ns1
ns1  3600 IN A   %s
www   300 IN A   %s
%s`, addr(net, 1, 1), genuineAddr, bankBody), bankKey)
	tld := signText(t, "test.", fmt.Sprintf(`$ORIGIN test.
@        3600 IN SOA ns.nic hostmaster 1 3600 900 604800 300
@        3600 IN NS  ns.nic
ns.nic   3600 IN A   %s
bank     3600 IN NS  ns1.bank
ns1.bank 3600 IN A   %s
evil     3600 IN NS  ns1.evil
ns1.evil 3600 IN A   %s
%s
`, addr(net, 0, 2), addr(net, 1, 1), addr(net, 2, 1), bankKey.RR.ToDS(dns.SHA256)), tldKey)
	root := signText(t, ".", fmt.Sprintf(`
.                86400 IN SOA a.root-servers. hostmaster.root-servers. 1 3600 900 604800 300
.                86400 IN NS  a.root-servers.
a.root-servers.  86400 IN A   %s
test.            86400 IN NS  ns.nic.test.
ns.nic.test.     86400 IN A   %s
%s
`, addr(net, 0, 1), addr(net, 0, 2), tldKey.RR.ToDS(dns.SHA256)), rootKey)
	h := simnet.NewHierarchy()
	h.SignedZone(".", []string{addr(net, 0, 1)}, root)
	h.SignedZone("test.", []string{addr(net, 0, 2)}, tld)
	h.SignedZone("bank.test.", []string{addr(net, 1, 1)}, bank)
	h.ZoneWithNS("evil.test.", map[string][]string{"ns1.evil.test.": {addr(net, 2, 1)}}, "www 300 A "+forgedAddr+"\n")
	return h, rootKey.RR.ToDS(dns.SHA256)
}

// newSignedEnv starts a validating resolver, anchored at the test root,
// over the signed hierarchy.
func newSignedEnv(t *testing.T, net byte, bankBody string, tcfg transport.Config) *env {
	t.Helper()
	needRoot(t)
	h, anchor := signedHierarchy(t, net, bankBody)
	v, err := validate.New(validate.Config{Clock: wallClock{}, Anchors: []dns.RR{anchor}})
	if err != nil {
		t.Fatal(err)
	}
	return startEnv(t, h, net, tcfg, transport.SocketConfig{}, v)
}

// askAD asks as a validating stub does (AD=1), so a secure answer says so.
func (e *env) askAD(name string, qtype uint16, timeout time.Duration) *dns.Msg {
	req := new(dns.Msg)
	req.SetQuestion(dns.Fqdn(name), qtype)
	req.RecursionDesired, req.AuthenticatedData = true, true
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return e.r.Answer(ctx, req)
}

// honestly lets edit replace s's genuine reply: a man in the middle in
// front of s.
func honestly(s *simnet.Server, edit func(q *dns.Msg, tcp bool, honest *dns.Msg) *dns.Msg) {
	s.Update(func(k *simnet.Knobs) {
		k.Handler = func(q *dns.Msg, tcp bool) *dns.Msg { return edit(q, tcp, s.Honest(q, tcp)) }
	})
}
