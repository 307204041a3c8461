package main

import (
	"fmt"
	"strings"

	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// setIOURing reads upstream-io-uring: auto, or a yes or no that forces
// either way.
func setIOURing(s *settings, v string) error {
	if strings.EqualFold(v, "auto") {
		s.ioURing = transport.IOURingAuto
		return nil
	}
	on, ok := parseYesNo(v)
	if !ok {
		return fmt.Errorf("%q is not auto, yes or no", v)
	}
	s.ioURing = transport.IOURingOff
	if on {
		s.ioURing = transport.IOURingOn
	}
	return nil
}

// upstreamSockets says how upstream UDP sockets are set up, and why, for
// the start-up log; the transport decides (transport.UDPSetup).
func upstreamSockets(c transport.IOURing) string {
	ring, why := transport.UDPSetup(c)
	way := "one system call per step"
	if ring {
		way = "io_uring, one system call per socket"
	}
	return way + " (upstream-io-uring: " + c.String() + why + ")"
}
