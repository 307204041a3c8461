package cache

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestLifetimeFollowsTTLsCapsAndSecurity(t *testing.T) {
	now := uint32(t0.Unix())
	a := func(ttl uint32) dns.RR {
		rr := mustRR(t, "a.example. 0 IN A 192.0.2.1")
		rr.Header().Ttl = ttl
		return rr
	}
	soa := func(ttl, minimum uint32) dns.RR {
		rr := mustRR(t, "example. 0 IN SOA ns.example. host.example. 1 7200 900 1209600 0")
		rr.Header().Ttl = ttl
		rr.(*dns.SOA).Minttl = minimum
		return rr
	}
	nsec := mustRR(t, "a.example. 120 IN NSEC b.example. A RRSIG NSEC")
	sig := func(ttl, expiresIn uint32) dns.RR { return testSig("a.example.", dns.TypeA, ttl, now+expiresIn) }
	cfg := Config{MinTTL: 30 * time.Second, MaxTTL: time.Hour, MaxNegativeTTL: 600 * time.Second, BogusTTL: 45 * time.Second}

	tests := []struct {
		name string
		e    Entry
		want time.Duration
	}{
		{"positive takes the smallest RR TTL", Entry{RRs: []dns.RR{a(300), a(200)}}, 200 * time.Second},
		{"RRSIG TTL counts too", Entry{RRs: []dns.RR{a(300)}, Sigs: []dns.RR{sig(100, 86400)}}, 100 * time.Second},
		{"MaxTTL caps", Entry{RRs: []dns.RR{a(86400)}}, time.Hour},
		{"MinTTL raises", Entry{RRs: []dns.RR{a(5)}}, 30 * time.Second},
		{"TTL zero is not cached despite MinTTL", Entry{RRs: []dns.RR{a(0)}}, 0},
		{"TTL with top bit set reads as zero", Entry{RRs: []dns.RR{a(1 << 31)}}, 0},
		{"nil record is refused", Entry{RRs: []dns.RR{a(300), nil}}, 0},
		{"negative takes SOA MINIMUM when lower", Entry{Ns: []dns.RR{soa(3600, 300)}}, 300 * time.Second},
		{"negative takes SOA TTL when lower", Entry{Ns: []dns.RR{soa(60, 300)}}, 60 * time.Second},
		{"negative is lowered by its NSEC", Entry{Ns: []dns.RR{soa(3600, 3600), nsec}}, 120 * time.Second},
		{"MaxNegativeTTL caps", Entry{Ns: []dns.RR{soa(86400, 86400)}}, 600 * time.Second},
		{"MinTTL does not raise negative", Entry{Ns: []dns.RR{soa(10, 10)}}, 10 * time.Second},
		{"negative without SOA is not cached", Entry{Ns: []dns.RR{nsec}, Rcode: dns.RcodeNameError}, 0},
		{"bogus lives BogusTTL", Entry{RRs: []dns.RR{a(300)}, Security: Bogus}, 45 * time.Second},
		{"bogus capped by data TTL", Entry{RRs: []dns.RR{a(10)}, Security: Bogus}, 30 * time.Second},
		{"bogus with TTL zero is not cached", Entry{RRs: []dns.RR{a(0)}, Security: Bogus}, 0},
		{"bogus negative without SOA lives BogusTTL", Entry{Security: Bogus}, 45 * time.Second},
		{"secure capped by signature expiration", Entry{RRs: []dns.RR{a(3600)}, Sigs: []dns.RR{sig(3600, 90)}, Security: Secure}, 90 * time.Second},
		{"secure expiration beats MinTTL", Entry{RRs: []dns.RR{a(3600)}, Sigs: []dns.RR{sig(3600, 10)}, Security: Secure}, 10 * time.Second},
		{"secure with expired signature is not cached", Entry{RRs: []dns.RR{a(3600)}, Sigs: []dns.RR{sig(3600, 1<<31+5)}, Security: Secure}, 0},
		{"secure capped by RRSIG Original TTL", Entry{RRs: []dns.RR{a(3600)}, Sigs: []dns.RR{&dns.RRSIG{Hdr: dns.RR_Header{Ttl: 3600}, OrigTtl: 120, Expiration: now + 86400}}, Security: Secure}, 120 * time.Second},
		{"TTL zero with a grace lives the grace", Entry{RRs: []dns.RR{a(0)}, Grace: 2 * time.Second}, 2 * time.Second},
		{"grace does not touch a TTL above zero", Entry{RRs: []dns.RR{a(300)}, Grace: 2 * time.Second}, 300 * time.Second},
		{"secure signed with Original TTL zero lives the grace", Entry{RRs: []dns.RR{a(0)}, Sigs: []dns.RR{sig(0, 86400)}, Security: Secure, Grace: 2 * time.Second}, 2 * time.Second},
		{"grace is still capped by signature expiration", Entry{RRs: []dns.RR{a(0)}, Sigs: []dns.RR{sig(0, 1<<31+5)}, Security: Secure, Grace: 2 * time.Second}, 0},
		{"unchecked ignores signature expiration", Entry{RRs: []dns.RR{a(300)}, Sigs: []dns.RR{sig(300, 1<<31+5)}}, 300 * time.Second},
	}
	c := New(cfg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Lifetime(&tt.e, t0); got != tt.want {
				t.Errorf("Lifetime = %v, want %v", got, tt.want)
			}
			k := NewKey("a.example.", dns.TypeA, dns.ClassINET)
			if stored := c.Put(k, tt.e, t0); stored != (tt.want > 0) {
				t.Errorf("Put = %v, want %v", stored, tt.want > 0)
			}
			c.Delete(k)
		})
	}
}

func TestSignatureExpirationUsesSerialArithmetic(t *testing.T) {
	// 2106-02-07 wraps the 32-bit time: a signature expiring just after the
	// wrap is still in the future for a clock just before it.
	now := time.Unix(1<<32-100, 500_000_000)
	sig := testSig("a.example.", dns.TypeA, 300, 50)
	if got, want := untilExpiration(sig, now), 149500*time.Millisecond; got != want {
		t.Errorf("untilExpiration across the wrap = %v, want %v", got, want)
	}
}
