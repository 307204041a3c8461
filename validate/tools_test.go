package validate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Zones signed by signers Bulwark did not write: ldns-signzone (ldnsutils)
// and dnssec-signzone (bind9-utils). Skipped where they are not installed.

const toolInception, toolExpiration = "20260501000000", "20260701000000"

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return strings.TrimSpace(string(out))
}

func loadZone(t *testing.T, path, origin string) *zone {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zp := dns.NewZoneParser(f, origin, path)
	var all []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		all = append(all, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return newZoneFromRRs(origin, all)
}

func writeLeaf(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "example.test.zone")
	if err := os.WriteFile(path, []byte(strings.Join(leafData, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func ldnsSigned(t *testing.T, alg, mode string) *zone {
	dir := t.TempDir()
	zf := writeLeaf(t, dir)
	args := []string{"-a", alg, "-k"}
	if alg == "RSASHA256" {
		args = append(args, "-b", "1024")
	}
	key := run(t, dir, "ldns-keygen", append(args, leafName)...)
	sign := []string{"-i", toolInception, "-e", toolExpiration, "-f", "out"}
	if mode != "NSEC" {
		sign = append(sign, "-n", "-s", "ABCD", "-t", "0")
	}
	if mode == "NSEC3OptOut" {
		sign = append(sign, "-p")
	}
	run(t, dir, "ldns-signzone", append(sign, zf, key)...)
	return loadZone(t, filepath.Join(dir, "out"), leafName)
}

func bindSigned(t *testing.T, alg, mode string) *zone {
	dir := t.TempDir()
	zf := writeLeaf(t, dir)
	bits := []string{}
	if alg == "RSASHA256" {
		bits = []string{"-b", "1024"}
	}
	run(t, dir, "dnssec-keygen", append(append([]string{"-q", "-K", ".", "-a", alg, "-f", "KSK", "-n", "ZONE"}, bits...), leafName)...)
	run(t, dir, "dnssec-keygen", append(append([]string{"-q", "-K", ".", "-a", alg, "-n", "ZONE"}, bits...), leafName)...)
	sign := []string{"-P", "-S", "-K", ".", "-s", toolInception, "-e", toolExpiration, "-o", leafName, "-f", "out"}
	if mode != "NSEC" {
		sign = append(sign, "-3", "ABCD", "-H", "0")
	}
	if mode == "NSEC3OptOut" {
		sign = append(sign, "-A")
	}
	run(t, dir, "dnssec-signzone", append(sign, zf)...)
	return loadZone(t, filepath.Join(dir, "out"), leafName)
}

func TestRepliesFromZonesSignedByLdnsAndBIND(t *testing.T) {
	signers := map[string]func(*testing.T, string, string) *zone{"ldns-signzone": ldnsSigned, "dnssec-signzone": bindSigned}
	for tool, signer := range signers {
		if _, err := exec.LookPath(tool); err != nil {
			t.Logf("%s not installed: skipped", tool)
			continue
		}
		for _, alg := range []string{"RSASHA256", "ECDSAP256SHA256", "ED25519"} {
			for _, mode := range []string{"NSEC", "NSEC3", "NSEC3OptOut"} {
				t.Run(tool+"/"+alg+"/"+mode, func(t *testing.T) {
					w, anchors := buildWorld(t, worldOpts{leaf: signer(t, alg, mode)})
					runCases(t, w, anchors, replyCases, mode == "NSEC3OptOut")
				})
			}
		}
	}
}
