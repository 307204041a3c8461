package validate

import (
	"fmt"

	"github.com/bulwark-dns/bulwark/cache"
)

// EDE info codes of RFC 8914 that the validator reports.
const (
	edeUnsupportedAlg      uint16 = 1
	edeUnsupportedDigest   uint16 = 2
	edeBogus               uint16 = 6
	edeSigExpired          uint16 = 7
	edeSigNotYetValid      uint16 = 8
	edeDNSKEYMissing       uint16 = 9
	edeRRSIGsMissing       uint16 = 10
	edeNSECMissing         uint16 = 12
	edeNetworkError        uint16 = 23
	edeUnsupportedNSEC3Itr uint16 = 27
)

// maxChainDepth bounds the zones between a trust anchor and a signer
// (DS lookups nest once per zone cut); no real name has more cuts.
const maxChainDepth = 16

// verdict is the security of one RRset, zone or reply, with the EDE and
// reason to report when it is not Secure.
type verdict struct {
	sec    cache.Security
	ede    uint16
	reason string
	// transient marks verdicts that must not be kept in the key cache: a
	// work cap hit or a cancelled context says nothing about the zone.
	transient bool
}

func secure() verdict { return verdict{sec: cache.Secure} }

func insecure(ede uint16, format string, args ...any) verdict {
	return verdict{sec: cache.Insecure, ede: ede, reason: fmt.Sprintf(format, args...)}
}

func bogus(ede uint16, format string, args ...any) verdict {
	return verdict{sec: cache.Bogus, ede: ede, reason: fmt.Sprintf(format, args...)}
}

// worse returns the weaker of two verdicts: Bogus beats Insecure and
// Indeterminate, which beat Secure. On a tie the first is kept.
func worse(a, b verdict) verdict {
	rank := func(s cache.Security) int {
		switch s {
		case cache.Bogus:
			return 0
		case cache.Secure:
			return 2
		}
		return 1
	}
	if rank(b.sec) < rank(a.sec) {
		return b
	}
	return a
}

// work is the budget of one Validate call. It is used by one goroutine.
type work struct {
	cfg           *Config
	verifications int
	failures      int
	hashes        int
	depth         int
	capHit        bool
	// leading names the zones whose key flight this validation leads.
	leading []string
}

// spendVerify accounts for one signature verification, or returns the cap
// verdict when the budget is gone. what is formatted only then: every
// verification asks.
func (w *work) spendVerify(what fmt.Stringer) (verdict, bool) {
	if w.verifications >= w.cfg.MaxVerifications {
		return w.capped("%d signature verifications, at %s", w.cfg.MaxVerifications, what), false
	}
	w.verifications++
	return verdict{}, true
}

// failedVerify accounts for a verification that failed, returning the cap
// verdict once MaxVerifyFailures of them have been paid for.
func (w *work) failedVerify(what fmt.Stringer) (verdict, bool) {
	w.failures++
	if w.failures >= w.cfg.MaxVerifyFailures {
		return w.capped("%d failed signature verifications, at %s", w.cfg.MaxVerifyFailures, what), false
	}
	return verdict{}, true
}

// spendHashes accounts for n NSEC3 SHA-1 computations of name.
func (w *work) spendHashes(n int, name string) (verdict, bool) {
	if w.hashes+n > w.cfg.MaxNSEC3Hashes {
		return w.capped("%d NSEC3 hash computations, at NSEC3 hash of %s", w.cfg.MaxNSEC3Hashes, name), false
	}
	w.hashes += n
	return verdict{}, true
}

func (w *work) capped(format string, args ...any) verdict {
	w.capHit = true
	v := bogus(edeBogus, "validation work cap: "+format, args...)
	v.transient = true
	return v
}
