package validate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"sync"
	"testing"

	"filippo.io/nistec"
)

// p256Pub is pub in RFC 6605 form.
func p256Pub(pub *ecdsa.PublicKey) []byte {
	b, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	return b[1:]
}

// p256Sig is (r, s) in RFC 6605 form, or in halves as wide as the
// wider of r and s beyond 32 bytes.
func p256Sig(r, s *big.Int) []byte {
	w := max(32, (r.BitLen()+7)/8, (s.BitLen()+7)/8)
	b := make([]byte, 2*w)
	r.FillBytes(b[:w])
	s.FillBytes(b[w:])
	return b
}

// p256Agree checks that both paths of k, pub's decoded form, give
// ecdsa.Verify's answer on e and sig, and returns it.
func p256Agree(t *testing.T, pub []byte, e, sig []byte) bool {
	t.Helper()
	want := false
	if q, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, pub...)); err == nil {
		r := new(big.Int).SetBytes(sig[:len(sig)/2])
		s := new(big.Int).SetBytes(sig[len(sig)/2:])
		want = ecdsa.Verify(q, e, r, s)
	}
	k := newP256Key(pub)
	if k == nil {
		if want {
			t.Fatalf("key %x refused, ecdsa.Verify accepts %x", pub, sig)
		}
		return false
	}
	if got := k.verifyWith(nil, e, sig); got != want {
		t.Fatalf("plain path %v, ecdsa.Verify %v: key %x digest %x sig %x", got, want, pub, e, sig)
	}
	if got := k.verifyWith(newP256Table(k), e, sig); got != want {
		t.Fatalf("table path %v, ecdsa.Verify %v: key %x digest %x sig %x", got, want, pub, e, sig)
	}
	return want
}

func TestP256Verify(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e := sha256.Sum256([]byte("www.example.test. A"))
	r, s, err := ecdsa.Sign(rand.Reader, key, e[:])
	if err != nil {
		t.Fatal(err)
	}
	or, os, _ := ecdsa.Sign(rand.Reader, other, e[:])
	n := p256N
	big1 := big.NewInt(1)
	offCurve := p256Pub(&key.PublicKey)
	offCurve[63] ^= 1
	wrong := sha256.Sum256([]byte("www.example.test. AAAA"))
	cases := []struct {
		name  string
		pub   []byte
		e     []byte
		sig   []byte
		valid bool
	}{
		{"good", p256Pub(&key.PublicKey), e[:], p256Sig(r, s), true},
		{"s negated", p256Pub(&key.PublicKey), e[:], p256Sig(r, new(big.Int).Sub(n, s)), true},
		{"r=0", p256Pub(&key.PublicKey), e[:], p256Sig(new(big.Int), s), false},
		{"s=0", p256Pub(&key.PublicKey), e[:], p256Sig(r, new(big.Int)), false},
		{"r=n", p256Pub(&key.PublicKey), e[:], p256Sig(n, s), false},
		{"s=n", p256Pub(&key.PublicKey), e[:], p256Sig(r, n), false},
		{"r+n", p256Pub(&key.PublicKey), e[:], p256Sig(new(big.Int).Add(r, n), s), false},
		{"s+n", p256Pub(&key.PublicKey), e[:], p256Sig(r, new(big.Int).Add(s, n)), false},
		{"r+1", p256Pub(&key.PublicKey), e[:], p256Sig(new(big.Int).Add(r, big1), s), false},
		{"wrong digest", p256Pub(&key.PublicKey), wrong[:], p256Sig(r, s), false},
		{"wrong key", p256Pub(&other.PublicKey), e[:], p256Sig(r, s), false},
		{"other key's signature", p256Pub(&key.PublicKey), e[:], p256Sig(or, os), false},
		{"other key's own", p256Pub(&other.PublicKey), e[:], p256Sig(or, os), true},
		{"off the curve", offCurve, e[:], p256Sig(r, s), false},
		{"short signature", p256Pub(&key.PublicKey), e[:], p256Sig(r, s)[:63], false},
		{"empty signature", p256Pub(&key.PublicKey), e[:], nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := p256Agree(t, c.pub, c.e, c.sig); got != c.valid {
				t.Errorf("verified %v, want %v", got, c.valid)
			}
		})
	}
}

// TestP256VerifyBuildsTable checks that a key gets its table after
// p256TableAfter verifications and verifies the same with it.
func TestP256VerifyBuildsTable(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k := newP256Key(p256Pub(&key.PublicKey))
	for i := range 3 * p256TableAfter {
		if (k.table.Load() != nil) != (i >= p256TableAfter) {
			t.Fatalf("after %d verifications: table %v", i, k.table.Load() != nil)
		}
		e := sha256.Sum256([]byte{byte(i)})
		r, s, _ := ecdsa.Sign(rand.Reader, key, e[:])
		bad := i%2 == 1
		if bad {
			e[0]++
		}
		if k.verify(e[:], p256Sig(r, s)) == bad {
			t.Fatalf("verification %d of a digest changed %v: %v", i, bad, !bad)
		}
	}
}

// TestP256VerifyConcurrent verifies with one key from several goroutines
// across the build of its table, for the race detector.
func TestP256VerifyConcurrent(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k := newP256Key(p256Pub(&key.PublicKey))
	e := sha256.Sum256([]byte("www.example.test. A"))
	r, s, _ := ecdsa.Sign(rand.Reader, key, e[:])
	sig := p256Sig(r, s)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 2 * p256TableAfter {
				if !k.verify(e[:], sig) {
					t.Error("a good signature failed")
				}
			}
		})
	}
	wg.Wait()
	if k.table.Load() == nil {
		t.Error("no table after", 8*p256TableAfter, "verifications")
	}
}

// TestP256BudgetEvicts checks that the budget holds p256MaxTables tables
// and that a key whose table is evicted builds it again later.
func TestP256BudgetEvicts(t *testing.T) {
	var b p256Budget
	var keys []*p256Key
	for range p256MaxTables + 1 {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		k := newP256Key(p256Pub(&key.PublicKey))
		keys = append(keys, k)
		b.admit(newP256Table(k))
	}
	held := 0
	for _, k := range keys {
		if k.table.Load() != nil {
			held++
		}
	}
	if held != p256MaxTables || keys[0].table.Load() != nil {
		t.Fatalf("%d tables held, first key's %v", held, keys[0].table.Load() != nil)
	}
	keys[1].table.Load().used.Store(true)
	b.admit(newP256Table(keys[0]))
	if keys[1].table.Load() == nil || keys[2].table.Load() != nil || keys[0].table.Load() == nil {
		t.Fatal("the clock evicted a used table, or not the next unused one")
	}
}

// p256Sign signs e with d, the nonce drawn from seed: the fuzz target's
// signatures must be reproducible, which ecdsa.Sign's are not.
func p256Sign(d *big.Int, e, seed []byte) []byte {
	h := sha256.Sum256(seed)
	k := new(big.Int).SetBytes(h[:])
	k.Mod(k, p256N)
	if k.Sign() == 0 {
		k.SetInt64(1)
	}
	var kb [32]byte
	R, _ := nistec.NewP256Point().ScalarBaseMult(k.FillBytes(kb[:]))
	x, _ := R.BytesX()
	r := new(big.Int).Mod(new(big.Int).SetBytes(x), p256N)
	s := new(big.Int).Mul(r, d)
	s.Add(s, new(big.Int).SetBytes(e[:min(len(e), 32)]))
	s.Mul(s, k.ModInverse(k, p256N)).Mod(s, p256N)
	return p256Sig(r, s)
}

// FuzzP256Verify compares both paths of verify with ecdsa.Verify, on
// keys and signatures made from the inputs: valid ones (mode&1), valid
// ones with a byte changed (mode&4), raw digests rather than SHA-256 of
// msg (mode&8) and raw key bytes rather than a private key (mode&128).
func FuzzP256Verify(f *testing.F) {
	f.Add([]byte("key"), []byte("msg"), []byte("sig"), uint8(1))
	f.Add([]byte("key"), []byte("msg"), []byte{0x80}, uint8(1|4|0x80>>1))
	f.Add([]byte("key"), []byte("msg"), []byte{1}, uint8(1|4|8))
	f.Add([]byte("other"), make([]byte, 40), []byte("sig"), uint8(1|8))
	f.Add([]byte("key"), []byte("msg"), make([]byte, 64), uint8(0))
	f.Add(make([]byte, 64), []byte("msg"), make([]byte, 64), uint8(128))
	f.Fuzz(func(t *testing.T, seed, msg, sig []byte, mode uint8) {
		e := msg
		if mode&8 == 0 {
			h := sha256.Sum256(msg)
			e = h[:]
		}
		var pub []byte
		valid := false
		if mode&128 != 0 {
			pub = seed
		} else {
			h := sha256.Sum256(seed)
			d := new(big.Int).Mod(new(big.Int).SetBytes(h[:]), p256N)
			if d.Sign() == 0 {
				return
			}
			priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d.FillBytes(make([]byte, 32)))
			if err != nil {
				t.Fatal(err)
			}
			pub = p256Pub(&priv.PublicKey)
			if mode&1 != 0 {
				signed := p256Sign(d, e, sig)
				valid = mode&4 == 0 || len(sig) == 0
				if !valid {
					signed[int(mode>>3)%len(signed)] ^= sig[0] | 1
				}
				sig = signed
			}
		}
		if !p256Agree(t, pub, e, sig) && valid {
			t.Fatalf("a valid signature failed: key %x digest %x sig %x", pub, e, sig)
		}
	})
}

func BenchmarkP256Verify(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e := sha256.Sum256([]byte("www.example.test. A"))
	r, s, _ := ecdsa.Sign(rand.Reader, key, e[:])
	sig := p256Sig(r, s)
	k := newP256Key(p256Pub(&key.PublicKey))
	b.Run("ecdsa", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ecdsa.Verify(&key.PublicKey, e[:], r, s) {
				b.Fatal("does not verify")
			}
		}
	})
	for _, c := range []struct {
		name  string
		table *p256Table
	}{{"plain", nil}, {"table", newP256Table(k)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !k.verifyWith(c.table, e[:], sig) {
					b.Fatal("does not verify")
				}
			}
		})
	}
}

func BenchmarkP256TableBuild(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k := newP256Key(p256Pub(&key.PublicKey))
	b.ReportAllocs()
	for b.Loop() {
		newP256Table(k)
	}
}
