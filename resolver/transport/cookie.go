package transport

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// cookieJar derives the client cookies Bulwark sends (RFC 7873 §4.1, RFC
// 9018 §3): HMAC-SHA256 of the server's address under a secret, cut to 8
// bytes. A different cookie per server means one server cannot hand our
// cookie to an attacker spoofing another; rotating the secret means a
// cookie leaked once (a captured query) stops working.
type cookieJar struct {
	rotate time.Duration

	mu     sync.Mutex
	secret [32]byte  // guarded by mu
	since  time.Time // when secret was drawn; guarded by mu
	// mac is keyed with secret and reset for each cookie, which saves
	// deriving the keyed state for every query; guarded by mu.
	mac     hash.Hash
	scratch [sha256.Size]byte // guarded by mu
	// memo holds the cookies of recent servers under the current secret,
	// one slot per address hash, so that its size is fixed: an HMAC per
	// query was 1% of a cold profile's samples (issue #6). Guarded by mu;
	// cleared with each new secret.
	memo [cookieMemo]memoCookie
}

// cookieMemo is how many servers' cookies the jar can remember at once.
const cookieMemo = 256

type memoCookie struct {
	server netip.Addr // the zero Addr, which no server has, in an empty slot
	cookie [8]byte
}

// memoSlot spreads addresses over the memo (Fibonacci hashing of the
// address's two halves).
func memoSlot(a netip.Addr) int {
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])
	return int((h * 0x9E3779B97F4A7C15) >> (64 - 8))
}

func newCookieJar(rotate time.Duration) *cookieJar {
	return &cookieJar{rotate: rotate}
}

// client returns the client cookie for server at now, drawing a new
// secret when the old one is older than the rotation period.
func (j *cookieJar) client(server netip.AddrPort, now time.Time) [8]byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.since.IsZero() || now.Sub(j.since) >= j.rotate || now.Before(j.since) {
		_, _ = rand.Read(j.secret[:])
		j.since = now
		j.mac = hmac.New(sha256.New, j.secret[:])
		j.memo = [cookieMemo]memoCookie{}
	}
	a := server.Addr().Unmap()
	slot := &j.memo[memoSlot(a)]
	if slot.server == a {
		return slot.cookie
	}
	j.mac.Reset()
	b, _ := a.AppendBinary(j.scratch[:0])
	j.mac.Write(b)
	var cc [8]byte
	copy(cc[:], j.mac.Sum(j.scratch[:0]))
	*slot = memoCookie{server: a, cookie: cc}
	return cc
}

// cookieVerdict is what a reply's COOKIE option says about it.
type cookieVerdict uint8

const (
	cookieNone    cookieVerdict = iota // the reply carries no COOKIE option
	cookieValid                        // our client cookie and a well-formed server cookie
	cookieWrong                        // another client cookie, or a malformed option
	cookieNotSent                      // we sent no cookie; whatever came back is ignored
)

// checkCookie compares a reply's COOKIE option with the client cookie of
// the query and returns the server cookie when the option is valid, in
// raw: the caller's buffer spares an allocation per reply (issue #6).
func checkCookie(wq *wireQuery, m *dns.Msg, raw *[maxCookieLen]byte) (cookieVerdict, []byte) {
	if wq.clientCookie == nil {
		return cookieNotSent, nil
	}
	opt := m.IsEdns0()
	if opt == nil {
		return cookieNone, nil
	}
	for _, o := range opt.Option {
		c, ok := o.(*dns.EDNS0_COOKIE)
		if !ok {
			continue
		}
		// RFC 7873 §4: a server cookie is 8 to 32 bytes.
		if len(c.Cookie) > 2*len(raw) {
			return cookieWrong, nil
		}
		n, err := hex.Decode(raw[:], []byte(c.Cookie))
		if err != nil || n < 16 || !bytes.Equal(raw[:8], wq.clientCookie) {
			return cookieWrong, nil
		}
		return cookieValid, raw[8:n]
	}
	return cookieNone, nil
}

// cookieFor appends to dst the cookie bytes to send to server: our client
// cookie, followed by the server cookie it last gave us for that client
// cookie. The caller's buffer spares an allocation per query (issue #6).
func (c *Client) cookieFor(dst []byte, server netip.AddrPort) []byte {
	if c.cfg.DisableCookies {
		return nil
	}
	cc := c.cookies.client(server, c.cfg.Clock.Now())
	dst = append(dst, cc[:]...)
	info := c.servers.get(server)
	if len(info.serverCookie) > 0 && info.cookieClient == cc {
		dst = append(dst, info.serverCookie...)
	}
	return dst
}

// learnCookie remembers a valid server cookie and that the server does
// cookies: from then on, a UDP reply without our cookie is not its.
func (c *Client) learnCookie(q *Query, wq *wireQuery, server []byte) {
	info := c.servers.get(q.Server)
	if info.cookieSeen && bytes.Equal(info.serverCookie, server) && bytes.Equal(info.cookieClient[:], wq.clientCookie) {
		return
	}
	c.servers.update(q.Server, func(s *serverInfo) {
		s.cookieSeen = true
		s.serverCookie = append([]byte(nil), server...)
		copy(s.cookieClient[:], wq.clientCookie)
	})
}

// forgetCookie is called on a TCP answer without a cookie from a server
// that had one: it stopped doing cookies. Only TCP may teach this, or a
// spoofer could switch the check off with one forged reply.
func (c *Client) forgetCookie(q *Query) {
	if !c.servers.get(q.Server).cookieSeen {
		return
	}
	c.n.cookiesForgotten.Add(1)
	c.servers.update(q.Server, func(s *serverInfo) { s.cookieSeen, s.serverCookie = false, nil })
}
