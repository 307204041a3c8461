package resolver

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// soaSerial returns the serial of the SOA in the authority section, or 0.
func soaSerial(m *dns.Msg) uint32 {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	return 0
}

func TestCachedNegativeAnswerShowsTheZonesLatestSOA(t *testing.T) {
	tests := []struct {
		name   string
		first  string
		second string
		qtype  uint16
		rcode  int
	}{
		{"NXDOMAIN", "nope1.example.test.", "nope2.example.test.", dns.TypeA, dns.RcodeNameError},
		{"NODATA", "www.example.test.", "mail.example.test.", dns.TypeTXT, dns.RcodeSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := world(t)
			f := newFixture(t, h, nil)
			if m := f.ask(t, tc.first, tc.qtype); m.Rcode != tc.rcode || soaSerial(m) != 1 {
				t.Fatalf("first: %s serial %d", dns.RcodeToString[m.Rcode], soaSerial(m))
			}
			z := h.ZoneAt("example.test.")
			z.Remove("example.test.", dns.TypeSOA)
			if err := z.Add(rrOf("example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 2 3600 900 604800 300")); err != nil {
				t.Fatal(err)
			}
			if m := f.ask(t, tc.second, tc.qtype); soaSerial(m) != 2 {
				t.Fatalf("second: serial %d, want the new 2", soaSerial(m))
			}
			asked := h.Server("127.53.1.1").QueryCount()
			m := f.ask(t, tc.first, tc.qtype)
			if m.Rcode != tc.rcode || soaSerial(m) != 2 {
				t.Errorf("first again: %s serial %d, want %s serial 2", dns.RcodeToString[m.Rcode], soaSerial(m), dns.RcodeToString[tc.rcode])
			}
			if n := h.Server("127.53.1.1").QueryCount(); n != asked {
				t.Errorf("answered by asking again (%d queries), not from the cache", n-asked)
			}
		})
	}
}

func TestLatestSOAIsNotTakenFromLessSecureData(t *testing.T) {
	own := rrOf("example.test. 300 IN SOA ns1.example.test. h.example.test. 1 3600 900 604800 300")
	latest := rrOf("example.test. 300 IN SOA ns1.example.test. h.example.test. 2 3600 900 604800 300")
	tests := []struct {
		name      string
		entrySec  cache.Security
		latestSec cache.Security
		want      uint32
	}{
		{"EquallySecureReplaces", cache.Secure, cache.Secure, 2},
		{"MoreSecureReplaces", cache.Insecure, cache.Secure, 2},
		{"LessSecureDoesNot", cache.Secure, cache.Insecure, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, world(t), nil)
			now := f.r.clock.Now()
			f.r.cacheDenialSOA([]dns.RR{dns.Copy(latest)}, cache.RankAuthorityAA, tc.latestSec)
			e := cache.Entry{Ns: []dns.RR{dns.Copy(own)}, Rcode: dns.RcodeNameError, Security: tc.entrySec}
			got := f.r.withLatestSOA(e, now)
			if s := soaSerial(&dns.Msg{Ns: got.Ns}); s != tc.want || len(got.Ns) != 1 {
				t.Errorf("serial %d in %d records, want %d in 1", s, len(got.Ns), tc.want)
			}
		})
	}
}
