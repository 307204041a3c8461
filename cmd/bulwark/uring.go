package main

import (
	"bytes"
	"fmt"
	"strings"
)

// meltdownFile is where Linux says how it answers Meltdown: "Mitigation:
// PTI" when it isolates the kernel's page tables from user space's.
const meltdownFile = "/sys/devices/system/cpu/vulnerabilities/meltdown"

// ringChoice is upstream-io-uring: auto (the default), yes or no.
type ringChoice uint8

const (
	ringAuto ringChoice = iota
	ringYes
	ringNo
)

func (c ringChoice) String() string { return [...]string{"auto", "yes", "no"}[c] }

func setRingChoice(s *settings, v string) error {
	switch strings.ToLower(v) {
	case "auto":
		s.ioURing = ringAuto
	case "yes", "true", "on":
		s.ioURing = ringYes
	case "no", "false", "off":
		s.ioURing = ringNo
	default:
		return fmt.Errorf("%q is not auto, yes or no", v)
	}
	return nil
}

// upstreamSockets is how upstream UDP sockets are set up: through the
// io_uring chain or one system call per step, and why, for the start-up
// log.
type upstreamSockets struct {
	ring bool
	text string
}

// chooseUpstreamSockets decides for upstream-io-uring. The chain saves
// system calls' entries and exits, not their work, and pays for that in
// io_uring's own handling of each linked operation. So it pays only where
// an entry is dear: with page table isolation every entry and exit
// switches page tables. On a guest with it (pti=on) the chain took a
// socket's set-up from 22–29 to 15–17 µs of CPU (docs/performance.md,
// Eleventh round); on a guest without it, the calls one by one cost 5–7%
// less CPU per cold name than the chain (Fourteenth round). auto follows
// the kernel's report; unreadable, it counts as no isolation, as on every
// CPU made since Meltdown.
func chooseUpstreamSockets(c ringChoice, readFile func(string) ([]byte, error), ringSupport func() error) upstreamSockets {
	const calls = "one system call per step"
	why := "upstream-io-uring: " + c.String()
	switch c {
	case ringNo:
		return upstreamSockets{false, calls + " (" + why + ")"}
	case ringAuto:
		b, err := readFile(meltdownFile)
		if err != nil {
			return upstreamSockets{false, calls + " (" + why + "; page table isolation unknown: " + err.Error() + ")"}
		}
		if !bytes.Contains(b, []byte("PTI")) {
			return upstreamSockets{false, calls + " (" + why + "; the kernel does not isolate page tables)"}
		}
		why += "; the kernel isolates page tables"
	}
	if err := ringSupport(); err != nil {
		return upstreamSockets{false, calls + " (" + why + "; " + err.Error() + ")"}
	}
	return upstreamSockets{true, "io_uring, one system call per socket (" + why + ")"}
}
