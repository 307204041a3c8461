package resolver

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
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
