package simnet

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// LameMode says how a lame server answers.
type LameMode uint8

// Lame modes.
const (
	// NotLame answers from the zones.
	NotLame LameMode = iota
	// LameRefused answers every query REFUSED, as a server that was never
	// told about the zone does.
	LameRefused
	// LameUpward answers with a referral to the root, as old BIND did for
	// zones it does not serve.
	LameUpward
)

var lameNames = [...]string{"not-lame", "lame-refused", "lame-upward"}

func (l LameMode) String() string {
	if int(l) < len(lameNames) {
		return lameNames[l]
	}
	return "lame?"
}

// Knobs are the faults and quirks of one server. The zero value is a
// well-behaved server.
type Knobs struct {
	// Latency delays every reply, UDP and TCP.
	Latency time.Duration
	// DropFirst drops the first N UDP queries the server receives.
	DropFirst int
	// DropEvery drops every Nth UDP query (the Nth, 2Nth, ...).
	DropEvery int
	// Dead answers nothing: UDP is silent and TCP connections are refused
	// (or, with DeadTCPSilent, accepted and never answered).
	Dead          bool
	DeadTCPSilent bool
	// Lame makes the server lame for every zone.
	Lame LameMode
	// Truncate sets TC=1 with empty sections on every UDP reply; TCP works.
	Truncate bool
	// EDNSIntolerant answers FORMERR, without OPT, to queries with OPT.
	EDNSIntolerant bool
	// EDNSDrop silently drops queries with OPT.
	EDNSDrop bool
	// TCPOnly drops every UDP query.
	TCPOnly bool
	// MangleCase echoes the question name lower-cased, as servers that
	// break 0x20 do.
	MangleCase bool
	// Handler, when set, replaces the zone logic after the faults above:
	// it gets the parsed query and returns the reply to send as is, or nil
	// to send nothing.
	Handler func(q *dns.Msg, tcp bool) *dns.Msg
}

// QueryRecord is one query as the server received it.
type QueryRecord struct {
	// From is the sender: the real source for sockets, a synthetic
	// 127.0.0.1:port (one per association) in memory.
	From  netip.AddrPort
	TCP   bool
	ID    uint16
	Name  string // as sent, letter case included (miekg presentation format)
	Type  uint16
	Class uint16
	EDNS  bool
	// UDPSize is the EDNS buffer size, 0 without EDNS.
	UDPSize uint16
	DO      bool
	// Cookie is the raw DNS COOKIE option (RFC 7873), nil without one.
	Cookie []byte
	// Wire is the query exactly as received. Malformed is true when it
	// could not be parsed; the other fields are then zero.
	Wire      []byte
	Malformed bool
}

// Server is one simulated authoritative server at one address. Its zones,
// knobs and log may be changed while it serves.
type Server struct {
	addr netip.Addr
	net  *Network

	mu       sync.Mutex
	zones    []*Zone       // guarded by mu
	knobs    Knobs         // guarded by mu
	log      []QueryRecord // guarded by mu
	udpCount int           // UDP queries received since Reset; guarded by mu
	sock     *sockets      // guarded by mu; nil when not listening
}

// Addr returns the server's address.
func (s *Server) Addr() netip.Addr { return s.addr }

// AddZone makes the server authoritative for more zones.
func (s *Server) AddZone(zones ...*Zone) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, z := range zones {
		if !containsZone(s.zones, z) {
			s.zones = append(s.zones, z)
		}
	}
}

func containsZone(zs []*Zone, z *Zone) bool {
	for _, o := range zs {
		if o == z {
			return true
		}
	}
	return false
}

// Zones returns the zones the server serves.
func (s *Server) Zones() []*Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Zone(nil), s.zones...)
}

// Knobs returns the current knobs.
func (s *Server) Knobs() Knobs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.knobs
}

// SetKnobs replaces every knob.
func (s *Server) SetKnobs(k Knobs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.knobs = k
}

// Update changes some knobs atomically: srv.Update(func(k *Knobs) { k.Dead = true }).
func (s *Server) Update(f func(k *Knobs)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.knobs)
}

// Queries returns a copy of the query log, oldest first.
func (s *Server) Queries() []QueryRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]QueryRecord(nil), s.log...)
}

// QueryCount returns how many queries the server received since Reset.
func (s *Server) QueryCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.log)
}

// Reset empties the log and restarts the DropFirst/DropEvery count.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
	s.udpCount = 0
}

// acceptsTCP says whether a TCP connection gets through, and whether a
// refused one is refused (rather than silently never completed).
func (s *Server) acceptsTCP() (ok, silent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.knobs.Dead, s.knobs.DeadTCPSilent
}

// handle is the server's whole behaviour for one received message: it
// logs it, applies the knobs and returns the reply bytes (nil = no reply)
// and how long to delay them.
func (s *Server) handle(wire []byte, from netip.AddrPort, tcp bool) ([]byte, time.Duration) {
	q := new(dns.Msg)
	err := q.Unpack(wire)
	rec := record(q, wire, from, tcp, err != nil)
	s.mu.Lock()
	s.log = append(s.log, rec)
	if !tcp {
		s.udpCount++
	}
	k, n, zones := s.knobs, s.udpCount, s.zones
	s.mu.Unlock()

	if dropped(k, n, tcp, rec.EDNS) {
		return nil, 0
	}
	if err != nil {
		return formErr(wire), k.Latency
	}
	reply := s.reply(q, k, zones, tcp)
	if reply == nil {
		return nil, 0
	}
	out, perr := reply.Pack()
	if perr != nil {
		return nil, 0
	}
	return out, k.Latency
}

func dropped(k Knobs, n int, tcp, edns bool) bool {
	switch {
	case k.Dead:
		return true
	case tcp:
		return false
	case k.TCPOnly, n <= k.DropFirst, k.DropEvery > 0 && n%k.DropEvery == 0:
		return true
	}
	return edns && k.EDNSDrop
}

func record(q *dns.Msg, wire []byte, from netip.AddrPort, tcp, malformed bool) QueryRecord {
	rec := QueryRecord{From: from, TCP: tcp, Wire: append([]byte(nil), wire...), Malformed: malformed}
	if malformed {
		return rec
	}
	rec.ID = q.Id
	if len(q.Question) > 0 {
		rec.Name, rec.Type, rec.Class = q.Question[0].Name, q.Question[0].Qtype, q.Question[0].Qclass
	}
	if opt := q.IsEdns0(); opt != nil {
		rec.EDNS, rec.UDPSize, rec.DO = true, opt.UDPSize(), opt.Do()
		for _, o := range opt.Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				rec.Cookie, _ = hex.DecodeString(c.Cookie)
			}
		}
	}
	return rec
}

// formErr answers an unparsable query that at least has a header.
func formErr(wire []byte) []byte {
	if len(wire) < 12 {
		return nil
	}
	out := make([]byte, 12)
	copy(out, wire[:2])
	out[2] = 0x80 | wire[2]&0x78 // QR, opcode echoed
	out[3] = dns.RcodeFormatError
	return out
}

// Honest returns a copy of the reply s's zones give q with no knob set:
// what a Handler standing in as a man in the middle in front of s would
// get from the real server behind it.
func (s *Server) Honest(q *dns.Msg, tcp bool) *dns.Msg {
	s.mu.Lock()
	zones := s.zones
	s.mu.Unlock()
	return s.reply(q, Knobs{}, zones, tcp).Copy()
}

// reply computes the answer after the dropping knobs have let q through.
func (s *Server) reply(q *dns.Msg, k Knobs, zones []*Zone, tcp bool) *dns.Msg {
	opt := q.IsEdns0()
	if opt != nil && k.EDNSIntolerant {
		m := new(dns.Msg).SetRcode(q, dns.RcodeFormatError)
		return m
	}
	if k.Handler != nil {
		return k.Handler(q, tcp)
	}
	m := s.authoritative(q, k, zones)
	if opt != nil {
		s.addOPT(m, opt)
	}
	if k.MangleCase && len(m.Question) > 0 {
		m.Question[0].Name = strings.ToLower(m.Question[0].Name)
	}
	if !tcp && (k.Truncate || tooBig(m, opt)) {
		m.Truncated = true
		m.Answer, m.Ns = nil, nil
		m.Extra = stripToOPT(m.Extra)
	}
	return m
}

func (s *Server) authoritative(q *dns.Msg, k Knobs, zones []*Zone) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Compress = true
	switch {
	case q.Response, len(q.Question) != 1:
		m.Rcode = dns.RcodeFormatError
	case q.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
	case q.IsEdns0() != nil && q.IsEdns0().Version() != 0:
		m.Rcode = dns.RcodeBadVers
	case k.Lame == LameRefused:
		m.Rcode = dns.RcodeRefused
	case k.Lame == LameUpward:
		s.net.upwardReferral(m)
	default:
		z := pickZone(zones, q.Question[0])
		if z == nil {
			m.Rcode = dns.RcodeRefused
			return m
		}
		do := q.IsEdns0() != nil && q.IsEdns0().Do()
		answerFromZone(z.index(), m, do)
	}
	return m
}

// pickZone chooses the deepest zone holding the name, except that a DS
// query at a zone's apex goes to its parent when the server has it
// (RFC 4035 §3.1.4.1: DS lives on the parent side).
func pickZone(zones []*Zone, q dns.Question) *Zone {
	var best, parentOfBest *Zone
	for _, z := range zones {
		if !dns.IsSubDomain(z.origin, q.Name) {
			continue
		}
		if best == nil || dns.CountLabel(z.origin) > dns.CountLabel(best.origin) {
			best = z
		}
	}
	if best == nil || q.Qtype != dns.TypeDS || !strings.EqualFold(best.origin, q.Name) || best.origin == "." {
		return best
	}
	for _, z := range zones {
		if z != best && dns.IsSubDomain(z.origin, best.origin) &&
			(parentOfBest == nil || dns.CountLabel(z.origin) > dns.CountLabel(parentOfBest.origin)) {
			parentOfBest = z
		}
	}
	if parentOfBest != nil {
		return parentOfBest
	}
	return best
}

// addOPT answers EDNS with EDNS: a 1232-byte buffer (DNS flag day 2020),
// DO echoed, and a server cookie when the client sent one (RFC 7873 §5.2).
func (s *Server) addOPT(m *dns.Msg, qopt *dns.OPT) {
	m.SetEdns0(1232, qopt.Do())
	for _, o := range qopt.Option {
		c, ok := o.(*dns.EDNS0_COOKIE)
		if !ok || len(c.Cookie) < 16 {
			continue
		}
		client := c.Cookie[:16]
		sum := sha256.Sum256(append(s.addr.AsSlice(), client...))
		m.IsEdns0().Option = append(m.IsEdns0().Option,
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: client + hex.EncodeToString(sum[:8])})
	}
}

// tooBig says whether m exceeds the UDP size the query allows: its EDNS
// buffer size, at least 512 (RFC 6891 §6.2.5), or 512 without EDNS.
func tooBig(m *dns.Msg, opt *dns.OPT) bool {
	limit := 512
	if opt != nil {
		limit = max(512, int(opt.UDPSize()))
	}
	return m.Len() > limit
}

func stripToOPT(extra []dns.RR) []dns.RR {
	for _, rr := range extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			return []dns.RR{rr}
		}
	}
	return nil
}

// syntheticPort numbers in-memory associations so that logs tell them apart.
func syntheticPort(n uint32) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(1024+n%64000))
}
