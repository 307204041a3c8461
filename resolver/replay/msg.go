package replay

import (
	"encoding/binary"
	"strings"

	"github.com/miekg/dns"
)

// EDNS payloads the two projects' tools put into their templates.
const (
	unboundPayload = 1232
	deckardPayload = 4096
)

// msg builds the DNS message an entry describes, without raw forms.
func (e *Entry) msg(d Dialect) *dns.Msg {
	m := &dns.Msg{MsgHdr: dns.MsgHdr{
		Opcode:             e.Opcode,
		Rcode:              e.Rcode & 0xF,
		Response:           e.Flags.QR,
		Authoritative:      e.Flags.AA,
		Truncated:          e.Flags.TC,
		RecursionDesired:   e.Flags.RD,
		RecursionAvailable: e.Flags.RA,
		AuthenticatedData:  e.Flags.AD,
		CheckingDisabled:   e.Flags.CD,
	}}
	m.Question = append([]dns.Question(nil), e.Question...)
	m.Answer = copyRRs(e.Sections[secAnswer])
	m.Ns = copyRRs(e.Sections[secAuthority])
	m.Extra = copyRRs(e.Sections[secAdditional])
	if d == Deckard || e.DO || e.HasEDNSData || e.Rcode > 0xF {
		payload := uint16(unboundPayload)
		if d == Deckard {
			payload = deckardPayload
		}
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(payload)
		opt.SetDo(e.DO)
		opt.SetExtendedRcode(uint16(e.Rcode))
		opt.Option = ednsOptions(e.EDNSData)
		m.Extra = append(m.Extra, opt)
	}
	return m
}

// copyRRs copies the records so that adjusting one reply never changes the
// scenario's template.
func copyRRs(rrs []dns.RR) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}

// ednsOptions splits raw OPT RDATA into options, kept as opaque bytes so
// that the wire form is exactly the scenario's.
func ednsOptions(b []byte) []dns.EDNS0 {
	var opts []dns.EDNS0
	for len(b) >= 4 {
		code := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		if 4+n > len(b) {
			break
		}
		opts = append(opts, &dns.EDNS0_LOCAL{Code: code, Data: append([]byte(nil), b[4:4+n]...)})
		b = b[4+n:]
	}
	return opts
}

// reply builds the wire answer of a template entry to query q, applying
// ADJUST. It returns nil when the entry says not to answer.
//
// Unbound's testbound hands a reply straight to the query it matched,
// never comparing IDs, so its scenarios often leave copy_id out; here the
// reply crosses the real transport, which checks ID and case, so in the
// Unbound dialect every reply gets the query's ID and case.
func (e *Entry) reply(q *dns.Msg, d Dialect) []byte {
	if e.Adjust["do_not_answer"] {
		return nil
	}
	copyID := e.Adjust["copy_id"] || d == Unbound
	if raw := e.rawForm(); raw != nil {
		out := append([]byte(nil), raw...)
		if (copyID || e.Adjust["raw_id"]) && len(out) >= 2 {
			binary.BigEndian.PutUint16(out, q.Id)
		}
		return out
	}
	m := e.msg(d)
	if copyID {
		m.Id = q.Id
		copyQueryCase(m, q, d)
	}
	if e.Adjust["copy_query"] {
		m.Question = append([]dns.Question(nil), q.Question...)
	}
	b, err := m.Pack()
	if err != nil {
		return nil
	}
	return b
}

func (e *Entry) rawForm() []byte {
	if e.HexAnswer != nil {
		return e.HexAnswer
	}
	return e.Raw
}

// copyQueryCase gives the reply's question the query's letter case, as a
// genuine server echoes it, so that the resolver's 0x20 check stays on.
// Deckard copies the query name whatever it is (a subdomain match).
func copyQueryCase(m, q *dns.Msg, d Dialect) {
	if len(q.Question) == 0 || len(m.Question) == 0 {
		return
	}
	if d == Deckard || strings.EqualFold(m.Question[0].Name, q.Question[0].Name) {
		m.Question[0].Name = q.Question[0].Name
	}
}
