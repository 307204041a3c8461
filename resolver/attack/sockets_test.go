package attack

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// stuckFor is how long a socket must be seen unconnected, and never
// connected, to count as used without connect(2). Between bind(2) and
// connect(2) the exchange's thread can be descheduled, or its goroutine
// left waiting for a P after bind, for 100-500 ms on a loaded 2-core
// machine under -race, which 50 ms did not cover. What the check can
// find on OFF-1's fast path, a long-lived socket serving queries
// unconnected, stays open through the run (over a second for 10,000
// queries); a per-query socket lives a millisecond there, too short for
// 50 ms as for 500 ms.
const stuckFor = 500 * time.Millisecond

// udpSample is what sampleUDPSockets saw of this process's UDP sockets.
type udpSample struct {
	samples int
	sockets int // distinct sockets seen (by inode)
	// inGap counts sockets seen bound but not yet connected: the moment
	// between bind(2) to the random port and connect(2), which the
	// transport's source check covers (Datagram.From).
	inGap int
	// unconnected counts sockets never seen connected but seen unconnected
	// over at least stuckFor: a socket used without connect(2). (A socket
	// between bind and connect can span two samples on a loaded machine
	// or under -race; stuckFor is chosen above such stalls.)
	unconnected int
	// sharedPorts counts samples in which two sockets that lived through
	// the whole sample held one local port.
	sharedPorts int
}

// sampleUDPSockets reads, every interval until stop closes, which UDP
// sockets this process holds (/proc/self/fd) and their addresses as the
// kernel has them (/proc/net/udp), leaving out the sockets on port skip
// (the test's own server). It is the threat model's OFF-1 check that every
// upstream socket is connected and has a port of its own, from the
// kernel's side rather than Go's.
func sampleUDPSockets(stop <-chan struct{}, interval time.Duration, skip uint16) udpSample {
	var s udpSample
	connected, gapSightings := map[string]bool{}, map[string][2]time.Time{}
	buf := make([]byte, 4<<20)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			s.sockets = len(connected)
			for ino, seen := range gapSightings {
				if !connected[ino] {
					s.inGap++
					if seen[1].Sub(seen[0]) >= stuckFor {
						s.unconnected++
					}
				}
			}
			return s
		case <-tick.C:
		}
		s.samples++
		if sampleOnce(buf, connected, gapSightings, skip) {
			s.sharedPorts++
		}
	}
}

// sampleOnce records one look at the sockets and reports whether two that
// were open before and after it shared a local port.
func sampleOnce(buf []byte, connected map[string]bool, gapSightings map[string][2]time.Time, skip uint16) bool {
	now := time.Now()
	before := ownSocketInodes()
	lines := procUDPLines(buf)
	after := ownSocketInodes()
	ports := map[uint16]int{}
	shared := false
	for _, l := range lines {
		if !before[l.inode] || !after[l.inode] || l.localPort == skip {
			continue
		}
		if _, ok := connected[l.inode]; !ok {
			connected[l.inode] = false
		}
		if l.unconnected {
			seen, ok := gapSightings[l.inode]
			if !ok {
				seen[0] = now
			}
			seen[1] = now
			gapSightings[l.inode] = seen
		} else {
			connected[l.inode] = true
		}
		if ports[l.localPort]++; ports[l.localPort] > 1 {
			shared = true
		}
	}
	return shared
}

// ownSocketInodes returns the inodes of the sockets this process holds.
func ownSocketInodes() map[string]bool {
	out := map[string]bool{}
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	return out
}

type procUDPLine struct {
	inode       string
	localPort   uint16
	unconnected bool
}

// procUDPLines parses /proc/net/udp, read into buf: local and remote
// address, inode.
func procUDPLines(buf []byte) []procUDPLine {
	// One read(2) into a large buffer: the kernel fills it in one pass, so
	// a socket closed and its port taken again between two reads of a
	// smaller buffer does not show up twice.
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		return nil
	}
	defer f.Close()
	n, _ := f.Read(buf)
	var out []procUDPLine
	sc := bufio.NewScanner(bytes.NewReader(buf[:n]))
	sc.Buffer(make([]byte, 4096), 4096)
	sc.Scan() // the header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 {
			continue
		}
		_, lport, _ := strings.Cut(fs[1], ":")
		p, err := strconv.ParseUint(lport, 16, 16)
		if err != nil {
			continue
		}
		out = append(out, procUDPLine{inode: fs[9], localPort: uint16(p), unconnected: fs[2] == "00000000:0000"})
	}
	return out
}
