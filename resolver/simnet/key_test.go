package simnet

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"
)

func TestCachedKeyIsMadeOncePerLabelAndRefusesUnknownAlgorithms(t *testing.T) {
	a, err := CachedKey("t", "example.test.", dns.ED25519)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := CachedKey("t", "example.test.", dns.ED25519)
	c, _ := CachedKey("u", "example.test.", dns.ED25519)
	if a.RR != b.RR || a.RR.PublicKey == c.RR.PublicKey || a.RR.Flags != 257 {
		t.Fatalf("same label gave %v and %v, other label %v", a.RR, b.RR, c.RR)
	}
	if _, err := CachedKey("t", "example.test.", dns.ED448); err == nil {
		t.Fatal("ED448 key made, want an error: simnet knows no key size for it")
	}
}

func TestReadKSKFindsTheSEPKeyAndNamesWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadKSK(dir); err == nil {
		t.Fatal("no key files, no error")
	}
	ksk, _ := CachedKey("ksk", "example.test.", dns.ED25519)
	zsk := *ksk.RR
	zsk.Flags = 256
	files := map[string]string{
		"Kexample.test.+015+00001.key": "; zone-signing key\n" + zsk.String() + "\n",
		"Kexample.test.+015+00002.key": ksk.RR.String() + "\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadKSK(dir)
	if err != nil || got.PublicKey != ksk.RR.PublicKey || got.Flags != 257 {
		t.Fatalf("ReadKSK = %v, %v; want the flags-257 key", got, err)
	}
}
