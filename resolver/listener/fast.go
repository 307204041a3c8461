package listener

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/cache"
)

// staleTTL is the TTL of an answer served past its lifetime (RFC 8767 §4).
const staleTTL = 30

// plainQuery is what the fast path reads from a query's bytes.
type plainQuery struct {
	nameEnd int // offset just past the question's name
	edns    clientEDNS
	ad, cd  bool
}

// parsePlainQuery reads a query the answer cache may answer and appends its
// answer key to key: QR=0, opcode QUERY, TC=0, RD=1, one question of class
// IN with an uncompressed name, no answer or authority records, and at most
// an OPT of version 0 without options. Anything else (RD=0 snooping, EDNS
// options such as cookies, trailing bytes) is left to the slow path, which
// checks it in full.
func parsePlainQuery(raw, key []byte) (plainQuery, []byte, bool) {
	var q plainQuery
	if len(raw) < headerLen+5 || raw[2]&0xFB != 0x01 ||
		binary.BigEndian.Uint16(raw[4:]) != 1 || binary.BigEndian.Uint16(raw[6:]) != 0 ||
		binary.BigEndian.Uint16(raw[8:]) != 0 || binary.BigEndian.Uint16(raw[10:]) > 1 {
		return q, key, false
	}
	off := headerLen
	for raw[off] != 0 {
		// Above 63 are pointers and extended label types.
		if raw[off] > 63 {
			return q, key, false
		}
		off += 1 + int(raw[off])
		if off-headerLen > 254 || off >= len(raw) {
			return q, key, false
		}
	}
	q.nameEnd = off + 1
	end := q.nameEnd + 4
	if end > len(raw) || binary.BigEndian.Uint16(raw[q.nameEnd+2:]) != dns.ClassINET {
		return q, key, false
	}
	q.ad, q.cd = raw[3]&0x20 != 0, raw[3]&0x10 != 0
	var flags uint8
	if q.cd {
		flags |= cache.KeyCD
	}
	if raw[11] == 1 {
		opt := raw[end:]
		if len(opt) != 11 || opt[0] != 0 || binary.BigEndian.Uint16(opt[1:]) != dns.TypeOPT ||
			opt[5] != 0 || opt[6] != 0 || binary.BigEndian.Uint16(opt[9:]) != 0 {
			return q, key, false
		}
		q.edns = clientEDNS{present: true, size: binary.BigEndian.Uint16(opt[3:]), do: opt[7]&0x80 != 0}
		flags |= cache.KeyEDNS
		if q.edns.do {
			flags |= cache.KeyDO
		}
	} else if end != len(raw) {
		return q, key, false
	}
	qtype := binary.BigEndian.Uint16(raw[q.nameEnd:])
	return q, cache.AppendAnswerKey(key, raw[headerLen:q.nameEnd], qtype, dns.ClassINET, flags), true
}

// wantsAD is whether the reply's AD bit reports the data's security (RFC
// 6840 §5.7, as the resolver's shape decides it).
func (q *plainQuery) wantsAD() bool { return (q.edns.do || q.ad) && !q.cd }

// serveHit answers raw from the answer cache into out and returns the
// reply's length, or false when the query must take the slow path. It
// allocates nothing on a hit: the key lives on the stack, the answer is
// copied into out and patched in place.
func (s *Server) serveHit(raw []byte, client netip.AddrPort, out []byte, udp bool) (int, bool) {
	if s.answers == nil || (udp && droppedPort(client.Port())) {
		return 0, false
	}
	var kb [cache.MaxAnswerKey]byte
	q, key, ok := parsePlainQuery(raw, kb[:0])
	if !ok || s.access.decide(client.Addr()) != Allow {
		return 0, false
	}
	now := s.clock.Now()
	a, ok := s.answers.Get(key, now)
	if !ok {
		return 0, false
	}
	limit := len(out)
	if udp {
		limit = min(limit, q.edns.udpLimit())
	}
	sec := a.Security()
	if a.Len() > limit || (q.wantsAD() && !sec.SecurityKnown) {
		return 0, false
	}
	n := a.CopyTo(out, now, staleTTL)
	out[0], out[1] = raw[0], raw[1]
	out[3] &^= 0x30
	if q.wantsAD() && sec.Secure {
		out[3] |= 0x20
	}
	if q.cd {
		out[3] |= 0x10
	}
	// The client's own letter case, which a 0x20-checking client compares.
	copy(out[headerLen:q.nameEnd], raw[headerLen:q.nameEnd])
	s.stats.queries.Add(1)
	s.stats.countRcode(int(out[3] & 0x0F))
	if a.Stale(now) || (s.cfg.Prefetch && a.InLastTenth(now)) {
		s.refresh(raw, a)
	}
	return n, true
}

// droppedPort reports source ports of UDP services (echo, daytime, chargen,
// time) and port 0 that a spoofed query could bounce our answer into, as
// BIND's ns_client_dropport drops them.
func droppedPort(p uint16) bool {
	switch p {
	case 0, 7, 13, 19, 37:
		return true
	}
	return false
}

// fill remembers a reply the Handler gave for raw, as sent in out, when the
// answer cache may serve it to the next client asking the same.
func (s *Server) fill(raw []byte, resp *dns.Msg, out []byte) {
	if s.answers == nil || (resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError) {
		return
	}
	var kb [cache.MaxAnswerKey]byte
	q, key, ok := parsePlainQuery(raw, kb[:0])
	if !ok {
		return
	}
	meta := cache.AnswerMeta{SecurityKnown: q.wantsAD() || q.cd, Secure: resp.AuthenticatedData}
	// A question's first answer is refused by the doorkeeper as a rule,
	// not worth a log line.
	if err := s.answers.Put(key, out, meta, s.clock.Now()); err != nil && !errors.Is(err, cache.ErrNotAdmitted) {
		s.log.Debug("answer not cached", zap.String("name", resp.Question[0].Name), zap.Error(err))
	}
}

// refresh resolves a stale or nearly expired answer again in the
// background, at most once at a time per answer and MaxRefreshes in all,
// and replaces it when the new reply is cacheable.
func (s *Server) refresh(raw []byte, a *cache.Answer) {
	if !a.ClaimRefresh() {
		return
	}
	select {
	case s.refreshes <- struct{}{}:
	default:
		a.ReleaseRefresh()
		return
	}
	pkt := bytes.Clone(raw)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.refreshes }()
		defer a.ReleaseRefresh()
		req := new(dns.Msg)
		if err := req.Unpack(pkt); err != nil || len(req.Question) != 1 {
			return
		}
		resp := s.resolve(req, true)
		if out, whole := s.pack(nil, pkt, resp, readEDNS(req), false); whole {
			s.fill(pkt, resp, out)
		}
	}()
}

// resolve is the Handler's Answer, or its Refresh for a refresher.
func (s *Server) resolve(req *dns.Msg, refresh bool) *dns.Msg {
	if r, ok := s.h.(Refresher); ok && refresh {
		return s.answer(req, r.Refresh)
	}
	return s.answer(req, s.h.Answer)
}
