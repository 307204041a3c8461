package simnet

import (
	"crypto"
	"fmt"
	"sync"

	"github.com/miekg/dns"
)

// Key is a zone's combined signing key (flags 257, a CSK) and its private
// half, for Sign.
type Key struct {
	RR   *dns.DNSKEY
	Priv crypto.Signer
}

var (
	keysMu sync.Mutex
	keys   = map[string]Key{}
)

// keyBits is the size Generate is asked for, per supported algorithm.
var keyBits = map[uint8]int{dns.RSASHA256: 2048, dns.ECDSAP256SHA256: 256, dns.ED25519: 256}

// CachedKey returns a key of alg for owner, generated once per process for
// each label: RSA generation costs up to a second under -race, and a test
// binary builds many hierarchies.
func CachedKey(label, owner string, alg uint8) (Key, error) {
	id := fmt.Sprintf("%s/%s/%d", label, owner, alg)
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[id]; ok {
		return k, nil
	}
	bits, ok := keyBits[alg]
	if !ok {
		return Key{}, fmt.Errorf("simnet: no key size for algorithm %d", alg)
	}
	rr := &dns.DNSKEY{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: alg}
	priv, err := rr.Generate(bits)
	if err != nil {
		return Key{}, fmt.Errorf("simnet: generate %s key for %s: %w", dns.AlgorithmToString[alg], owner, err)
	}
	k := Key{RR: rr, Priv: priv.(crypto.Signer)}
	keys[id] = k
	return k, nil
}
