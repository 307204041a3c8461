package main

import (
	"fmt"
	"strings"

	"github.com/bulwark-dns/bulwark/resolver/transport"
)

func setIOURing(s *settings, v string) error {
	switch strings.ToLower(v) {
	case "auto":
		s.ioURing = transport.IOURingAuto
	case "yes", "true", "on":
		s.ioURing = transport.IOURingOn
	case "no", "false", "off":
		s.ioURing = transport.IOURingOff
	default:
		return fmt.Errorf("%q is not auto, yes or no", v)
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
