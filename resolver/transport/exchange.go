package transport

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// maxTCPMessages bounds the messages read on one TCP connection while
// waiting for the one that answers the query.
const maxTCPMessages = 8

// newQuery packs the query into w, which must be zero, with a fresh ID
// and, when p.mix, fresh 0x20 case bits, so that every attempt (retries
// included) is as hard to guess as the first.
func (c *Client) newQuery(w *wireQuery, q *Query, p plan) (*wireQuery, error) {
	var bits []byte
	if p.mix {
		var buf [33]byte // one bit per byte of the longest name
		bits = buf[:min(len(q.Name)/8+1, len(buf))]
		c.rand.read(bits)
	}
	var cookie []byte
	if p.edns {
		var buf [maxCookieOpt]byte
		cookie = c.cookieFor(buf[:0], q.Server)
	}
	return packQuery(w, q, c.rand.uint16(), p.edns, c.cfg.UDPSize, bits, cookie)
}

// udpAttempt sends one UDP query on a fresh association and waits for an
// acceptable reply until the context ends. It returns the reply, or the plan
// of the next attempt when the exchange must move on (TCP, plain DNS).
// An accepted reply's association stays open for the Hold-On window.
func (c *Client) udpAttempt(ctx context.Context, q *Query, p plan) (*Response, plan, error) {
	// The query and its Hold-On state share one allocation: they live
	// as long as each other, and every exchange makes both (issue #6).
	mem := new(struct {
		wq wireQuery
		h  hold
	})
	wq, err := c.newQuery(&mem.wq, q, p)
	if err != nil {
		return nil, p, fmt.Errorf("ask %s: %w", q.Server, err)
	}
	// The clock starts before the write: a goroutine that loses its
	// thread in the write's system call may find the reply already
	// waiting when it runs again, and a start taken then made busy
	// loopback replies look microseconds fast, so Hold-On held them as
	// early (bench/run's cold runs: 35-60% of the exchanges). Where the
	// query leaves in a batch after the set-up, the start moves to the
	// batch's (sentTime).
	start := time.Now()
	conn, err := c.dialSend(ctx, q.Server, wq.wire)
	if err != nil {
		return nil, p, timeoutErr(ctx, q, err)
	}
	c.n.queriesUDP.Add(1)
	got, next, err := c.awaitUDP(ctx, q, p, wq, conn)
	if got == nil || err != nil {
		_ = conn.Close()
		return nil, next, err
	}
	start = sentTime(conn, start)
	rtt := time.Since(start)
	resp, next, err := c.finishUDP(q, p, wq, got, rtt)
	if resp == nil || err != nil {
		_ = conn.Close()
		return nil, next, err
	}
	mem.h = hold{c: c, wq: wq, conn: conn, first: got, start: start}
	return c.holdOn(ctx, q, p, &mem.h, resp, arrivedAfter(start, got.at, rtt))
}

// dialSend opens an association with server and sends b on it, in one
// step where the Network can.
func (c *Client) dialSend(ctx context.Context, server netip.AddrPort, b []byte) (PacketConn, error) {
	if sd, ok := c.net.(sendDialer); ok {
		return sd.DialUDPSend(ctx, server, b)
	}
	conn, err := c.net.DialUDP(ctx, server)
	if err != nil {
		return nil, err
	}
	if err := conn.Write(b); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return conn, nil
}

// batchSender is a PacketConn whose first datagram may leave after the
// dial returns, in a batch with other associations' (sendq_linux.go).
type batchSender interface {
	SentAt() time.Time // when the batch began; zero before
}

// sentTime is when conn's first datagram left, as far as is known: the
// start of its batch, or start when the dial sent it. Taken from the
// dial, a wait in the queue would count as the server's time, and a
// forgery that follows the real send closely would not look early to
// Hold-On.
func sentTime(conn PacketConn, start time.Time) time.Time {
	if b, ok := conn.(batchSender); ok {
		if t := b.SentAt(); t.After(start) {
			return t
		}
	}
	return start
}

// arrivedAfter is how long after start a reply reached the kernel, given
// the kernel's receive time at and the time rtt at which it was read. It
// falls back to rtt when at is unknown (zero) or outside [start,
// start+rtt], as a step of the wall clock between the readings can make
// it.
func arrivedAfter(start, at time.Time, rtt time.Duration) time.Duration {
	if at.IsZero() {
		return rtt
	}
	if d := at.Sub(start); d >= 0 && d <= rtt {
		return d
	}
	return rtt
}

// accepted is a UDP reply that passed every check.
type accepted struct {
	msg          *dns.Msg
	data         []byte
	cookie       cookieVerdict
	serverCookie []byte // in cookieRaw
	cookieRaw    [maxCookieLen]byte
	at           time.Time // when the kernel received it (Datagram.At)
}

// awaitUDP reads until an acceptable reply arrives ("await valid
// responses", TuDoor): junk and mismatches are counted and skipped, never a
// reason to give up early, but a sign of a spoofer who knows the port ends
// the UDP attempt in favour of TCP.
func (c *Client) awaitUDP(ctx context.Context, q *Query, p plan, wq *wireQuery, conn PacketConn) (*accepted, plan, error) {
	nearMisses := 0
	tcp := p
	tcp.tcp = true
	for {
		dg, err := readUntil(ctx, conn, q.end)
		if err != nil {
			c.noteUDPFailure(ctx, q, p, err)
			return nil, p, timeoutErr(ctx, q, err)
		}
		v := c.judge(wq, q.Server, dg)
		switch v {
		case verdictReassembled:
			c.reject(q, v.String(), false)
			return nil, tcp, nil
		case verdictAccept:
			got, escalate := c.judgeUDP(q, wq, dg.Data)
			if got != nil {
				got.at = dg.At
				return got, p, nil
			}
			if escalate {
				return nil, tcp, nil
			}
			continue
		case verdictWrongID:
			c.noteUnwanted(q)
			if nearMisses++; nearMisses >= c.cfg.NearMissMax {
				c.n.nearMissEsc.Add(1)
				c.reject(q, v.String(), false)
				return nil, tcp, nil
			}
		case verdictWrongQuestion, verdictWrongSource:
			c.noteUnwanted(q)
		case verdictWrongCase:
			c.n.caseEsc.Add(1)
			c.reject(q, v.String(), false)
			tcp.caseFailed = true
			return nil, tcp, nil
		}
		c.reject(q, v.String(), false)
	}
}

// judgeUDP unpacks a reply whose header and question matched and checks
// its cookie. It returns nil for a reply to skip, and escalate when the
// exchange should move to TCP: a server known to do cookies answered
// without one, so either it stopped or the reply is forged, and only TCP
// can tell which.
func (c *Client) judgeUDP(q *Query, wq *wireQuery, data []byte) (got *accepted, escalate bool) {
	msg, err := unpackReply(q, wq, data)
	if err != nil {
		c.n.malformed.Add(1)
		c.reject(q, "unpack: "+err.Error(), false)
		return nil, false
	}
	got = &accepted{msg: msg, data: data}
	cv, sc := checkCookie(wq, msg, &got.cookieRaw)
	switch {
	case cv == cookieWrong:
		c.n.badCookie.Add(1)
		c.noteUnwanted(q)
		c.reject(q, "wrong client cookie", false)
		return nil, false
	case cv == cookieNone && c.servers.get(q.Server).cookieSeen:
		c.n.badCookie.Add(1)
		c.n.cookieEsc.Add(1)
		c.noteUnwanted(q)
		c.reject(q, "no cookie from a server that sends cookies", false)
		return nil, true
	}
	got.cookie, got.serverCookie = cv, sc
	return got, false
}

// finishUDP learns the server cookie of an accepted UDP reply and handles
// BADCOOKIE (RFC 7873 §5.3): retry once with the fresh server cookie, then
// TCP. The rest is finish's.
func (c *Client) finishUDP(q *Query, p plan, wq *wireQuery, got *accepted, rtt time.Duration) (*Response, plan, error) {
	if got.cookie == cookieValid {
		c.learnCookie(q, wq, got.serverCookie)
	}
	if got.msg.Rcode == dns.RcodeBadCookie && got.cookie == cookieValid {
		next := p
		if p.badCookie {
			c.n.cookieEsc.Add(1)
			next.tcp = true
		} else {
			c.n.badCookieRetries.Add(1)
			next.badCookie = true
		}
		return nil, next, nil
	}
	resp, next, err := c.finish(q, p, got.msg, rtt)
	if resp != nil {
		resp.ServerCookie = got.cookie == cookieValid
	}
	return resp, next, err
}

// noteUDPFailure remembers EDNS queries that went unanswered, so a server
// that silently drops EDNS is eventually probed with plain DNS.
func (c *Client) noteUDPFailure(ctx context.Context, q *Query, p plan, err error) {
	if !p.edns || !(errors.Is(err, ErrTimeout) || errors.Is(ctx.Err(), context.DeadlineExceeded)) {
		return
	}
	c.servers.update(q.Server, func(s *serverInfo) {
		if !s.ednsSeen && s.ednsTimeouts < 255 {
			s.ednsTimeouts++
		}
	})
}

// tcpAttempt asks over TCP, which an off-path attacker cannot inject into.
// A reply whose question differs only in case is accepted here and teaches
// that the server changes case: it was not forged, so the exemption cannot
// be planted by a spoofed UDP reply.
func (c *Client) tcpAttempt(ctx context.Context, q *Query, p plan) (*Response, plan, error) {
	if d, ok := ctx.Deadline(); !ok || q.end.Before(d) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, q.end)
		defer cancel()
	}
	wq, err := c.newQuery(new(wireQuery), q, p)
	if err != nil {
		return nil, p, fmt.Errorf("ask %s: %w", q.Server, err)
	}
	conn, err := c.net.DialTCP(ctx, q.Server)
	if err != nil {
		return nil, p, c.tcpErr(ctx, q, p, err)
	}
	defer conn.Close()
	if err := conn.WriteMsg(wq.wire); err != nil {
		return nil, p, c.tcpErr(ctx, q, p, err)
	}
	c.n.queriesTCP.Add(1)
	start := time.Now()
	for range maxTCPMessages {
		b, err := conn.ReadMsg(ctx)
		if err != nil {
			return nil, p, c.tcpErr(ctx, q, p, err)
		}
		v := matchReply(wq, b)
		c.count(v)
		if v != verdictAccept && v != verdictWrongCase {
			c.reject(q, v.String(), true)
			continue
		}
		msg, err := unpackReply(q, wq, b)
		if err != nil {
			c.n.malformed.Add(1)
			c.reject(q, "unpack: "+err.Error(), true)
			continue
		}
		if v == verdictWrongCase && p.mix {
			c.learnCaseExempt(q)
		}
		c.learnCookieTCP(q, wq, msg)
		resp, next, err := c.finish(q, p, msg, time.Since(start))
		if resp != nil {
			c.noteRTT(q, resp.RTT, resp.RTT)
		}
		return resp, next, err
	}
	return nil, p, fmt.Errorf("ask %s for %s over tcp: %d messages, none a reply: %w", q.Server, q.Name, maxTCPMessages, ErrMalformed)
}

// learnCookieTCP learns from a TCP reply, which an off-path attacker
// cannot forge, whether the server (still) does cookies.
func (c *Client) learnCookieTCP(q *Query, wq *wireQuery, msg *dns.Msg) {
	var raw [maxCookieLen]byte
	switch cv, sc := checkCookie(wq, msg, &raw); cv {
	case cookieValid:
		c.learnCookie(q, wq, sc)
	case cookieNone:
		c.forgetCookie(q)
	}
}

func (c *Client) tcpErr(ctx context.Context, q *Query, p plan, err error) error {
	err = timeoutErr(ctx, q, err)
	if p.caseFailed {
		return fmt.Errorf("%w (tcp retry: %w)", ErrCaseMismatch, err)
	}
	return err
}

// finish turns an accepted reply into the Response, or into the next plan
// when the reply asks for one: FORMERR/NOTIMP to EDNS means try without it
// (a FORMERR to plain DNS is a real answer), TC=1 means try TCP.
func (c *Client) finish(q *Query, p plan, msg *dns.Msg, rtt time.Duration) (*Response, plan, error) {
	if p.edns && (msg.Rcode == dns.RcodeFormatError || msg.Rcode == dns.RcodeNotImplemented) {
		c.n.ednsFallbacks.Add(1)
		next := p
		next.edns, next.ednsRejected = false, true
		return nil, next, nil
	}
	c.learnEDNS(q, p)
	if msg.Truncated && !p.tcp {
		c.n.tcEsc.Add(1)
		next := p
		next.tcp = true
		return nil, next, nil
	}
	c.n.accepted.Add(1)
	return &Response{Msg: msg, RTT: rtt, TCP: p.tcp, EDNS: p.edns}, p, nil
}

func (c *Client) learnEDNS(q *Query, p plan) {
	switch {
	case p.edns:
		if info := c.servers.get(q.Server); info.ednsSeen && info.ednsTimeouts == 0 {
			return
		}
		c.servers.update(q.Server, func(s *serverInfo) { s.ednsSeen, s.ednsTimeouts = true, 0 })
	case p.ednsRejected:
		until := c.cfg.Clock.Now().Add(c.cfg.PlainDNSFor)
		c.servers.update(q.Server, func(s *serverInfo) { s.plainUntil, s.ednsTimeouts = until, 0 })
	}
}

func (c *Client) learnCaseExempt(q *Query) {
	c.n.exemptionsLearned.Add(1)
	until := c.cfg.Clock.Now().Add(c.cfg.CaseExemptFor)
	c.servers.update(q.Server, func(s *serverInfo) { s.caseExemptUntil = until })
}

// judge is the first look at every datagram of a UDP association, the
// first reply and Hold-On's later ones alike: fragments, then the source,
// then the header and question (matchReply). It counts what it finds.
func (c *Client) judge(wq *wireQuery, server netip.AddrPort, dg Datagram) verdict {
	v := verdictReassembled
	switch {
	case dg.Reassembled && !c.cfg.AcceptFragments:
	case wrongSource(dg, server):
		v = verdictWrongSource
	default:
		v = matchReply(wq, dg.Data)
	}
	c.count(v)
	return v
}

func (c *Client) count(v verdict) {
	switch v {
	case verdictReassembled:
		c.n.reassembled.Add(1)
	case verdictMalformed:
		c.n.malformed.Add(1)
	case verdictWrongID:
		c.n.badID.Add(1)
	case verdictWrongQuestion:
		c.n.badQuestion.Add(1)
	case verdictWrongCase:
		c.n.badCase.Add(1)
	}
}

func (c *Client) reject(q *Query, why string, tcp bool) {
	if ce := c.log.Check(zap.DebugLevel, "upstream reply rejected"); ce != nil {
		ce.Write(zap.Stringer("server", q.Server), zap.String("name", q.Name), zap.String("why", why), zap.Bool("tcp", tcp))
	}
}

// unpackReply unpacks an accepted reply after writing the resolver's
// spelling of the name over the echoed question, so that the question and
// every name compressed against it come out without the random case. Owner
// names the server spelled out in full are respelled too. Most replies
// take unpackFast; the rest the library's Unpack (unpackLibrary).
func unpackReply(q *Query, wq *wireQuery, data []byte) (*dns.Msg, error) {
	b := make([]byte, len(data))
	copy(b, data)
	copy(b[headerLen:wq.nameEnd], wq.plainName)
	if m, ok := unpackFast(b, wq, q.Name); ok {
		return m, nil
	}
	return unpackLibrary(b, q.Name)
}

// unpackLibrary is unpackReply through the library's Unpack.
func unpackLibrary(b []byte, qname string) (*dns.Msg, error) {
	m, err := UnpackLenient(b)
	if err != nil {
		return nil, err
	}
	if len(m.Question) != 1 {
		return nil, fmt.Errorf("%d questions", len(m.Question))
	}
	m.Question[0].Name = qname
	for _, sec := range [...][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			h.Name = respell(h.Name, qname)
		}
	}
	return m, nil
}

// respell returns n in the spelling of qname when n is qname or one of its
// parent domains up to letter case, and n unchanged otherwise.
func respell(n, qname string) string {
	if len(n) > len(qname) {
		return n
	}
	suffix := qname[len(qname)-len(n):]
	if n == suffix || !strings.EqualFold(n, suffix) {
		return n
	}
	if len(n) < len(qname) && qname[len(qname)-len(n)-1] != '.' {
		return n
	}
	return suffix
}

// wrongSource reports whether dg came from somewhere other than server.
func wrongSource(dg Datagram, server netip.AddrPort) bool {
	if !dg.From.IsValid() {
		return false
	}
	return dg.From.Addr().Unmap() != server.Addr().Unmap() || dg.From.Port() != server.Port()
}
