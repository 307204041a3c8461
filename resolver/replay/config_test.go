package replay

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/bulwark-dns/bulwark/resolver"
)

func TestForwardZoneOptionsMapToTheResolverConfig(t *testing.T) {
	fz := func(zone string, addrs ...string) resolver.ForwardZone {
		z := resolver.ForwardZone{Zone: zone}
		for _, a := range addrs {
			z.Addrs = append(z.Addrs, netip.MustParseAddrPort(a))
		}
		return z
	}
	tests := []struct {
		name    string
		dialect Dialect
		config  []Option
		want    []resolver.ForwardZone
		skip    bool
	}{
		{name: "Clause", dialect: Unbound, config: []Option{
			{Block: "forward-zone", Key: "name", Value: "Example.com"},
			{Block: "forward-zone", Key: "forward-addr", Value: "1.2.3.4"},
			{Block: "forward-zone", Key: "forward-addr", Value: "1.2.3.6@5353"},
		}, want: []resolver.ForwardZone{fz("example.com.", "1.2.3.4:53", "1.2.3.6:5353")}},
		{name: "OneLine", dialect: Unbound, config: []Option{
			{Key: "forward-zone", Value: `name: "." forward-addr: 216.0.0.1`},
		}, want: []resolver.ForwardZone{fz(".", "216.0.0.1:53")}},
		{name: "DeckardForwardsEverything", dialect: Deckard, config: []Option{
			{Key: "forward-addr", Value: "192.0.2.1"},
		}, want: []resolver.ForwardZone{fz(".", "192.0.2.1:53")}},
		{name: "ForwardFirstSkips", dialect: Unbound, config: []Option{
			{Block: "forward-zone", Key: "name", Value: "."},
			{Block: "forward-zone", Key: "forward-first", Value: "yes"},
		}, skip: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := buildSetup(&Scenario{Dialect: tc.dialect, Config: tc.config})
			if (st.skip != "") != tc.skip {
				t.Fatalf("skip %q, want skipped %v", st.skip, tc.skip)
			}
			if !tc.skip && !reflect.DeepEqual(st.cfg.ForwardZones, tc.want) {
				t.Errorf("forward zones %+v, want %+v", st.cfg.ForwardZones, tc.want)
			}
		})
	}
}
