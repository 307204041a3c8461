package transport

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/miekg/dns"
)

const (
	headerLen = 12
	optLen    = 11 // root owner, type, class, TTL, empty RDATA
	// maxCookieOpt is a COOKIE option at its longest: code, length, an
	// 8-byte client and a 32-byte server cookie (RFC 7873 §4).
	maxCookieOpt = 4 + maxCookieLen
	maxCookieLen = 8 + 32
	// maxQueryLen bounds a packed query: header, longest name, type and
	// class, OPT with a cookie.
	maxQueryLen = headerLen + 255 + 4 + optLen + maxCookieOpt

	flagQR = 0x80 // byte 2
	flagTC = 0x02 // byte 2
	flagRD = 0x01 // byte 2
	flagCD = 0x10 // byte 3
	ednsDO = 0x8000
)

// wireQuery is one query as it went on the wire, with what is needed to
// judge the replies to it without unpacking them.
type wireQuery struct {
	wire    []byte // packed query, 0x20 case applied
	nameEnd int    // end of the question name in wire
	qEnd    int    // end of the question section in wire
	// plainName is the question name as the resolver spelled it, copied
	// over the echoed name of an accepted reply before it is unpacked so
	// that compression pointers into it carry the resolver's spelling.
	plainName []byte
	// clientCookie is the client cookie sent, nil without one.
	clientCookie []byte
}

// packQuery builds the query for q with the given ID. It sets RD=0 (we
// iterate), CD as asked, and an OPT record advertising udpSize when edns,
// carrying cookie (client cookie, then any server cookie) when it is not
// empty. When caseBits is non-nil the question name's letters are flipped
// by it. It fills w, which must be zero, and returns it.
//
// The query is built on the stack and copied, with plainName, into one
// allocation of its own length: a buffer of the longest query's length in
// w would make every exchange allocate and clear about 600 bytes more
// (issue #6).
func packQuery(w *wireQuery, q *Query, id uint16, edns bool, udpSize uint16, caseBits []byte, cookie []byte) (*wireQuery, error) {
	var scratch [maxQueryLen]byte
	buf, cookieAt := scratch[:], 0
	binary.BigEndian.PutUint16(buf[0:], id)
	if q.RD {
		buf[2] = flagRD
	}
	if q.CD {
		buf[3] = flagCD
	}
	binary.BigEndian.PutUint16(buf[4:], 1)
	off, err := dns.PackDomainName(q.Name, buf, headerLen, nil, false)
	if err != nil {
		return nil, fmt.Errorf("pack query name %q: %w", q.Name, err)
	}
	w.nameEnd, w.qEnd = off, off+4
	binary.BigEndian.PutUint16(buf[off:], q.Type)
	binary.BigEndian.PutUint16(buf[off+2:], q.Class)
	off += 4
	if edns {
		binary.BigEndian.PutUint16(buf[10:], 1)
		buf[off] = 0 // root owner
		binary.BigEndian.PutUint16(buf[off+1:], dns.TypeOPT)
		binary.BigEndian.PutUint16(buf[off+3:], udpSize)
		if q.DO {
			binary.BigEndian.PutUint16(buf[off+7:], ednsDO)
		}
		off += optLen
		if len(cookie) >= 8 && len(cookie) <= 40 {
			binary.BigEndian.PutUint16(buf[off-2:], uint16(4+len(cookie)))
			binary.BigEndian.PutUint16(buf[off:], dns.EDNS0COOKIE)
			binary.BigEndian.PutUint16(buf[off+2:], uint16(len(cookie)))
			copy(buf[off+4:], cookie)
			cookieAt = off + 4
			off += 4 + len(cookie)
		}
	}
	mem := make([]byte, off+w.nameEnd-headerLen)
	w.wire = mem[:off:off]
	copy(w.wire, buf)
	w.plainName = mem[off:]
	copy(w.plainName, buf[headerLen:w.nameEnd])
	if cookieAt > 0 {
		w.clientCookie = w.wire[cookieAt : cookieAt+8 : cookieAt+8]
	}
	if caseBits != nil {
		flipCase(w.wire[headerLen:w.nameEnd], caseBits)
	}
	return w, nil
}

// flipCase toggles the case of the i-th letter of the uncompressed wire
// name when bit i of bits is set (0x20, draft-vixie-dnsext-dns0x20).
// Length octets are never touched, so the name keeps its meaning.
func flipCase(name []byte, bits []byte) {
	letter := 0
	for i := 0; i < len(name); {
		l := int(name[i])
		i++
		for end := min(i+l, len(name)); i < end; i++ {
			c := name[i] | 0x20
			if c < 'a' || c > 'z' {
				continue
			}
			if letter/8 < len(bits) && bits[letter/8]&(1<<(letter%8)) != 0 {
				name[i] ^= 0x20
			}
			letter++
		}
	}
}

// verdict is what the reply matcher thinks of one received message.
type verdict uint8

const (
	verdictAccept        verdict = iota
	verdictMalformed             // too short, or not a reply (QR=0)
	verdictWrongID               // a reply to some other query: near-miss
	verdictWrongQuestion         // right ID, other question, QDCOUNT≠1 or opcode
	verdictWrongCase             // right ID and question, letter case differs
	verdictReassembled           // rebuilt from IP fragments (unless accepted)
	verdictWrongSource           // sent from another address than the server
)

var verdictNames = [...]string{"accept", "malformed", "wrong-id", "wrong-question", "wrong-case", "reassembled from fragments", "wrong source address"}

func (v verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "verdict?"
}

// matchReply judges reply against the query q on the wire alone: the ID,
// QR=1, opcode, exactly one question, and that question byte for byte
// (name with its 0x20 case, type, class). It reads reply only within its
// length and never allocates. verdictAccept guarantees
// reply[12:qEnd] == q.wire[12:qEnd]; the rest of the message is unchecked.
func matchReply(q *wireQuery, reply []byte) verdict {
	if len(reply) < headerLen || reply[2]&flagQR == 0 {
		return verdictMalformed
	}
	if reply[0] != q.wire[0] || reply[1] != q.wire[1] {
		return verdictWrongID
	}
	if reply[2]&0x78 != q.wire[2]&0x78 || binary.BigEndian.Uint16(reply[4:]) != 1 || len(reply) < q.qEnd {
		return verdictWrongQuestion
	}
	got, want := reply[headerLen:q.qEnd], q.wire[headerLen:q.qEnd]
	if bytes.Equal(got, want) {
		return verdictAccept
	}
	n := q.nameEnd - headerLen
	if bytes.Equal(got[n:], want[n:]) && equalFoldWire(got[:n], want[:n]) {
		return verdictWrongCase
	}
	return verdictWrongQuestion
}

// equalFoldWire compares two wire names (same label structure assumed from
// want) ignoring ASCII letter case only.
func equalFoldWire(got, want []byte) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g == w {
			continue
		}
		if g|0x20 != w|0x20 || w|0x20 < 'a' || w|0x20 > 'z' {
			return false
		}
	}
	return true
}
