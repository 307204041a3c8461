package resolver

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
)

func TestServerIsAskedOverTCPFirstOnlyAfterRepeatedUDPFailures(t *testing.T) {
	tests := []struct {
		name   string
		events string // t: UDP failed and the TCP retry answered; u: UDP answered
		want   bool
	}{
		{"NeverFailed", "uuu", false},
		{"OneLostDatagram", "t", false},
		{"TwoInARow", "tt", false},
		{"ThreeInARow", "ttt", true},
		{"UDPAnswerBetweenResetsTheCount", "ttutt", false},
		{"ThreeAfterAUDPAnswer", "uttt", true},
	}
	a := netip.MustParseAddr("192.0.2.53")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ic := newInfraCache(simnet.NewClock(time.Unix(1_800_000_000, 0)))
			for _, e := range tc.events {
				if e == 't' {
					ic.answeredOverTCP(a)
				} else {
					ic.answeredOverUDP(a)
				}
			}
			if got := ic.prefersTCP(a); got != tc.want {
				t.Errorf("after %q: prefersTCP = %v, want %v", tc.events, got, tc.want)
			}
		})
	}
}

func TestTCPPreferenceExpires(t *testing.T) {
	clk := simnet.NewClock(time.Unix(1_800_000_000, 0))
	ic := newInfraCache(clk)
	a := netip.MustParseAddr("192.0.2.53")
	for range tcpOnlyAfter {
		ic.answeredOverTCP(a)
	}
	clk.Advance(tcpFor + time.Second)
	if ic.prefersTCP(a) {
		t.Errorf("still TCP-first %v after the last TCP-only verdict", tcpFor+time.Second)
	}
}
