package listener

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort lets several sockets bind one UDP port so that the kernel
// spreads clients over the workers' read loops.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
