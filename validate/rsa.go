package validate

import (
	"bytes"
	"crypto"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"math/big"

	"github.com/miekg/dns"
)

// RSA public exponents above 2^31-1 are legal (RFC 3110 allows up to 4096
// bits) and deployed (nic.cz. signed with 2^32+1), but Go's crypto/rsa and
// miekg/dns refuse them. Such keys are checked here with math/big, with the
// exponent capped at 64 bits so that a key cannot turn one verification
// into a private-key-sized exponentiation.
const maxBigExponentBits = 64

var errRSAVerify = errors.New("RSA signature does not verify")

// digestInfo are the DER prefixes of EMSA-PKCS1-v1_5 (RFC 8017 §9.2).
var digestInfo = map[crypto.Hash][]byte{
	crypto.SHA1:   {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// rsaParts splits RFC 3110 key material into exponent and modulus octets.
func rsaParts(pub []byte) (exp, mod []byte, ok bool) {
	if len(pub) < 3 {
		return nil, nil, false
	}
	elen, off := int(pub[0]), 1
	if elen == 0 {
		elen, off = int(pub[1])<<8|int(pub[2]), 3
	}
	if elen == 0 || off+elen >= len(pub) {
		return nil, nil, false
	}
	return pub[off : off+elen], pub[off+elen:], true
}

// rsaKey is k's exponent and modulus.
func rsaKey(k zoneKey) (e, n *big.Int, ok bool) {
	exp, mod, ok := rsaParts(k.pub)
	if !k.pubOK || !ok {
		return nil, nil, false
	}
	return new(big.Int).SetBytes(exp), new(big.Int).SetBytes(mod), true
}

// bigExponent reports whether k is RSA with an exponent Go refuses, one
// of more than 31 bits. Every RSA verification asks, so it reads the
// decoded key without building big.Ints.
func bigExponent(k zoneKey) bool {
	switch k.key.Algorithm {
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512:
	default:
		return false
	}
	exp, _, ok := rsaParts(k.pub)
	if !k.pubOK || !ok {
		return false
	}
	exp = bytes.TrimLeft(exp, "\x00")
	return len(exp) > 4 || len(exp) == 4 && exp[0]&0x80 != 0
}

// verifyRSABigExponent checks an RSA PKCS#1 v1.5 signature by key.
func verifyRSABigExponent(sig *dns.RRSIG, key zoneKey, rrs []dns.RR) error {
	e, n, ok := rsaKey(key)
	if !ok || e.BitLen() > maxBigExponentBits || n.BitLen() > 4096 || n.Sign() == 0 {
		return dns.ErrKey
	}
	h := map[uint8]crypto.Hash{dns.RSASHA1: crypto.SHA1, dns.RSASHA1NSEC3SHA1: crypto.SHA1,
		dns.RSASHA256: crypto.SHA256, dns.RSASHA512: crypto.SHA512}[sig.Algorithm]
	raw, err := base64.StdEncoding.DecodeString(sig.Signature)
	k := (n.BitLen() + 7) / 8
	if err != nil || h == 0 || len(raw) > k {
		return dns.ErrSig
	}
	data, err := SignedData(sig, rrs)
	if err != nil {
		return err
	}
	var sum [sha512.Size]byte
	t := append(append([]byte(nil), digestInfo[h]...), digest(h, data, &sum)...)
	if k < len(t)+11 {
		return dns.ErrKey
	}
	want := make([]byte, k)
	want[1] = 1
	for i := 2; i < k-len(t)-1; i++ {
		want[i] = 0xff
	}
	copy(want[k-len(t):], t)
	s := new(big.Int).SetBytes(raw)
	if s.Cmp(n) >= 0 {
		return errRSAVerify
	}
	if !bytes.Equal(new(big.Int).Exp(s, e, n).FillBytes(make([]byte, k)), want) {
		return errRSAVerify
	}
	return nil
}
