package transport

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// epoller is the sweeper's epoll instance. It sits in the runtime's own
// poller like any socket, so the sweep goroutine parks on it (and on its
// read deadline, the next window's end) without holding a thread.
type epoller struct {
	fd   int
	file *os.File
	raw  syscall.RawConn
}

func newEpoller() (*epoller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(fd), "hold-on epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &epoller{fd: fd, file: f, raw: raw}, nil
}

// setDeadline ends the current or next wait at t.
func (e *epoller) setDeadline(t time.Time) { _ = e.file.SetReadDeadline(t) }

// wait blocks until a watched socket is readable or the deadline passes,
// and fills ids with the ids of the ready sockets.
func (e *epoller) wait(ids []uint32) int {
	var evs [sweepBatch]unix.EpollEvent
	n := 0
	_ = e.raw.Read(func(fd uintptr) bool {
		for {
			k, err := unix.EpollWait(int(fd), evs[:min(len(ids), len(evs))], 0)
			if err == unix.EINTR {
				continue
			}
			n = max(k, 0)
			return k != 0 || err != nil
		}
	})
	for i := range n {
		ids[i] = uint32(evs[i].Fd)
	}
	return n
}

func (e *epoller) close() { _ = e.file.Close() }
