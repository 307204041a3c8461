//go:build !linux

package transport

import (
	"errors"
	"time"
)

// epoller exists on Linux only; elsewhere every Hold-On window gets a
// watcher goroutine.
type epoller struct{}

func newEpoller() (*epoller, error) { return nil, errors.New("no epoll on this system") }

func (*epoller) setDeadline(time.Time) {}
func (*epoller) wait([]uint32) int     { return 0 }
func (*epoller) close()                {}
