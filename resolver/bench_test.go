package resolver

import (
	"net/netip"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/miekg/dns"
)

// BenchmarkColdResolve measures one client question answered from an empty
// cache over the in-process hierarchy: the iterator's whole cold path
// (priming, two referrals, the answer) without socket costs. Building the
// resolver is outside the timing.
func BenchmarkColdResolve(b *testing.B) {
	h := world(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		f := newFixture(b, h, nil)
		b.StartTimer()
		if m := f.ask(b, "www.example.test.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			b.Fatalf("cold answer: %v", m)
		}
	}
}

// BenchmarkColdResolveSigned is the same over a signed hierarchy with the
// validator on: three DS/DNSKEY links and the answer's signature, the path
// bench/run's dnssec-cold-deleg exercises per delegated zone.
func BenchmarkColdResolveSigned(b *testing.B) {
	w := buildE2E(b, leafSpec{signer: "go", alg: dns.ECDSAP256SHA256, mode: signModes[0], win: validWindow})
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		e := w.resolver(b)
		b.StartTimer()
		if m := e.ask(b, "www.example.test.", dns.TypeA, askFlags{do: true}); !m.AuthenticatedData {
			b.Fatalf("signed cold answer not secure: %v", m)
		}
	}
}

// BenchmarkColdResolveSignedConcurrent asks five names of one cold signed
// zone at once, as dnsperf does in bench/run's dnssec-cold-deleg, and
// reports the signature verifications that took: concurrent questions
// should share one validation of the zone's keys.
func BenchmarkColdResolveSignedConcurrent(b *testing.B) {
	w := buildE2E(b, leafSpec{signer: "go", alg: dns.ECDSAP256SHA256, mode: signModes[0], win: validWindow})
	names := []string{"www.example.test.", "a.wild.example.test.", "b.wild.example.test.", "leaf.ent.example.test.", "c.wild.example.test."}
	b.ReportAllocs()
	var verifications uint64
	for b.Loop() {
		b.StopTimer()
		e := w.resolver(b)
		b.StartTimer()
		var wg sync.WaitGroup
		for _, name := range names {
			wg.Go(func() {
				if m := e.ask(b, name, dns.TypeA, askFlags{do: true}); !m.AuthenticatedData {
					b.Errorf("%s: not secure: %v", name, m)
				}
			})
		}
		wg.Wait()
		verifications += e.v.Stats().Verifications
	}
	b.ReportMetric(float64(verifications)/float64(b.N), "verifications/op")
}

// BenchmarkColdName asks a new name of a zone whose delegation is already
// cached: one upstream exchange per question, the shape of bench/run's
// cold-flat, without socket costs.
func BenchmarkColdName(b *testing.B) {
	b.Run("minimal", func(b *testing.B) { benchColdName(b, false) })
	b.Run("ns-in-authority", func(b *testing.B) { benchColdName(b, true) })
}

// benchColdName asks a new name of a warm zone each time. With withNS the
// zone's server answers as NSD does, its NS set in authority and their
// addresses in additional, which every answer repeats.
func benchColdName(b *testing.B, withNS bool) {
	h := simnet.NewHierarchy(simnet.InstantTimeouts())
	h.Zone(".", []string{"127.53.0.1"}, "")
	h.Zone("test.", []string{"127.53.0.2"}, "")
	h.Zone("example.test.", []string{"127.53.1.1"}, "* 300 A 192.0.2.1\n")
	if withNS {
		ns, glue := rrOf("example.test. 3600 IN NS ns1.example.test."), rrOf("ns1.example.test. 3600 IN A 127.53.1.1")
		h.Net.Server(netip.MustParseAddr("127.53.1.1")).Update(func(k *simnet.Knobs) {
			k.Handler = func(q *dns.Msg, _ bool) *dns.Msg {
				m := new(dns.Msg).SetReply(q)
				m.Authoritative = true
				a := rrOf("x.example.test. 300 IN A 192.0.2.1")
				a.Header().Name = q.Question[0].Name
				m.Answer, m.Ns, m.Extra = []dns.RR{a}, []dns.RR{ns}, []dns.RR{glue}
				return m
			}
		})
	}
	f := newFixture(b, h, nil)
	f.ask(b, "warm.example.test.", dns.TypeA)
	b.ReportAllocs()
	gc0 := gcCPU()
	i := 0
	for b.Loop() {
		i++
		if m := f.ask(b, "h"+strconv.Itoa(i)+".example.test.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			b.Fatalf("cold name: %v", m)
		}
	}
	// The runtime updates its CPU classes at each collection: a run too
	// short for one has nothing to report.
	if gc1 := gcCPU(); gc1[1] > gc0[1] {
		b.ReportMetric((gc1[0]-gc0[0])/(gc1[1]-gc0[1])*100, "gc-cpu-%")
	}
}

// gcCPU is the CPU seconds the garbage collector and the whole process
// have used so far, as the runtime estimates them: GOGC's cost is the
// first's share of the second.
func gcCPU() [2]float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}}
	metrics.Read(s)
	return [2]float64{s[0].Value.Float64(), s[1].Value.Float64() - s[2].Value.Float64()}
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
