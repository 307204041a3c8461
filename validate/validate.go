// Package validate owns DNSSEC validation (RFC 4033-4035, 5155, 6840):
// trust anchors, the chain of trust from an anchor down to a zone's
// DNSKEYs, RRSIG verification, NSEC and NSEC3 denial proofs, the key cache
// that keeps validated keys with their security status, and the store of
// validated NSEC/NSEC3 records that DS lookups and Synthesize (RFC 8198
// aggressive use) answer from.
//
// It must not do network I/O itself: DNSKEY and DS records are asked for
// through the Fetcher that the resolver passes in, and time comes from the
// Clock in Config, so signature validity runs on injected time. It never
// imports the resolver.
package validate

import (
	"context"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// Clock tells the validator the time against which signature validity
// windows are checked.
type Clock interface{ Now() time.Time }

// Fetcher resolves a name and type for the validator (DNSKEY and DS
// lookups). The reply is returned as the authoritative servers sent it, after
// the resolver's scrubbing but without validation, with the DNSSEC records
// (DO) included. Zone names the zone whose servers answered.
type Fetcher interface {
	Fetch(ctx context.Context, name string, qtype uint16) (msg *dns.Msg, zone string, err error)
}

// Reply is one upstream reply to validate.
type Reply struct {
	// Zone is the zone cut whose servers sent Msg. For a referral it is the
	// parent; the child zone is in the authority section.
	Zone  string
	QName string
	QType uint16
	Msg   *dns.Msg
}

// Result is the outcome of validating a Reply.
type Result struct {
	Security cache.Security
	// EDE is the RFC 8914 info code to attach when Security is Bogus (or an
	// unsupported-algorithm Insecure); 0 when there is nothing to say.
	EDE uint16
	// Reason names the zone and record that failed, for logs and EDE text.
	Reason string
	// Verifications and NSEC3Hashes are the work this call did: signature
	// verifications and NSEC3 SHA-1 computations, each within its cap.
	Verifications int
	NSEC3Hashes   int
}
