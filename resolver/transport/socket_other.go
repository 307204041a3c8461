//go:build !linux

package transport

import "syscall"

// enableFragSize does nothing where the kernel cannot report reassembly;
// the EDNS size of 1232 remains the defense against fragment poisoning.
func enableFragSize(string, string, syscall.RawConn) error { return nil }

func reassembled([]byte) bool { return false }

func controlTruncated(int) bool { return false }

func shareFixedPort(string, string, syscall.RawConn) error { return nil }
