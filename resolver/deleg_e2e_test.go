package resolver

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
)

// Addresses of the delegation benchmark's servers.
const (
	delegTLDAddr   = e2eTLDAddr
	delegChildAddr = "127.57.0.4"
)

// delegWorld is bench/run's dnssec-cold-deleg in memory: a signed root,
// test. signed with NSEC3 (no opt-out, as ldns-signzone -n) holding
// zones unsigned delegations z0.test. ... to one server, each zone with
// the names h0 ... h4.
func delegWorld(t testing.TB, zones int) *e2eWorld {
	t.Helper()
	var b strings.Builder
	b.WriteString("$ORIGIN test.\n@ 3600 IN SOA ns.nic hostmaster 1 3600 900 604800 300\n@ 3600 IN NS ns.nic\n")
	fmt.Fprintf(&b, "ns.nic 3600 IN A %s\ndz 3600 IN A %s\n", delegTLDAddr, delegChildAddr)
	for i := range zones {
		fmt.Fprintf(&b, "z%d 3600 IN NS dz\n", i)
	}
	tldKey := goKeyFor(t, "tld", "test.", dns.ECDSAP256SHA256)
	tld := signGo(t, "test.", b.String(), tldKey, signModes[1], validWindow)
	root, rootKey := signedRoot(t, dns.ECDSAP256SHA256, tldKey)
	h := simnet.NewHierarchy(simnet.InstantTimeouts())
	h.SignedZone(".", []string{e2eRootAddr}, root)
	h.SignedZone("test.", []string{delegTLDAddr}, tld)
	for i := range zones {
		var names strings.Builder
		for n := range 5 {
			fmt.Fprintf(&names, "h%d 300 A 10.200.%d.%d\n", n, i/256, i%256)
		}
		h.ZoneWithNS(fmt.Sprintf("z%d.test.", i), map[string][]string{"dz.test.": {delegChildAddr}}, names.String())
	}
	return &e2eWorld{h: h, anchors: []dns.RR{rootKey.RR.ToDS(dns.SHA256)}}
}

// askZone asks the five names of zone z<i>.test. concurrently; each must
// be answered without AD (the zone is provably unsigned).
func askZone(t testing.TB, e *e2eResolver, i int) {
	var wg sync.WaitGroup
	for n := range 5 {
		wg.Go(func() {
			name := fmt.Sprintf("h%d.z%d.test.", n, i)
			if m := e.ask(t, name, dns.TypeA, askFlags{do: true}); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.AuthenticatedData {
				t.Errorf("%s: want an insecure answer, got %v", name, m)
			}
		})
	}
	wg.Wait()
}

// flipReferralSigs breaks the RRSIGs of the authority section of replies
// to NS questions, leaving the DS answers honest: a referral whose no-DS
// proof does not verify.
func flipReferralSigs(q *dns.Msg, honest func(*dns.Msg) *dns.Msg) *dns.Msg {
	m := honest(q)
	if m == nil || q.Question[0].Qtype != dns.TypeNS {
		return m
	}
	for i, rr := range m.Ns {
		if sig, ok := rr.(*dns.RRSIG); ok {
			m.Ns[i] = flipSignature(dns.Copy(sig).(*dns.RRSIG))
		}
	}
	return m
}

// stripReferralDenial removes the denial records of replies to NS
// questions: a referral without its no-DS proof (minimal responses).
func stripReferralDenial(q *dns.Msg, honest func(*dns.Msg) *dns.Msg) *dns.Msg {
	m := honest(q)
	if m == nil || q.Question[0].Qtype != dns.TypeNS {
		return m
	}
	m.Ns = dropRRs(m.Ns, func(rr dns.RR) bool {
		t := coveredOrType(rr)
		return t == dns.TypeNSEC || t == dns.TypeNSEC3
	})
	return m
}

// dsQueries counts the DS questions the server at addr received.
func dsQueries(h *simnet.Hierarchy, addr string) int {
	n := 0
	for _, q := range h.Server(addr).Queries() {
		if q.Type == dns.TypeDS {
			n++
		}
	}
	return n
}

// TestUnsignedDelegationIsProvenByItsReferral: the referral that answers
// the minimised NS question carries the parent's no-DS proof; the
// validator checks it once for the zone's five concurrent names, so the
// zone costs no DS query and one verification. A referral whose proof
// does not verify, or has none, costs the DS query, and the answers are
// the same.
func TestUnsignedDelegationIsProvenByItsReferral(t *testing.T) {
	cases := []struct {
		name          string
		edit          func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg
		ds            int
		verifications uint64
	}{
		{name: "honest referral", ds: 0, verifications: 1},
		{name: "proof that does not verify", edit: flipReferralSigs, ds: 1, verifications: 3},
		{name: "no proof in the referral", edit: stripReferralDenial, ds: 1, verifications: 2},
	}
	w := delegWorld(t, len(cases)+1)
	e := w.resolver(t)
	e.ask(t, "ns.nic.test.", dns.TypeA, askFlags{do: true})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.edit != nil {
				tamper(t, w.h, delegTLDAddr, c.edit)
				defer w.h.Server(delegTLDAddr).Update(func(k *simnet.Knobs) { k.Handler = nil })
			}
			ds, st := dsQueries(w.h, delegTLDAddr), e.v.Stats()
			askZone(t, e, i)
			if got := dsQueries(w.h, delegTLDAddr) - ds; got != c.ds {
				t.Errorf("%d DS queries for the zone, want %d", got, c.ds)
			}
			if got := e.v.Stats().Verifications - st.Verifications; got != c.verifications {
				t.Errorf("%d signature verifications for the zone, want %d", got, c.verifications)
			}
		})
	}
}

// TestEachNewZoneIsAskedForOnceWhenItsNamesComeTogether: the five names
// of a new zone, asked at once, look for its cut with the same minimised
// question. One of them asks and stores the referral before the others go
// on, so that even a name that comes after the reply, while the referral
// is being stored, finds the cut in the cache instead of asking again.
func TestEachNewZoneIsAskedForOnceWhenItsNamesComeTogether(t *testing.T) {
	const zones = 60
	w := delegWorld(t, zones)
	e := w.resolver(t)
	e.ask(t, "ns.nic.test.", dns.TypeA, askFlags{do: true})
	tld := w.h.Server(delegTLDAddr)
	tld.Reset()
	for i := range zones {
		askZone(t, e, i)
	}
	asked := map[string]int{}
	for _, q := range tld.Queries() {
		asked[strings.ToLower(q.Name)+" "+dns.TypeToString[q.Type]]++
	}
	for i := range zones {
		if n := asked[fmt.Sprintf("z%d.test. NS", i)]; n != 1 {
			t.Errorf("z%d.test. was asked for %d times, want once", i, n)
		}
	}
	if len(asked) != zones {
		t.Errorf("the TLD was asked %d questions, want the %d zones' NS: %v", len(asked), zones, asked)
	}
}

// TestNamesThatWaitOnACheckingDisabledQuerySpareTheDSQuery: a CD query
// that asks a new zone's minimised question first still hands the
// referral's no-DS proof to the validator, so the validating names that
// waited on it find the zone unsigned without asking for its DS.
func TestNamesThatWaitOnACheckingDisabledQuerySpareTheDSQuery(t *testing.T) {
	w := delegWorld(t, 1)
	e := w.resolver(t)
	e.ask(t, "ns.nic.test.", dns.TypeA, askFlags{do: true})
	tld := w.h.Server(delegTLDAddr)
	tld.Reset()
	tld.Update(func(k *simnet.Knobs) {
		k.Handler = func(q *dns.Msg, tcp bool) *dns.Msg {
			time.Sleep(50 * time.Millisecond) // until the validating names wait on the CD one
			return tld.Honest(q, tcp)
		}
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		if m := e.ask(t, "h0.z0.test.", dns.TypeA, askFlags{do: true, cd: true}); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Errorf("h0.z0.test. with CD: %v", m)
		}
	})
	time.Sleep(10 * time.Millisecond)
	for n := 1; n < 5; n++ {
		wg.Go(func() {
			name := fmt.Sprintf("h%d.z0.test.", n)
			if m := e.ask(t, name, dns.TypeA, askFlags{do: true}); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.AuthenticatedData {
				t.Errorf("%s: want an insecure answer, got %v", name, m)
			}
		})
	}
	wg.Wait()
	if ds := dsQueries(w.h, delegTLDAddr); ds != 0 {
		t.Errorf("%d DS queries for z0.test., want 0", ds)
	}
	if n := tld.QueryCount(); n != 1 {
		t.Errorf("the TLD was asked %d times, want once", n)
	}
}
