package cache

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Key identifies one cache entry: an RRset, or a negative answer for
// (Name, Type). Name is lower case and fully qualified.
type Key struct {
	Name  string
	Type  uint16
	Class uint16
	Side  Side
}

// Side keeps apart copies of data that sources disagree on, stored beside
// the main entry rather than in it, and read only as fallbacks: a zone's
// parent and its own servers may give different NS sets and addresses,
// and the resolver must keep both to survive either being wrong.
type Side uint8

// Sides. The zero Side is the main entry every lookup reads.
const (
	SideMain   Side = iota
	SideParent      // addresses of NS names as the parent's referral gave them (glue)
	SideChild       // a zone's NS set as its own servers gave it in an answer's authority section
	SideDenial      // a zone's SOA as its latest negative answer gave it
	SideNoCut       // a name a minimised NS question found to hold no zone cut
)

// On returns the key of the same data on side s.
func (k Key) On(s Side) Key {
	k.Side = s
	return k
}

// NewKey builds a Key, lowering the name so that 0x20-mixed names share
// entries.
func NewKey(name string, qtype, qclass uint16) Key {
	return Key{Name: strings.ToLower(dns.Fqdn(name)), Type: qtype, Class: qclass}
}

// TypeNXDomain is the Type of the Key under which a name's NXDOMAIN is
// cached: RFC 2308 §5 says a name error covers every type of the name.
// Type 0 is reserved and never asked.
const TypeNXDomain uint16 = 0

// Rank is the RFC 2181 §5.4.1 trust of cached data. Higher ranks may
// replace lower ones; lower never replace higher while the higher is alive.
type Rank uint8

// Ranks, lowest first.
const (
	RankAdditional     Rank = iota + 1 // additional section (glue outside the referral)
	RankGlue                           // glue of a referral (non-authoritative)
	RankAuthorityNonAA                 // authority section of a non-authoritative reply (referral NS)
	RankAnswerNonAA                    // answer section without AA
	RankAuthorityAA                    // authority section of an authoritative reply
	RankAnswerAA                       // answer section with AA (or validated)
)

var rankNames = [...]string{"none", "additional", "glue", "authority-nonaa", "answer-nonaa", "authority-aa", "answer-aa"}

func (r Rank) String() string {
	if int(r) < len(rankNames) {
		return rankNames[r]
	}
	return "rank?"
}

// Security is the DNSSEC status of cached data (RFC 4035 §4.3).
type Security uint8

// Security states. Unchecked means validation was off or not yet done.
const (
	Unchecked Security = iota
	Insecure
	Bogus
	Indeterminate
	Secure
)

var securityNames = [...]string{"unchecked", "insecure", "bogus", "indeterminate", "secure"}

func (s Security) String() string {
	if int(s) < len(securityNames) {
		return securityNames[s]
	}
	return "security?"
}

// Entry is what the cache holds under a Key.
//
// A positive entry has RRs (one RRset) and the RRSIGs covering it in Sigs.
// A negative entry has Rcode NXDOMAIN or NOERROR with no RRs, and keeps the
// SOA and the denial proofs (NSEC/NSEC3 and their RRSIGs) in Ns so that the
// answer can be rebuilt and re-validated.
type Entry struct {
	RRs  []dns.RR
	Sigs []dns.RR
	Ns   []dns.RR
	// Rcode is dns.RcodeSuccess for positive and NODATA entries,
	// dns.RcodeNameError for NXDOMAIN.
	Rcode    int
	Rank     Rank
	Security Security
	// Reason carries why a Bogus entry is bogus, for the EDE text.
	Reason string
	// Expires is the absolute time the entry dies; set by Put from the
	// records' TTLs and the caps, read-only for callers.
	Expires time.Time
	// Grace keeps a positive entry whose TTL is zero for this long
	// anyway, served with TTL 0: the resolver's short reuse of a TTL-0
	// DNAME for synthesis. Zero, the default, refuses such an entry.
	Grace time.Duration
}

// Negative reports whether the entry denies the name or type.
func (e *Entry) Negative() bool { return len(e.RRs) == 0 }
