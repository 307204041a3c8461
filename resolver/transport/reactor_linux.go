package transport

import (
	"container/heap"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reactor waits for the upstream UDP sockets of one socket Network. Their
// readiness is watched by an epoll instance of its own, which sits in the
// runtime's poller like any socket, and one goroutine hands each readiness
// to whoever waits for that socket: an exchange's read or the Client's
// Hold-On sweeper. A socket handed to the runtime's poller with os.NewFile
// costs an fcntl, an epoll_ctl to add it and another to remove it, a
// finalizer and four allocations: the socket/bind/connect/close cycle took
// 22 µs that way against 14.5 µs with one epoll_ctl here, which close(2)
// undoes by itself (measured on this machine, issue #6).
type reactor struct {
	sends sendQueue // the sockets' first datagrams, in batches

	mu sync.Mutex
	ep *epoller // made with the first socket; guarded by mu
	// ring, made with ep where the kernel has one and the Network's
	// SocketConfig allows it, sets up each socket in one system call;
	// ringErr says why there is none. Guarded by mu.
	ring    *ring
	ringErr error
	// spares hold, per family (IPv4, IPv6), fd+1 of a socket the ring
	// made ahead for the next set-up, or 0; closed when the goroutine
	// ends. Guarded by mu.
	spares  [2]int
	socks   map[uint32]*udpConn // by epoll id; guarded by mu
	lastID  uint32              // guarded by mu
	running bool                // the goroutine is live; guarded by mu
	// idleUntil is when the goroutine ends if no socket comes back; zero
	// while there are sockets. Guarded by mu.
	idleUntil time.Time
	// waits holds the sockets whose reader waits with a deadline, the
	// earliest first, and armed is the deadline the epoll wait has (zero:
	// none): the goroutine wakes each reader whose deadline passes, so a
	// wait needs no timer of its own. Guarded by mu.
	waits deadlines
	armed time.Time
}

// reactorIdle is how long the goroutine outlives the last socket, so that
// one query at a time does not start one per query.
const reactorIdle = 100 * time.Millisecond

// reactorBatch bounds the readiness events taken in one system call.
const reactorBatch = 64

// add sets up u's socket as s says and registers it, armed: the first
// datagram, even one queued before, is reported. The goroutine starts
// with the first socket and ends reactorIdle after the last, so an idle
// Network runs none.
func (r *reactor) add(u *udpConn, s *udpSetup) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ep == nil {
		ep, err := newEpoller()
		if err != nil {
			return err
		}
		r.ep, r.socks = ep, make(map[uint32]*udpConn)
		want, why := s.cfg.IOURing.wanted(PageTableIsolation)
		r.ringErr = errors.New("io_uring " + s.cfg.IOURing.String() + why)
		if want {
			r.ring, r.ringErr = newRing()
		}
	}
	r.lastID++
	for r.socks[r.lastID] != nil {
		r.lastID++
	}
	u.r, u.id = r, r.lastID
	fd, err := r.socket(s.server.Addr().Is6())
	if err != nil {
		return err
	}
	u.fd = fd
	if err := r.setUp(u, s); err != nil {
		return err
	}
	r.socks[u.id] = u
	if !r.idleUntil.IsZero() {
		r.idleUntil = time.Time{}
		r.arm(time.Time{})
	}
	if !r.running {
		r.running = true
		go r.run()
	}
	return nil
}

// socket is a new UDP socket of the family: the one the ring made ahead,
// else one made now.
func (r *reactor) socket(v6 bool) (int, error) {
	i, family := familyIndex(v6)
	if fd := r.spares[i] - 1; fd >= 0 {
		r.spares[i] = 0
		return fd, nil
	}
	fd, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if e != 0 {
		return -1, os.NewSyscallError("socket", e)
	}
	return int(fd), nil
}

func familyIndex(v6 bool) (int, int) {
	if v6 {
		return 1, unix.AF_INET6
	}
	return 0, unix.AF_INET
}

// setUp runs u's set-up through the ring while it works, else call by
// call. The ring also makes the next socket of the family.
func (r *reactor) setUp(u *udpConn, s *udpSetup) error {
	if r.ring == nil || r.ring.broken {
		return u.setUp(s)
	}
	spare, err := r.ring.setUpUDP(u, s, r.ep.fd)
	if spare >= 0 {
		i, _ := familyIndex(s.server.Addr().Is6())
		r.spares[i] = spare + 1
	}
	return err
}

// remove forgets u before it is closed; after the last socket the
// goroutine's wait gets the deadline at which it ends.
func (r *reactor) remove(u *udpConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.socks, u.id)
	r.dropWait(u)
	if len(r.socks) == 0 {
		r.idleUntil = time.Now().Add(reactorIdle)
		r.arm(r.idleUntil)
	}
}

// await has the goroutine wake u's reader at end unless a datagram comes
// first; the epoll wait is brought forward when end is the earliest.
func (r *reactor) await(u *udpConn, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u.waitEnd = end
	heap.Push(&r.waits, u)
	if r.armed.IsZero() || end.Before(r.armed) {
		r.arm(end)
	}
}

// endWait ends u's wait and reports whether it ended at its deadline.
func (r *reactor) endWait(u *udpConn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropWait(u)
}

// dropWait takes u out of the waits, if there, and reports whether the
// goroutine had ended its wait. Called with mu held.
func (r *reactor) dropWait(u *udpConn) (expired bool) {
	expired = u.waitSlot == waitExpired
	if u.waitSlot > 0 {
		heap.Remove(&r.waits, u.waitSlot-1)
	}
	u.waitSlot = 0
	return expired
}

// expire wakes the readers whose deadline is not after now, and gives the
// epoll wait the next deadline once the one it had has passed (a wait
// that ended early leaves it early: one wake-up to spare a system call
// per wait). Called with mu held.
func (r *reactor) expire(now time.Time) {
	for len(r.waits) > 0 && !r.waits[0].waitEnd.After(now) {
		u := heap.Pop(&r.waits).(*udpConn)
		u.waitSlot = waitExpired
		select {
		case u.signal <- struct{}{}:
		default:
		}
	}
	if r.armed.IsZero() || r.armed.After(now) {
		return
	}
	next := r.idleUntil
	if len(r.waits) > 0 {
		next = r.waits[0].waitEnd
	}
	r.arm(next)
}

// arm gives the epoll wait the deadline t (zero: none). Called with mu
// held.
func (r *reactor) arm(t time.Time) {
	r.armed = t
	r.ep.setDeadline(t)
}

// waitExpired is a udpConn's waitSlot once the reactor ended its wait.
const waitExpired = -1

// deadlines is a heap (container/heap) of waiting sockets by waitEnd;
// each knows its place as waitSlot, one more than its index.
type deadlines []*udpConn

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].waitEnd.Before(d[j].waitEnd) }
func (d deadlines) Swap(i, j int) {
	d[i], d[j] = d[j], d[i]
	d[i].waitSlot, d[j].waitSlot = i+1, j+1
}

func (d *deadlines) Push(x any) {
	u := x.(*udpConn)
	*d = append(*d, u)
	u.waitSlot = len(*d)
}

func (d *deadlines) Pop() any {
	old := *d
	u := old[len(old)-1]
	old[len(old)-1] = nil
	*d = old[:len(old)-1]
	u.waitSlot = 0
	return u
}

// run hands readiness to the sockets' waiters until no socket is left.
func (r *reactor) run() {
	var ids [reactorBatch]uint32
	var ready [reactorBatch]*udpConn
	for {
		if !r.plan() {
			return
		}
		n := r.ep.wait(ids[:])
		r.mu.Lock()
		k := 0
		for _, id := range ids[:n] {
			if u := r.socks[id]; u != nil {
				ready[k] = u
				k++
			}
		}
		r.expire(time.Now())
		r.mu.Unlock()
		for i, u := range ready[:k] {
			u.ready()
			ready[i] = nil
		}
	}
}

// plan ends the goroutine when no socket came back in reactorIdle. The
// next add clears the deadline left behind.
func (r *reactor) plan() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.socks) == 0 && !time.Now().Before(r.idleUntil) {
		r.running = false
		for i, fd := range r.spares {
			if fd > 0 {
				_ = closeFD(fd - 1)
				r.spares[i] = 0
			}
		}
		return false
	}
	return true
}

// epoller is an epoll instance in the runtime's poller, so a goroutine
// parks on it (and its read deadline) without holding a thread.
type epoller struct {
	fd   int
	file *os.File
	raw  syscall.RawConn
	// evs, max and got are wait's, and take is the function it hands
	// raw.Read, made once: a wait's own array and closure were a heap
	// allocation per wake-up. Only the reactor's goroutine waits.
	evs      [reactorBatch]unix.EpollEvent
	max, got int
	take     func(fd uintptr) bool
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
	f := os.NewFile(uintptr(fd), "upstream epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	e := &epoller{fd: fd, file: f, raw: raw}
	e.take = e.takeReady
	return e, nil
}

// setDeadline ends the current or next wait at t (zero: never).
func (e *epoller) setDeadline(t time.Time) { _ = e.file.SetReadDeadline(t) }

// wait blocks until a registered socket is readable or the deadline
// passes, and fills ids with the ids of the ready sockets.
func (e *epoller) wait(ids []uint32) int {
	e.max, e.got = min(len(ids), len(e.evs)), 0
	_ = e.raw.Read(e.take)
	for i := range e.got {
		ids[i] = uint32(e.evs[i].Fd)
	}
	return e.got
}

// takeReady reads what the epoll instance has ready, without waiting;
// false (nothing ready) has raw.Read wait until it is readable. A zero
// timeout never blocks: raw, like the sockets' calls (setupUDP says why).
// epoll_pwait with no mask is epoll_wait, which some architectures lack.
func (e *epoller) takeReady(fd uintptr) bool {
	for {
		k, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&e.evs[0])), uintptr(e.max), 0, 0, 0)
		switch errno {
		case 0:
			e.got = int(k)
			return e.got != 0
		case unix.EINTR:
			continue
		}
		return true
	}
}
