package listener

import (
	"context"
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/resolver/internal/deadline"
)

const (
	headerLen = 12
	// ednsBufferSize is the UDP payload size Bulwark advertises and the
	// largest it sends: 1232 avoids IP fragmentation on any path with an
	// IPv6 minimum MTU (DNS Flag Day 2020).
	ednsBufferSize = 1232
	// plainUDPSize is the limit for clients without EDNS (RFC 1035 §4.2.1).
	plainUDPSize = 512
	tcpMaxSize   = dns.MaxMsgSize
)

// clientEDNS is what the client's OPT record asked for, read before the
// Handler may touch the request.
type clientEDNS struct {
	present bool
	size    uint16
	do      bool
}

func readEDNS(req *dns.Msg) clientEDNS {
	if req == nil {
		return clientEDNS{}
	}
	opt := req.IsEdns0()
	if opt == nil {
		return clientEDNS{}
	}
	return clientEDNS{present: true, size: opt.UDPSize(), do: opt.Do()}
}

// udpLimit is the largest UDP reply the client can take.
func (e clientEDNS) udpLimit() int {
	if !e.present {
		return plainUDPSize
	}
	return max(plainUDPSize, min(int(e.size), ednsBufferSize))
}

// ServePacket answers one client message exactly as the UDP (udp true) or
// TCP listener would, without sockets, for a caller that carries the bytes
// itself: the replay runner plays the peers' scenarios through it so that
// the access list, FORMERR, NOTIMP and truncation are the daemon's own. It
// returns nil when nothing would be sent.
func (s *Server) ServePacket(raw []byte, client netip.AddrPort, udp bool) []byte {
	return s.process(raw, client, udp)
}

// process turns one client message into the bytes to send back, or nil to
// send nothing. It is the whole per-message policy of the listener and the
// target of FuzzProcess.
func (s *Server) process(raw []byte, client netip.AddrPort, udp bool) []byte {
	return s.processInto(nil, raw, client, udp)
}

// processInto is process packing a Handler's reply into room when it
// fits, for a caller that is done with the bytes before room is used
// again: a miss worker spares an allocation per miss (issue #6).
func (s *Server) processInto(room, raw []byte, client netip.AddrPort, udp bool) []byte {
	s.stats.queries.Add(1)
	// Replies to replies (QR=1) would let two servers loop; a message
	// shorter than a header has no ID to answer to.
	if (udp && droppedPort(client.Port())) || len(raw) < headerLen || raw[2]&0x80 != 0 {
		s.stats.dropped.Add(1)
		return nil
	}
	action := s.access.decide(client.Addr())
	if action == Deny {
		s.stats.dropped.Add(1)
		return nil
	}
	req := new(dns.Msg)
	if err := req.Unpack(raw); err != nil {
		req = nil
	}
	var resp *dns.Msg
	switch {
	case action == Refuse:
		resp = reject(raw, req, dns.RcodeRefused)
	case opcodeOf(raw) != dns.OpcodeQuery:
		resp = reject(raw, req, dns.RcodeNotImplemented)
	case req == nil:
		resp = reject(raw, nil, dns.RcodeFormatError)
	default:
		resp = checkQuery(raw, req)
	}
	edns := readEDNS(req)
	if resp != nil {
		return s.encode(raw, resp, edns, udp)
	}
	resp = s.resolve(req, false)
	out, whole := s.pack(room, raw, resp, edns, udp)
	s.stats.countRcode(resp.Rcode)
	if whole {
		s.fill(raw, resp, out)
	}
	return out
}

func opcodeOf(raw []byte) int { return int(raw[2]>>3) & 0xF }

// checkQuery applies the RFC 1035 and RFC 6891 form checks to a message
// that unpacked, and returns the rejection or nil.
func checkQuery(raw []byte, req *dns.Msg) *dns.Msg {
	if binary.BigEndian.Uint16(raw[4:6]) != 1 || len(req.Question) != 1 {
		return reject(raw, req, dns.RcodeFormatError)
	}
	if len(req.Answer) > 0 || len(req.Ns) > 0 {
		// A query carries nothing but its question and OPT; Unbound answers
		// FORMERR without echoing the rest (an IXFR with its SOA).
		return reject(raw, nil, dns.RcodeFormatError)
	}
	var opts []*dns.OPT
	for _, rr := range req.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			opts = append(opts, o)
		}
	}
	if len(opts) > 1 {
		// RFC 6891 §6.1.1: more than one OPT is a FORMERR.
		return reject(raw, req, dns.RcodeFormatError)
	}
	if len(opts) == 1 && opts[0].Version() > 0 {
		return reject(raw, req, dns.RcodeBadVers)
	}
	return nil
}

// reject builds a listener-made reply: with the question when the request
// unpacked, else the header alone.
func reject(raw []byte, req *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	if req != nil && len(req.Question) == 1 {
		m.SetRcode(req, rcode)
	} else {
		m.Id = binary.BigEndian.Uint16(raw[0:2])
		m.Response = true
		m.Opcode = opcodeOf(raw)
		m.RecursionDesired = raw[2]&0x01 != 0
		m.Rcode = rcode
	}
	// RA only on answers to well-formed queries, as Unbound sends them.
	m.RecursionAvailable = rcode != dns.RcodeFormatError
	return m
}

// answer calls the Handler's method under a deadline and turns a panic or
// a nil reply into SERVFAIL.
func (s *Server) answer(req *dns.Msg, handle func(context.Context, *dns.Msg) *dns.Msg) (resp *dns.Msg) {
	ctx := deadline.New(s.base, s.cfg.QueryTimeout)
	defer ctx.Cancel()
	q := req.Question[0]
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked; answering SERVFAIL",
				zap.String("name", q.Name), zap.String("type", dns.TypeToString[q.Qtype]),
				zap.Any("panic", p), zap.StackSkip("stack", 1))
			resp = servfail(req)
		}
	}()
	resp = handle(ctx, req)
	if resp == nil {
		resp = servfail(req)
	}
	return resp
}

func servfail(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}

// encode packs resp as pack does and counts its rcode.
func (s *Server) encode(raw []byte, resp *dns.Msg, edns clientEDNS, udp bool) []byte {
	out, _ := s.pack(nil, raw, resp, edns, udp)
	s.stats.countRcode(resp.Rcode)
	return out
}

// pack fits resp to the client's EDNS and transport and packs it, into
// room when it fits; whole reports that nothing was cut. A reply that
// cannot be packed becomes SERVFAIL, in resp too.
func (s *Server) pack(room, raw []byte, resp *dns.Msg, edns clientEDNS, udp bool) (out []byte, whole bool) {
	resp.Id = binary.BigEndian.Uint16(raw[0:2])
	resp.Response = true
	resp.Compress = true
	fitEDNS(resp, edns)
	limit := tcpMaxSize
	if udp {
		limit = edns.udpLimit()
	}
	out, ok := packAddresses(room, resp)
	if !ok {
		var err error
		if out, err = resp.PackBuffer(room[:cap(room)]); err != nil {
			s.log.Warn("reply does not pack; answering SERVFAIL", zap.Error(err))
			*resp = *reject(raw, nil, dns.RcodeServerFailure)
			fitEDNS(resp, edns)
			out, _ = resp.Pack()
			return out, false
		}
	}
	if len(out) > limit {
		return s.truncate(resp, limit), false
	}
	return out, true
}

// fitEDNS gives the reply exactly one OPT when the client sent one and none
// otherwise (RFC 6891 §7). The Handler's options (EDE) are kept; the DO bit
// is the client's (RFC 3225 §3).
func fitEDNS(resp *dns.Msg, edns clientEDNS) {
	if fitted(resp, edns) {
		return
	}
	var handlerOpt *dns.OPT
	extra := resp.Extra[:0:0]
	for _, rr := range resp.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			handlerOpt = o
			continue
		}
		extra = append(extra, rr)
	}
	resp.Extra = extra
	if !edns.present {
		return
	}
	var opt *dns.OPT
	if len(extra) == 0 {
		// Most replies carry nothing else in additional: the OPT and the
		// section holding it come in one allocation (issue #6).
		one := new(struct {
			opt   dns.OPT
			extra [1]dns.RR
		})
		opt, extra = &one.opt, one.extra[:0]
	} else {
		opt = new(dns.OPT)
	}
	opt.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}
	if handlerOpt != nil {
		opt.Option = handlerOpt.Option
	}
	opt.SetUDPSize(ednsBufferSize)
	opt.SetDo(edns.do)
	resp.Extra = append(extra, opt)
}

// fitted reports whether resp's additional section already is what
// fitEDNS would make of it: no OPT for a client without EDNS, or one OPT,
// last, as the listener would build it. The resolver's replies are, and
// keeping them spares a copy of the section and a new OPT (issue #6).
// Only an rcode that needs no extended bits qualifies: packing such a
// reply would write them into the Handler's OPT.
func fitted(resp *dns.Msg, edns clientEDNS) bool {
	var opt *dns.OPT
	for i, rr := range resp.Extra {
		o, ok := rr.(*dns.OPT)
		if !ok {
			continue
		}
		if opt != nil || i != len(resp.Extra)-1 {
			return false
		}
		opt = o
	}
	if !edns.present || opt == nil {
		return !edns.present && opt == nil
	}
	var ttl uint32
	if edns.do {
		ttl = 1 << 15 // the DO bit, as OPT.SetDo places it
	}
	return resp.Rcode <= 0xF && opt.Hdr.Name == "." && opt.Hdr.Rrtype == dns.TypeOPT && opt.Hdr.Class == ednsBufferSize && opt.Hdr.Ttl == ttl
}

// truncate makes resp fit limit. The additional section goes first without
// TC, since a client needs none of it (RFC 2181 §9). If that is not enough,
// every record but the OPT goes and TC is set, keeping the question, as
// Unbound does: a partial RRset would be cached as if whole, so the client
// must ask again over TCP.
func (s *Server) truncate(resp *dns.Msg, limit int) []byte {
	var opt []dns.RR
	if o := resp.IsEdns0(); o != nil {
		opt = []dns.RR{o}
	}
	resp.Extra = opt
	if out, err := resp.Pack(); err == nil && len(out) <= limit {
		return out
	}
	resp.Answer, resp.Ns = nil, nil
	resp.Truncated = true
	s.stats.truncated.Add(1)
	out, _ := resp.Pack()
	return out
}
