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

func TestChooseKeepsToUsableServersWithinTheBand(t *testing.T) {
	fast, near, slow, lame, dead := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.4"), netip.MustParseAddr("192.0.2.5")
	none := func(netip.Addr) bool { return false }
	tests := []struct {
		name  string
		addrs []netip.Addr
		skip  func(netip.Addr) bool
		want  []netip.Addr // every one of them is picked, and nothing else
	}{
		{"TheFastestAndThoseWithinTheBand", []netip.Addr{fast, near, slow}, none, []netip.Addr{fast, near}},
		{"LameAndDeadOnlyWhenNothingElseIsLeft", []netip.Addr{lame, dead, slow}, none, []netip.Addr{slow}},
		{"LameAndDeadAsTheLastResort", []netip.Addr{lame, dead}, none, []netip.Addr{lame, dead}},
		{"SkippedServersAreNotPicked", []netip.Addr{fast, near}, func(a netip.Addr) bool { return a == fast }, []netip.Addr{near}},
		{"NothingWhenAllAreSkipped", []netip.Addr{fast}, func(netip.Addr) bool { return true }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ic := newInfraCache(simnet.NewClock(time.Unix(1_800_000_000, 0)))
			ic.rtt(fast, 10*time.Millisecond)
			ic.rtt(near, 300*time.Millisecond)
			ic.rtt(slow, 2*time.Second)
			ic.rtt(lame, time.Millisecond)
			ic.markLame(lame, "example.")
			ic.rtt(dead, time.Millisecond)
			for range deadAfter {
				ic.timedOut(dead)
			}
			seen := map[netip.Addr]int{}
			for range 200 {
				a, timeout, ok := ic.choose(tc.addrs, "example.", tc.skip)
				if !ok {
					break
				}
				if timeout < minTimeout || timeout > maxTimeout {
					t.Fatalf("timeout %v for %v", timeout, a)
				}
				seen[a]++
			}
			if len(seen) != len(tc.want) {
				t.Fatalf("picked %v, want each of %v", seen, tc.want)
			}
			for _, a := range tc.want {
				if seen[a] == 0 {
					t.Errorf("never picked %v: %v", a, seen)
				}
			}
		})
	}
}
