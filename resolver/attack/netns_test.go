package attack

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// The two ends of the veth pair (threat model §1: 198.18.0.0/15, never the
// host's 192.0.2.0/24).
var (
	resolverIP = netip.MustParseAddr("198.18.0.1")
	authIP     = netip.MustParseAddr("198.18.0.2")
	benchNet   = netip.MustParsePrefix("198.18.0.0/15")
)

// nsSeq makes namespace and interface names unique within one run; the
// pid makes them unique across concurrent runs.
var nsSeq atomic.Uint32

// nsPair is two network namespaces made for one test and joined only to
// each other by one veth pair (threat model c1): r holds the resolver's
// sockets, a the authoritative server's and the attacker's. The path from
// a to r has its MTU locked (c7), so the authoritative side fragments what
// is larger.
type nsPair struct {
	r, a *nsThread
}

// newNSPair builds the pair, and removes it when the test ends.
func newNSPair(t *testing.T, pathMTU int) *nsPair {
	t.Helper()
	needRoot(t)
	seq := nsSeq.Add(1)
	id := fmt.Sprintf("%x", uint32(os.Getpid())<<8|seq&0xff)
	nsR, nsA := "bwk-r-"+id, "bwk-a-"+id
	vr, va := "bwr"+id, "bwa"+id
	t.Cleanup(func() {
		_ = ipCmd("netns", "del", nsA)
		_ = ipCmd("netns", "del", nsR)
	})
	steps := [][]string{
		{"netns", "add", nsR},
		{"netns", "add", nsA},
		{"-n", nsR, "link", "add", vr, "type", "veth", "peer", "name", va, "netns", nsA},
		{"-n", nsR, "addr", "add", resolverIP.String() + "/24", "dev", vr},
		{"-n", nsA, "addr", "add", authIP.String() + "/24", "dev", va},
		{"-n", nsR, "link", "set", "lo", "up"},
		{"-n", nsR, "link", "set", vr, "up"},
		{"-n", nsA, "link", "set", "lo", "up"},
		{"-n", nsA, "link", "set", va, "up"},
		{"-n", nsA, "route", "add", resolverIP.String() + "/32", "dev", va, "mtu", "lock", strconv.Itoa(pathMTU)},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			t.Fatal(err)
		}
	}
	p := &nsPair{}
	var err error
	if p.r, err = startNSThread("/run/netns/" + nsR); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.r.Close)
	if p.a, err = startNSThread("/run/netns/" + nsA); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.a.Close)
	return p
}

// ipCmd runs one iproute2 command, bounded in time.
func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// nsThread is one OS thread that has entered a network namespace: sockets
// opened by the functions it runs belong to that namespace for good, and
// may then be used from any goroutine.
type nsThread struct {
	work chan func()
	done chan struct{}
}

// startNSThread enters the namespace at path on a new locked thread. The
// thread is never unlocked: the runtime discards it when its goroutine
// ends, so no other goroutine ever runs in the namespace by accident.
func startNSThread(path string) (*nsThread, error) {
	th := &nsThread{work: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(th.done)
		runtime.LockOSThread()
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			_ = unix.Close(fd)
		}
		errc <- err
		if err != nil {
			return
		}
		for f := range th.work {
			f()
		}
	}()
	if err := <-errc; err != nil {
		<-th.done
		return nil, fmt.Errorf("enter namespace %s: %w", path, err)
	}
	return th, nil
}

// do runs f on the thread and waits for it.
func (th *nsThread) do(f func()) {
	finished := make(chan struct{})
	th.work <- func() { f(); close(finished) }
	<-finished
}

// Close ends the thread.
func (th *nsThread) Close() {
	close(th.work)
	<-th.done
}

// reasm reads the namespace's IP reassembly counters (threat model c8).
// /proc/net is the thread group leader's namespace, hence thread-self.
func (th *nsThread) reasm() (reqds, oks int64, err error) {
	th.do(func() { reqds, oks, err = readReasm("/proc/thread-self/net/snmp") })
	return reqds, oks, err
}

func readReasm(path string) (reqds, oks int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "Ip:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i := 1; i < len(fields) && i < len(names); i++ {
			v, _ := strconv.ParseInt(fields[i], 10, 64)
			switch names[i] {
			case "ReasmReqds":
				reqds = v
			case "ReasmOKs":
				oks = v
			}
		}
		return reqds, oks, nil
	}
	return 0, 0, fmt.Errorf("%s: no Ip: counters", path)
}

// nsNetwork is the real transport.Network with every socket opened inside
// the resolver's namespace: the seam the test needs without touching the
// transport.
type nsNetwork struct {
	th    *nsThread
	inner transport.Network
}

func (n nsNetwork) DialUDP(ctx context.Context, server netip.AddrPort) (pc transport.PacketConn, err error) {
	n.th.do(func() { pc, err = n.inner.DialUDP(ctx, server) })
	return pc, err
}

func (n nsNetwork) DialTCP(ctx context.Context, server netip.AddrPort) (sc transport.StreamConn, err error) {
	n.th.do(func() { sc, err = n.inner.DialTCP(ctx, server) })
	return sc, err
}
