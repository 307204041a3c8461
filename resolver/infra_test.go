package resolver

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
)

func TestServerIsAskedOverTCPFirstOnlyAfterRepeatedUDPFailures(t *testing.T) {
	tests := []struct {
		name string
		// t: UDP failed and the TCP retry answered; T: asked over TCP from
		// the start, answered; u: UDP answered
		events string
		want   bool
	}{
		{"NeverFailed", "uuu", false},
		{"OneLostDatagram", "t", false},
		{"TwoInARow", "tt", false},
		{"ThreeInARow", "ttt", true},
		{"UDPAnswerBetweenResetsTheCount", "ttutt", false},
		{"ThreeAfterAUDPAnswer", "uttt", true},
		{"TCPFromTheStartNeitherCountsNorResets", "ttTTt", true},
		{"TCPFromTheStartAloneIsNotAVerdict", "TTT", false},
	}
	a := netip.MustParseAddr("192.0.2.53")
	ways := map[rune]answerWay{'t': overTCPAfterLostUDP, 'T': overTCP, 'u': overUDP}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ic := newInfraCache(simnet.NewClock(time.Unix(1_800_000_000, 0)))
			for _, e := range tc.events {
				ic.answered(a, time.Millisecond, ways[e])
			}
			if p, _ := ic.choose([]netip.Addr{a}, "example.", noneSkipped); p.tcp != tc.want {
				t.Errorf("after %q: picked for TCP %v, want %v", tc.events, p.tcp, tc.want)
			}
		})
	}
}

func TestTCPPreferenceExpires(t *testing.T) {
	clk := simnet.NewClock(time.Unix(1_800_000_000, 0))
	ic := newInfraCache(clk)
	a := netip.MustParseAddr("192.0.2.53")
	for range tcpOnlyAfter {
		ic.answered(a, time.Millisecond, overTCPAfterLostUDP)
	}
	clk.Advance(tcpFor + time.Second)
	if p, _ := ic.choose([]netip.Addr{a}, "example.", noneSkipped); p.tcp {
		t.Errorf("still TCP-first %v after the last TCP-only verdict", tcpFor+time.Second)
	}
}

func TestChooseKeepsToUsableServersWithinTheBand(t *testing.T) {
	fast, near, slow, lame, dead := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.4"), netip.MustParseAddr("192.0.2.5")
	tests := []struct {
		name  string
		addrs []netip.Addr
		skip  func(netip.Addr) bool
		want  []netip.Addr // every one of them is picked, and nothing else
	}{
		{"TheFastestAndThoseWithinTheBand", []netip.Addr{fast, near, slow}, noneSkipped, []netip.Addr{fast, near}},
		{"LameAndDeadOnlyWhenNothingElseIsLeft", []netip.Addr{lame, dead, slow}, noneSkipped, []netip.Addr{slow}},
		{"LameAndDeadAsTheLastResort", []netip.Addr{lame, dead}, noneSkipped, []netip.Addr{lame, dead}},
		{"SkippedServersAreNotPicked", []netip.Addr{fast, near}, func(a netip.Addr) bool { return a == fast }, []netip.Addr{near}},
		{"NothingWhenAllAreSkipped", []netip.Addr{fast}, func(netip.Addr) bool { return true }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ic := newInfraCache(simnet.NewClock(time.Unix(1_800_000_000, 0)))
			ic.answered(fast, 10*time.Millisecond, overUDP)
			ic.answered(near, 300*time.Millisecond, overUDP)
			ic.answered(slow, 2*time.Second, overUDP)
			ic.answered(lame, time.Millisecond, overUDP)
			ic.markLame(lame, "example.")
			ic.answered(dead, time.Millisecond, overUDP)
			for range deadAfter {
				ic.timedOut(dead)
			}
			seen := map[netip.Addr]int{}
			for range 200 {
				p, ok := ic.choose(tc.addrs, "example.", tc.skip)
				if !ok {
					break
				}
				if p.timeout < minTimeout || p.timeout > maxTimeout {
					t.Fatalf("timeout %v for %v", p.timeout, p.addr)
				}
				seen[p.addr]++
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

// noneSkipped skips no server.
func noneSkipped(netip.Addr) bool { return false }
