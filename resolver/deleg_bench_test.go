package resolver

import (
	"fmt"
	"strings"
	"sync"
	"testing"

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

// delegZones is the number of delegations of the benchmark's world: more
// than the validator remembers denial records per zone (128), so that
// the remembered set is full, as over bench/run's 2,000.
const delegZones = 320

// BenchmarkColdResolveSignedDelegations asks, per operation, the five
// names of a new unsigned zone below the NSEC3-signed test. at once, as
// dnsperf does in bench/run's dnssec-cold-deleg, with a resolver that
// already knows test.'s keys. It reports the signature verifications,
// NSEC3 hashes and upstream queries per name: one no-DS proof per zone
// should be verified once and shared by the zone's five names.
func BenchmarkColdResolveSignedDelegations(b *testing.B) {
	w := delegWorld(b, delegZones)
	var e *e2eResolver
	var spent benchWork
	zone := delegZones
	b.ReportAllocs()
	for b.Loop() {
		if zone == delegZones {
			b.StopTimer()
			spent.add(e, w, 1)
			e, zone = w.resolver(b), 0
			e.ask(b, "ns.nic.test.", dns.TypeA, askFlags{do: true})
			spent.add(e, w, -1)
			b.StartTimer()
		}
		askZone(b, e, zone)
		zone++
	}
	spent.add(e, w, 1)
	names := float64(5 * b.N)
	b.ReportMetric(float64(spent.verifications)/names, "verifications/name")
	b.ReportMetric(float64(spent.hashes)/names, "hashes/name")
	b.ReportMetric(float64(spent.queries)/names, "upstream/name")
}

// benchWork sums a benchmark's validator work and upstream queries over
// the resolvers it made, less what their warm-up cost.
type benchWork struct{ verifications, hashes, queries int64 }

// add adds sign times e's counters so far (nothing for a nil e).
func (s *benchWork) add(e *e2eResolver, w *e2eWorld, sign int64) {
	if e == nil {
		return
	}
	st := e.v.Stats()
	s.verifications += sign * int64(st.Verifications)
	s.hashes += sign * int64(st.NSEC3Hashes)
	s.queries += sign * int64(upstreamQueries(w.h))
}

// askZone asks the five names of zone z<i>.test. concurrently; each must
// be answered without AD (the zone is provably unsigned).
func askZone(b *testing.B, e *e2eResolver, i int) {
	var wg sync.WaitGroup
	for n := range 5 {
		wg.Go(func() {
			name := fmt.Sprintf("h%d.z%d.test.", n, i)
			if m := e.ask(b, name, dns.TypeA, askFlags{do: true}); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.AuthenticatedData {
				b.Errorf("%s: want an insecure answer, got %v", name, m)
			}
		})
	}
	wg.Wait()
}
