package resolver

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver/simnet"
)

func TestShapeAuthorityAndAdditionalSections(t *testing.T) {
	nsSet := rrs(t, "bank.test. 3600 NS ns.bank.test.")
	nsSig := rrs(t, "bank.test. 3600 RRSIG NS 8 2 3600 20300101000000 20200101000000 1 bank.test. AAAA")
	glue := rrs(t, "ns.bank.test. 3600 A 192.0.2.1")
	glueSig := rrs(t, "ns.bank.test. 3600 RRSIG A 8 3 3600 20300101000000 20200101000000 1 bank.test. AAAA")
	tests := []struct {
		name          string
		minimal, nsAd bool
		qtype         uint16
		res           result
		ns, extra     string
	}{
		{
			name: "MinimalAnswerHasNoSections", minimal: true, qtype: dns.TypeA,
			res: result{answer: rrs(t, "www.bank.test. 300 A 192.0.2.9"), authNS: nsSet, glue: glue, security: cache.Insecure},
		},
		{
			name: "FullAnswerShowsNSAndGlue", qtype: dns.TypeA,
			res: result{answer: rrs(t, "www.bank.test. 300 A 192.0.2.9"), authNS: nsSet, glue: glue, security: cache.Insecure},
			ns:  "bank.test./NS", extra: "ns.bank.test./A",
		},
		{
			name: "SecureAnswerDropsUnsignedNS", qtype: dns.TypeA,
			res:   result{answer: rrs(t, "www.bank.test. 300 A 192.0.2.9"), authNS: nsSet, glue: append(glue, glueSig...), security: cache.Secure},
			extra: "ns.bank.test./A ns.bank.test./RRSIG",
		},
		{
			name: "SecureAnswerKeepsSignedNSDropsUnsignedGlue", qtype: dns.TypeA,
			res: result{answer: rrs(t, "www.bank.test. 300 A 192.0.2.9"), authNS: append(nsSet, nsSig...), glue: glue, security: cache.Secure},
			ns:  "bank.test./NS bank.test./RRSIG",
		},
		{
			name: "MinimalNSAnswerWithoutOptionHasNoAddresses", minimal: true, qtype: dns.TypeNS,
			res: result{answer: nsSet, glue: glue, security: cache.Insecure},
		},
		{
			name: "MinimalNSAnswerWithOptionKeepsAddresses", minimal: true, nsAd: true, qtype: dns.TypeNS,
			res:   result{answer: nsSet, glue: glue, security: cache.Insecure},
			extra: "ns.bank.test./A",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Resolver{cfg: Config{MinimalResponses: tc.minimal, NSAnswerAddresses: tc.nsAd}}
			req := new(dns.Msg)
			req.SetQuestion("bank.test.", tc.qtype)
			req.SetEdns0(1232, true)
			resp := new(dns.Msg)
			resp.SetReply(req)
			r.shape(resp, req, &tc.res)
			if got := names(resp.Ns); got != tc.ns {
				t.Errorf("authority = %q, want %q", got, tc.ns)
			}
			if got := names(resp.Extra); got != tc.extra {
				t.Errorf("additional = %q, want %q", got, tc.extra)
			}
		})
	}
}

func TestAddressAnswerCannotOutliveTheSameGlue(t *testing.T) {
	tests := []struct {
		name     string
		cached   string
		rank     cache.Rank
		after    time.Duration // from the glue's caching to the answer's
		answer   string
		wantTTLs uint32
	}{
		{name: "SameAddressKeepsGlueExpiry", cached: "ns.bank.test. 4 A 192.0.2.1", rank: cache.RankGlue, answer: "ns.bank.test. 7200 A 192.0.2.1", wantTTLs: 4},
		{name: "BoundByWhatIsLeftOfTheGlue", cached: "ns.bank.test. 4 A 192.0.2.1", rank: cache.RankGlue, after: 3 * time.Second, answer: "ns.bank.test. 7200 A 192.0.2.1", wantTTLs: 1},
		{name: "OtherAddressIsStoredWhole", cached: "ns.bank.test. 4 A 192.0.2.1", rank: cache.RankGlue, answer: "ns.bank.test. 7200 A 192.0.2.7", wantTTLs: 7200},
		{name: "AnswerAboveGlueIsNotBound", cached: "ns.bank.test. 4 A 192.0.2.1", rank: cache.RankAnswerAA, answer: "ns.bank.test. 7200 A 192.0.2.1", wantTTLs: 7200},
		{name: "OtherTypesAreNotBound", cached: "ns.bank.test. 4 TXT \"x\"", rank: cache.RankGlue, answer: "ns.bank.test. 7200 TXT \"x\"", wantTTLs: 7200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := simnet.NewClock(time.Unix(1_800_000_000, 0))
			r := &Resolver{clock: clock, cache: cache.New(cache.Config{})}
			old := rrs(t, tc.cached)
			r.cache.Put(cache.NewKey(old[0].Header().Name, old[0].Header().Rrtype, dns.ClassINET), cache.Entry{RRs: old, Rank: tc.rank}, clock.Now())
			set := rrs(t, tc.answer)
			clock.Advance(tc.after)
			got := r.glueBound(set, clock.Now())
			if ttl := got[0].Header().Ttl; ttl != tc.wantTTLs {
				t.Errorf("stored TTL = %d, want %d", ttl, tc.wantTTLs)
			}
			if set[0].Header().Ttl != 7200 {
				t.Errorf("the answer's own TTL changed to %d", set[0].Header().Ttl)
			}
		})
	}
}
