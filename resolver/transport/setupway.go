package transport

import (
	"bytes"
	"os"
)

// IOURing is when a socket Network sets its UDP sockets up through
// io_uring.
type IOURing uint8

const (
	// IOURingAuto takes io_uring where system calls are dear (wanted).
	IOURingAuto IOURing = iota
	IOURingOn
	IOURingOff
)

func (c IOURing) String() string { return [...]string{"auto", "on", "off"}[c] }

// meltdownFile is where Linux says how it answers Meltdown: "Mitigation:
// PTI" when it isolates the kernel's page tables from user space's.
const meltdownFile = "/sys/devices/system/cpu/vulnerabilities/meltdown"

// PageTableIsolation says whether the kernel isolates its page tables,
// as it reports in sysfs; the error says why it could not tell.
func PageTableIsolation() (bool, error) {
	b, err := os.ReadFile(meltdownFile)
	if err != nil {
		return false, err
	}
	return bytes.Contains(b, []byte("PTI")), nil
}

// wanted says whether c asks for the io_uring set-up on this machine,
// and why when c left it to the machine ("; ..."), pti being
// PageTableIsolation. The chain saves system calls'
// entries and exits, not their work, and pays for that in io_uring's own
// handling of each linked operation. So it pays only where an entry is
// dear: with page table isolation every entry and exit switches page
// tables. On a guest with it (pti=on) the chain took a socket's set-up
// from 22–29 to 15–17 µs of CPU (docs/performance.md, Eleventh round); on
// a guest without it, the calls one by one cost 3–7% less CPU per cold
// name than the chain (Fourteenth round), 7–12% since the query left the
// chain for a batch (Sixteenth round). auto follows the kernel's
// report; without one it counts as no isolation, as on every CPU made
// since Meltdown.
func (c IOURing) wanted(pti func() (bool, error)) (bool, string) {
	switch c {
	case IOURingOn:
		return true, ""
	case IOURingOff:
		return false, ""
	}
	switch isolated, err := pti(); {
	case err != nil:
		return false, "; page table isolation unknown: " + err.Error()
	case !isolated:
		return false, "; the kernel does not isolate page tables"
	}
	return true, "; the kernel isolates page tables"
}

// UDPSetup says whether a socket Network made with c sets its UDP
// sockets up through io_uring, and why beyond c itself ("; ..."), for a
// daemon's start-up log.
func UDPSetup(c IOURing) (ring bool, why string) {
	ring, why = c.wanted(PageTableIsolation)
	if !ring {
		return false, why
	}
	if err := IOURingSupport(); err != nil {
		return false, why + "; " + err.Error()
	}
	return true, why
}
