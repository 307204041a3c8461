package resolver

import (
	"strings"
	"testing"
	"time"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/miekg/dns"
)

func TestMinimisationStepsOverNamesKnownToHoldNoCut(t *testing.T) {
	h := simnet.NewHierarchy(simnet.InstantTimeouts())
	h.Zone(".", []string{"127.53.0.1"}, "")
	h.Zone("test.", []string{"127.53.0.2"}, "")
	h.Zone("example.test.", []string{"127.53.1.1"}, `
h1.b.c 300 A 192.0.2.1
h2.b.c 300 A 192.0.2.2
h3.b.c 300 A 192.0.2.3
`)
	tests := []struct {
		name    string
		advance time.Duration
		want    string // the questions the zone's server gets for this name
	}{
		{"h1.b.c.example.test.", 0, "c.example.test./NS b.c.example.test./NS h1.b.c.example.test./A"},
		{"h2.b.c.example.test.", 0, "h2.b.c.example.test./A"},
		// The NODATA's negative TTL (simnet.NegativeTTL, 300 s) has passed.
		{"h3.b.c.example.test.", 2 * time.Hour, "c.example.test./NS b.c.example.test./NS h3.b.c.example.test./A"},
	}
	f := newFixture(t, h, nil)
	srv := h.Server("127.53.1.1")
	for _, tc := range tests {
		f.r.clock.(*simnet.Clock).Advance(tc.advance)
		srv.Reset()
		if m := f.ask(t, tc.name, dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Fatalf("%s: %v", tc.name, m)
		}
		var got []string
		for _, q := range srv.Queries() {
			got = append(got, strings.ToLower(q.Name)+"/"+dns.TypeToString[q.Type])
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: server asked %q, want %q", tc.name, strings.Join(got, " "), tc.want)
		}
	}
}
