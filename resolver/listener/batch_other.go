//go:build !linux

package listener

import "net"

func newBatchConn(pc *net.UDPConn, v4 bool) batchConn { return xnetBatchConn(pc, v4) }
