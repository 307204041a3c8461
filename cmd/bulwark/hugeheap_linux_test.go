package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// mapping is one entry of /proc/self/smaps.
type mapping struct {
	start, end uintptr
	hugeKB     int  // AnonHugePages
	advised    bool // VmFlags has hg (MADV_HUGEPAGE)
}

func smaps(t *testing.T) []mapping {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			out = append(out, mapping{start: lo, end: hi})
			continue
		}
		if len(out) == 0 {
			continue
		}
		m := &out[len(out)-1]
		if v, ok := strings.CutPrefix(line, "AnonHugePages:"); ok {
			m.hugeKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
		if v, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			m.advised = strings.Contains(" "+v+" ", " hg ")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReservedHeapIsFaultedInAsHugePages(t *testing.T) {
	if mode, err := thpMode(os.ReadFile); err != nil || mode != "madvise" {
		t.Skipf("the kernel's huge page mode is %q (%v): the test needs madvise", mode, err)
	}
	const n = 16 << 20
	if err := reserveHugeHeap(n); err != nil {
		t.Fatal(err)
	}
	reserved, ok := advisedMapping(smaps(t), n)
	if !ok {
		t.Fatalf("no mapping of at least %d bytes is advised for huge pages", n/2)
	}
	// The heap grows into the freed pages: one of the next allocations
	// lands there, and written through it is faulted in as huge pages.
	var held [][]byte
	for range 8 {
		b := make([]byte, 4<<20)
		held = append(held, b)
		at := uintptr(unsafe.Pointer(&b[0]))
		if at < reserved.start || at+uintptr(len(b)) > reserved.end {
			continue
		}
		for i := range b {
			b[i] = 1
		}
		if m, _ := advisedMapping(smaps(t), n); m.hugeKB == 0 {
			t.Fatalf("the reserved heap %#x-%#x holds no huge page after 4 MiB in it were written", m.start, m.end)
		}
		return
	}
	t.Fatalf("none of %d allocations of 4 MiB landed in the reserved heap %#x-%#x", len(held), reserved.start, reserved.end)
}

// advisedMapping returns the mapping advised for huge pages that holds
// most of n bytes.
func advisedMapping(ms []mapping, n uintptr) (mapping, bool) {
	for _, m := range ms {
		if m.advised && m.end-m.start >= n/2 {
			return m, true
		}
	}
	return mapping{}, false
}
