package validate

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"testing"

	"github.com/miekg/dns"
)

// bigExponentKey makes an RSA-1024 key with e = 2^32+1, which Go's
// crypto/rsa cannot generate or use, and a signer for it.
func bigExponentKey(t *testing.T) (*dns.DNSKEY, func([]byte) []byte) {
	t.Helper()
	e := new(big.Int).SetUint64(1<<32 + 1)
	one := big.NewInt(1)
	for range 50 {
		p, _ := rand.Prime(rand.Reader, 512)
		q, _ := rand.Prime(rand.Reader, 512)
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(e, phi)
		if d == nil {
			continue
		}
		n := new(big.Int).Mul(p, q)
		pub := append([]byte{5}, e.FillBytes(make([]byte, 5))...)
		k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: leafName, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
			Flags: 257, Protocol: 3, Algorithm: dns.RSASHA256,
			PublicKey: base64.StdEncoding.EncodeToString(append(pub, n.Bytes()...))}
		sign := func(em []byte) []byte {
			return new(big.Int).Exp(new(big.Int).SetBytes(em), d, n).FillBytes(make([]byte, (n.BitLen()+7)/8))
		}
		return k, sign
	}
	t.Fatal("no key")
	return nil, nil
}

func TestRSAWithAnExponentAbove31BitsVerifies(t *testing.T) {
	key, sign := bigExponentKey(t)
	set := rrs(t, "www.example.test. 3600 IN A 192.0.2.1")
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: "www.example.test.", Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 3600},
		TypeCovered: dns.TypeA, Algorithm: dns.RSASHA256, Labels: 3, OrigTtl: 3600, KeyTag: key.KeyTag(),
		SignerName: leafName, Inception: uint32(goodWindow.inception.Unix()), Expiration: uint32(goodWindow.expiration.Unix())}
	data, err := SignedData(sig, set)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	_, n, _ := rsaKey(newZoneKey(key))
	k := (n.BitLen() + 7) / 8
	digest := append(append([]byte(nil), digestInfo[crypto.SHA256]...), sum[:]...)
	em := make([]byte, k)
	em[1] = 1
	for i := 2; i < k-len(digest)-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-len(digest):], digest)
	sig.Signature = base64.StdEncoding.EncodeToString(sign(em))
	v := newValidator(t, nil, nil)
	if !bigExponent(newZoneKey(key)) {
		t.Fatal("key not recognised as big-exponent")
	}
	if err := v.verifySig(sig, newZoneKey(key), set); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	flipSig([]dns.RR{sig})
	if err := v.verifySig(sig, newZoneKey(key), set); err == nil {
		t.Fatal("flipped signature verified")
	}
}
