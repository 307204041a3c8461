package validate

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"math/big"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// The functions here compute what miekg/dns's RRSIG.Verify, DNSKEY.KeyTag
// and DNSKEY.ToDS compute, byte for byte and with the same checks, but
// into pooled buffers and with each DNSKEY decoded once: miekg allocates
// two 4 KB buffers per verification (half of a cold chain's bytes) and
// re-decodes the key every time (#6). miekg verifies no algorithm that
// verifyFast lacks: ED448 and big RSA exponents have their own checks in
// rrsig.go and rsa.go, and any other algorithm fails in both.

// newZoneKey decodes k's public key once for its key tag, DS digests and
// signature checks.
func newZoneKey(k *dns.DNSKEY) zoneKey {
	zk := zoneKey{key: k}
	if pub, err := base64.StdEncoding.DecodeString(k.PublicKey); err == nil {
		zk.pub, zk.pubOK = pub, true
		if k.Algorithm == dns.ECDSAP256SHA256 {
			zk.p256 = newP256Key(pub)
		}
	}
	zk.tag = zk.keyTag()
	return zk
}

// keyWireFits reports whether miekg can pack the key's RDATA: it packs
// into dns.DefaultMsgSize bytes and fails (tag 0, no DS) beyond.
func (k zoneKey) keyWireFits() bool {
	return k.pubOK && 4+len(k.pub) <= dns.DefaultMsgSize
}

// keyTag is DNSKEY.KeyTag (RFC 4034 Appendix B) over the decoded key.
func (k zoneKey) keyTag() uint16 {
	if !k.keyWireFits() {
		return 0
	}
	head := [4]byte{byte(k.key.Flags >> 8), byte(k.key.Flags), k.key.Protocol, k.key.Algorithm}
	sum := 0
	add := func(i int, b byte) {
		if i&1 != 0 {
			sum += int(b)
		} else {
			sum += int(b) << 8
		}
	}
	for i, b := range head {
		add(i, b)
	}
	for i, b := range k.pub {
		add(i+4, b)
	}
	sum += sum >> 16 & 0xFFFF
	return uint16(sum & 0xFFFF)
}

// dsMatches reports whether d's digest is that of k, as comparing
// k.ToDS(d.DigestType).Digest with d.Digest case-insensitively does.
func (k zoneKey) dsMatches(d *dns.DS) bool {
	if !k.keyWireFits() {
		return false
	}
	var owner [255]byte
	n, err := dns.PackDomainName(dns.CanonicalName(k.key.Hdr.Name), owner[:], 0, nil, false)
	if err != nil {
		return false
	}
	// The digest input on the stack for keys of up to 4096 bits.
	var buf [1024]byte
	b := append(buf[:0], owner[:n]...)
	b = append(b, byte(k.key.Flags>>8), byte(k.key.Flags), k.key.Protocol, k.key.Algorithm)
	b = append(b, k.pub...)
	var h crypto.Hash
	switch d.DigestType {
	case dns.SHA1:
		h = crypto.SHA1
	case dns.SHA256:
		h = crypto.SHA256
	case dns.SHA384:
		h = crypto.SHA384
	case dns.SHA512:
		h = crypto.SHA512
	default:
		return false
	}
	var sum [sha512.Size]byte
	return hexEqualFold(digest(h, b, &sum), d.Digest)
}

// hexEqualFold reports whether hex, case-insensitively, spells sum. No
// non-ASCII rune folds to a hex digit, so ASCII folding is what
// strings.EqualFold would do here.
func hexEqualFold(sum []byte, hex string) bool {
	const digits = "0123456789abcdef"
	if len(hex) != 2*len(sum) {
		return false
	}
	for i, b := range sum {
		if lower(hex[2*i]) != digits[b>>4] || lower(hex[2*i+1]) != digits[b&15] {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// asciiEqualFold is miekg's name comparison: ASCII letters fold, nothing
// else does.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// sigScratch is the memory of one verification: the signed data, each
// RR's canonical form before sorting, and the decoded signature. Pooled:
// every verification needs a few KB of it.
type sigScratch struct {
	data, wires, sig, text []byte
	spans                  []rrSpan
	msg                    dns.Msg
	one                    [1]dns.RR
}

// rrSpan is one RR's canonical form in sigScratch.wires; rdata is where
// its RDATA starts, the part RFC 4034 §6.3 sorts on.
type rrSpan struct{ start, rdata, end int }

var sigScratchPool = sync.Pool{New: func() any { return new(sigScratch) }}

// verifyFast is RRSIG.Verify with k's key tag and public key decoded
// already.
func verifyFast(sig *dns.RRSIG, k zoneKey, rrs []dns.RR) error {
	if err := sigFitsKey(sig, k, rrs); err != nil {
		return err
	}
	sc := sigScratchPool.Get().(*sigScratch)
	defer sigScratchPool.Put(sc)
	data, err := sc.signedData(sig, rrs)
	if err != nil {
		return err
	}
	sc.text = append(sc.text[:0], sig.Signature...)
	sc.sig = slices.Grow(sc.sig[:0], base64.StdEncoding.DecodedLen(len(sc.text)))
	var sigbuf []byte
	if n, err := base64.StdEncoding.Decode(sc.sig[:cap(sc.sig)], sc.text); err == nil {
		sigbuf = sc.sig[:n]
	}
	return verifyCrypto(sig.Algorithm, k, data, sigbuf)
}

// sigFitsKey makes the checks RRSIG.Verify makes before any crypto.
func sigFitsKey(sig *dns.RRSIG, k zoneKey, rrs []dns.RR) error {
	if !dns.IsRRset(rrs) {
		return dns.ErrRRset
	}
	key := k.key
	signer := dns.CanonicalName(sig.SignerName)
	if sig.KeyTag != k.tag || sig.Hdr.Class != key.Hdr.Class || sig.Algorithm != key.Algorithm ||
		!asciiEqualFold(signer, key.Hdr.Name) || key.Protocol != 3 || key.Flags&dns.ZONE == 0 {
		return dns.ErrKey
	}
	if h0 := rrs[0].Header(); h0.Class != sig.Hdr.Class || h0.Rrtype != sig.TypeCovered ||
		uint8(dns.CountLabel(h0.Name)) < sig.Labels || !asciiEqualFold(h0.Name, sig.Hdr.Name) ||
		!strings.HasSuffix(dns.CanonicalName(h0.Name), signer) {
		return dns.ErrRRset
	}
	return nil
}

// signedData builds the data sig signs over rrs (RFC 4034 §3.1.8.1) in
// sc.data: the RRSIG RDATA without signature, then the RRset's canonical
// forms sorted by RDATA, duplicates dropped.
func (sc *sigScratch) signedData(sig *dns.RRSIG, rrs []dns.RR) ([]byte, error) {
	b := binary.BigEndian.AppendUint16(sc.data[:0], sig.TypeCovered)
	b = append(b, sig.Algorithm, sig.Labels)
	b = binary.BigEndian.AppendUint32(b, sig.OrigTtl)
	b = binary.BigEndian.AppendUint32(b, sig.Expiration)
	b = binary.BigEndian.AppendUint32(b, sig.Inception)
	b = binary.BigEndian.AppendUint16(b, sig.KeyTag)
	b, err := appendName(b, dns.CanonicalName(sig.SignerName))
	sc.data = b
	if err != nil {
		return nil, err
	}
	if err := sc.canonicalForms(sig, rrs); err != nil {
		return nil, err
	}
	w := sc.wires
	slices.SortFunc(sc.spans, func(x, y rrSpan) int {
		return bytes.Compare(w[x.rdata:x.end], w[y.rdata:y.end])
	})
	for i, s := range sc.spans {
		if i > 0 {
			p := sc.spans[i-1]
			if bytes.Equal(w[s.start:s.end], w[p.start:p.end]) {
				continue
			}
		}
		b = append(b, w[s.start:s.end]...)
	}
	sc.data = b
	return b, nil
}

// appendName appends name, uncompressed, in wire form.
func appendName(b []byte, name string) ([]byte, error) {
	off := len(b)
	b = slices.Grow(b, len(name)+2)[:off+len(name)+2]
	clear(b[off:])
	n, err := dns.PackDomainName(name, b, off, nil, false)
	if err != nil {
		return b[:off], err
	}
	return b[:n], nil
}

// canonicalForms packs each RR of rrs in canonical form (RFC 4034 §6.2)
// into sc.wires, as miekg's rawSignatureData does: a copy with the
// original TTL, the wildcard owner when sig's labels say it was expanded,
// and the owner and the RDATA names of the RFC's list lower-cased. An RR
// that needs none of that but the TTL is packed as it is and its TTL
// patched, sparing the copy.
func (sc *sigScratch) canonicalForms(sig *dns.RRSIG, rrs []dns.RR) error {
	sc.wires, sc.spans = sc.wires[:0], sc.spans[:0]
	for _, rr := range rrs {
		start := len(sc.wires)
		var err error
		if packedAsIs(rr, sig) {
			err = sc.packAsIs(rr)
		} else {
			err = sc.packCopy(rr, sig)
		}
		if err != nil {
			sc.wires = sc.wires[:start]
			return err
		}
		end := start + nameEnd(sc.wires[start:])
		binary.BigEndian.PutUint32(sc.wires[end+4:], sig.OrigTtl)
		sc.spans = append(sc.spans, rrSpan{start, end + 10, len(sc.wires)})
	}
	return nil
}

// packedAsIs reports whether rr's canonical form is its wire form but
// for the TTL: owner in canonical case and not expanded from a wildcard,
// and a type without names in its RDATA.
func packedAsIs(rr dns.RR, sig *dns.RRSIG) bool {
	h := rr.Header()
	if h.Name == "" || dns.CountLabel(h.Name) > int(sig.Labels) || dns.CanonicalName(h.Name) != h.Name {
		return false
	}
	switch rr.(type) {
	case *dns.A, *dns.AAAA, *dns.DNSKEY, *dns.DS, *dns.NSEC, *dns.NSEC3, *dns.TXT:
		return true
	}
	return false
}

// packAsIs appends rr as it is. dns.PackRR would write the RR's Rdlength,
// racing with readers of a shared RR, so it goes through a one-RR message,
// whose packing writes nothing to the RRs.
func (sc *sigScratch) packAsIs(rr dns.RR) error {
	const header = 12
	start, room := len(sc.wires), header+dns.Len(rr)+1
	sc.wires = slices.Grow(sc.wires, room)[:start+room]
	clear(sc.wires[start:])
	sc.one[0] = rr
	sc.msg.Answer = sc.one[:]
	out, err := sc.msg.PackBuffer(sc.wires[start:])
	sc.one[0], sc.msg.Answer = nil, nil
	if err != nil {
		return err
	}
	n := copy(sc.wires[start:], out[header:])
	sc.wires = sc.wires[:start+n]
	return nil
}

// packCopy appends rr's canonical form made as miekg makes it, in a copy.
func (sc *sigScratch) packCopy(rr dns.RR, sig *dns.RRSIG) error {
	r1 := dns.Copy(rr)
	h := r1.Header()
	h.Ttl = sig.OrigTtl
	if h.Name != "" && dns.CountLabel(h.Name) > int(sig.Labels) {
		labels := dns.SplitDomainName(h.Name)
		h.Name = "*." + strings.Join(labels[len(labels)-int(sig.Labels):], ".") + "."
	}
	h.Name = dns.CanonicalName(h.Name)
	lowerRdataNames(r1)
	start, room := len(sc.wires), dns.Len(r1)+1
	sc.wires = slices.Grow(sc.wires, room)[:start+room]
	// miekg packs into zeroed memory, and some packers skip bytes (an A
	// record whose IP is not IPv4 leaves its four).
	clear(sc.wires[start:])
	n, err := dns.PackRR(r1, sc.wires[start:start+room], 0, nil, false)
	if err != nil {
		return err
	}
	sc.wires = sc.wires[:start+n]
	return nil
}

// nameEnd is the length of the uncompressed name that starts wire.
func nameEnd(wire []byte) int {
	i := 0
	for i < len(wire) && wire[i] != 0 {
		i += int(wire[i]) + 1
	}
	return i + 1
}

// lowerRdataNames lower-cases the RDATA names of the types RFC 4034 §6.2
// lists, less HINFO (RFC 6840 §5.1): miekg's list, so that the data
// signed is the same.
func lowerRdataNames(rr dns.RR) {
	c := dns.CanonicalName
	switch x := rr.(type) {
	case *dns.NS:
		x.Ns = c(x.Ns)
	case *dns.MD:
		x.Md = c(x.Md)
	case *dns.MF:
		x.Mf = c(x.Mf)
	case *dns.CNAME:
		x.Target = c(x.Target)
	case *dns.SOA:
		x.Ns, x.Mbox = c(x.Ns), c(x.Mbox)
	case *dns.MB:
		x.Mb = c(x.Mb)
	case *dns.MG:
		x.Mg = c(x.Mg)
	case *dns.MR:
		x.Mr = c(x.Mr)
	case *dns.PTR:
		x.Ptr = c(x.Ptr)
	case *dns.MINFO:
		x.Rmail, x.Email = c(x.Rmail), c(x.Email)
	case *dns.MX:
		x.Mx = c(x.Mx)
	case *dns.RP:
		x.Mbox, x.Txt = c(x.Mbox), c(x.Txt)
	case *dns.AFSDB:
		x.Hostname = c(x.Hostname)
	case *dns.RT:
		x.Host = c(x.Host)
	case *dns.SIG:
		x.SignerName = c(x.SignerName)
	case *dns.PX:
		x.Map822, x.Mapx400 = c(x.Map822), c(x.Mapx400)
	case *dns.NAPTR:
		x.Replacement = c(x.Replacement)
	case *dns.KX:
		x.Exchanger = c(x.Exchanger)
	case *dns.SRV:
		x.Target = c(x.Target)
	case *dns.DNAME:
		x.Target = c(x.Target)
	}
}

// verifyCrypto checks sigbuf over data with k, as RRSIG.Verify does per
// algorithm; a key that does not decode is dns.ErrKey.
func verifyCrypto(alg uint8, k zoneKey, data, sigbuf []byte) error {
	var sum [sha512.Size]byte
	switch alg {
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512:
		pub := k.rsaPublic()
		if pub == nil {
			return dns.ErrKey
		}
		h := dns.AlgorithmToHash[alg]
		return rsa.VerifyPKCS1v15(pub, h, digest(h, data, &sum), sigbuf)
	case dns.ECDSAP256SHA256, dns.ECDSAP384SHA384:
		if alg == dns.ECDSAP256SHA256 && k.p256 != nil {
			if k.p256.verify(digest(crypto.SHA256, data, &sum), sigbuf) {
				return nil
			}
			return dns.ErrSig
		}
		pub := k.ecdsaPublic()
		if pub == nil {
			return dns.ErrKey
		}
		r := new(big.Int).SetBytes(sigbuf[:len(sigbuf)/2])
		s := new(big.Int).SetBytes(sigbuf[len(sigbuf)/2:])
		if ecdsa.Verify(pub, digest(dns.AlgorithmToHash[alg], data, &sum), r, s) {
			return nil
		}
		return dns.ErrSig
	case dns.ED25519:
		if !k.pubOK || len(k.pub) != ed25519.PublicKeySize {
			return dns.ErrKey
		}
		if ed25519.Verify(k.pub, data, sigbuf) {
			return nil
		}
		return dns.ErrSig
	}
	return dns.ErrAlg
}

// digest hashes data with one of the hashes DNSSEC algorithms use, into
// out.
func digest(h crypto.Hash, data []byte, out *[sha512.Size]byte) []byte {
	switch h {
	case crypto.SHA1:
		s := sha1.Sum(data)
		return out[:copy(out[:], s[:])]
	case crypto.SHA256:
		s := sha256.Sum256(data)
		return out[:copy(out[:], s[:])]
	case crypto.SHA384:
		s := sha512.Sum384(data)
		return out[:copy(out[:], s[:])]
	}
	*out = sha512.Sum512(data)
	return out[:]
}

// rsaPublic is miekg's publicKeyRSA over the decoded key (RFC 3110 §2),
// with its limits: exponent of at most 4 octets and 2^31-1, modulus of 64
// to 512 octets, no leading zeros.
func (k zoneKey) rsaPublic() *rsa.PublicKey {
	if !k.pubOK || len(k.pub) < 1+1+64 {
		return nil
	}
	exp, mod, ok := rsaParts(k.pub)
	if !ok || len(exp) > 4 || exp[0] == 0 || len(mod) < 64 || len(mod) > 512 || mod[0] == 0 {
		return nil
	}
	var e uint64
	for _, v := range exp {
		e = e<<8 | uint64(v)
	}
	if e > 1<<31-1 {
		return nil
	}
	return &rsa.PublicKey{E: int(e), N: new(big.Int).SetBytes(mod)}
}

// ecdsaPublic is miekg's publicKeyECDSA over the decoded key.
func (k zoneKey) ecdsaPublic() *ecdsa.PublicKey {
	if !k.pubOK {
		return nil
	}
	pub := &ecdsa.PublicKey{}
	switch k.key.Algorithm {
	case dns.ECDSAP256SHA256:
		pub.Curve = elliptic.P256()
		if len(k.pub) != 64 {
			return nil
		}
	case dns.ECDSAP384SHA384:
		pub.Curve = elliptic.P384()
		if len(k.pub) != 96 {
			return nil
		}
	}
	pub.X = new(big.Int).SetBytes(k.pub[:len(k.pub)/2])
	pub.Y = new(big.Int).SetBytes(k.pub[len(k.pub)/2:])
	return pub
}
