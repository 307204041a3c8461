package main

import (
	"bytes"
	"fmt"
)

// thpModeFile holds the kernel's transparent huge page mode: always,
// madvise (only where a mapping asked) or never, the chosen one in brackets.
const thpModeFile = "/sys/kernel/mm/transparent_hugepage/enabled"

// maxHugeHeap bounds the heap advised for huge pages. Most of the gain is
// in the first tens of MiB, which every resolver's heap reaches; a larger
// range only adds to what the runtime must map at start.
const maxHugeHeap = 256 << 20

// heapHugePages asks for transparent huge pages behind the first
// cache-size bytes (at most maxHugeHeap) of heap that the daemon will use,
// where the kernel gives them only on request, and says what it did for
// the start-up log.
//
// On this kind of guest a page fault costs about 8 µs, and a fresh daemon
// took half a fault per cold name while its heap grew; a cache lookup's
// time went mostly to the load of the map's slot, whose share of a cold
// profile huge pages cut from 4.3% to 2.9% (docs/performance.md, Twelfth
// round). Go does not advise its heap (since Go 1.21.1), so under the
// common madvise mode it never gets huge pages.
func heapHugePages(s *settings, readFile func(string) ([]byte, error)) string {
	if !s.heapHugePages {
		return "off (heap-huge-pages: no)"
	}
	mode, err := thpMode(readFile)
	if err != nil {
		return "not available (" + err.Error() + ")"
	}
	if mode != "madvise" {
		return "the kernel's mode: " + mode
	}
	n := min(s.cacheTotal(), maxHugeHeap)
	if err := reserveHugeHeap(int(n)); err != nil {
		return "not advised (" + err.Error() + ")"
	}
	return fmt.Sprintf("%d MiB of heap advised", n>>20)
}

// thpMode returns the bracketed word of thpModeFile.
func thpMode(readFile func(string) ([]byte, error)) (string, error) {
	b, err := readFile(thpModeFile)
	if err != nil {
		return "", err
	}
	_, rest, ok := bytes.Cut(b, []byte("["))
	mode, _, closed := bytes.Cut(rest, []byte("]"))
	if !ok || !closed || len(mode) == 0 {
		return "", fmt.Errorf("%s: no mode in brackets in %q", thpModeFile, bytes.TrimSpace(b))
	}
	return string(mode), nil
}
