package main

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// reserveHugeHeap leaves n bytes of mapped, untouched heap advised for
// huge pages, which the next allocations fault in 2 MiB at a time.
//
// The runtime maps heap as it grows, each time a new mapping that an
// older one's advice does not cover, so the advice must come before the
// heap grows there: one allocation of n bytes, mapped afresh and not
// written (fresh memory is already zero), is advised and freed, and the
// runtime's allocator, lowest address first, hands its pages out next.
// Nothing is faulted in here: the resident size at start is unchanged.
func reserveHugeHeap(n int) error {
	if strconv.IntSize < 64 {
		// A 32-bit heap's address space is too short to set n bytes aside.
		return errors.New("32-bit address space")
	}
	// The runtime dies rather than fail an allocation that it cannot
	// map (strict overcommit): ask the kernel first.
	probe, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return fmt.Errorf("mmap of %d bytes: %w", n, err)
	}
	if err := unix.Munmap(probe); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	err = adviseFresh(n)
	runtime.GC() // frees the allocation for the heap to grow into
	return err
}

// adviseFresh allocates n bytes and advises them; the slice dies on return.
//
//go:noinline
func adviseFresh(n int) error {
	if err := unix.Madvise(make([]byte, n), unix.MADV_HUGEPAGE); err != nil {
		return fmt.Errorf("madvise: %w", err)
	}
	return nil
}
