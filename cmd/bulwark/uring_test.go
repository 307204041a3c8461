package main

import (
	"strings"
	"testing"

	"github.com/bulwark-dns/bulwark/resolver/transport"
)

func TestUpstreamIOURingTakesAutoYesOrNo(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  transport.IOURing
		err   string
	}{
		{"auto", transport.IOURingAuto, ""},
		{"AUTO", transport.IOURingAuto, ""},
		{"yes", transport.IOURingOn, ""},
		{"on", transport.IOURingOn, ""},
		{"no", transport.IOURingOff, ""},
		{"false", transport.IOURingOff, ""},
		{"sometimes", transport.IOURingAuto, `"sometimes" is not auto, yes or no`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			s := defaultSettings()
			err := parseConfig(strings.NewReader("upstream-io-uring: "+tc.value+"\n"), "bulwark.conf", &s)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "bulwark.conf:1") {
					t.Fatalf("error %v, want one naming bulwark.conf:1 and %s", err, tc.err)
				}
				return
			}
			if err != nil || s.ioURing != tc.want {
				t.Errorf("got %v (%v), want %v", s.ioURing, err, tc.want)
			}
		})
	}
}

func TestUpstreamSocketsSaysWhichWayAndWhy(t *testing.T) {
	if got, want := upstreamSockets(transport.IOURingOff), "one system call per step (upstream-io-uring: off)"; got != want {
		t.Errorf("upstream-io-uring: no: got %q, want %q", got, want)
	}
	ring, why := transport.UDPSetup(transport.IOURingAuto)
	got := upstreamSockets(transport.IOURingAuto)
	if !strings.Contains(got, why) || strings.HasPrefix(got, "io_uring") != ring {
		t.Errorf("auto: got %q for the transport's %v %q", got, ring, why)
	}
}
