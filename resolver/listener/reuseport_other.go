//go:build !linux

package listener

import (
	"syscall"
)

// reusePort is unavailable here; Listen then works with Workers 1 only.
func reusePort(_, _ string, _ syscall.RawConn) error { return nil }
