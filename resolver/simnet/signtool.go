package simnet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// RunSigner runs a signing tool Bulwark did not write (ldns-keygen,
// ldns-signzone, dnssec-keygen, dnssec-signzone) in dir, bounded by a
// minute, and returns its trimmed output.
func RunSigner(dir, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %v: %w\n%s", name, args, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// ReadKSK returns the key with the SEP flag (257) among the K*.key files
// such a tool wrote into dir.
func ReadKSK(dir string) (*dns.DNSKEY, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "K*.key"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, ";") {
				continue
			}
			rr, err := dns.NewRR(line)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if k, ok := rr.(*dns.DNSKEY); ok && k.Flags == 257 {
				return k, nil
			}
		}
	}
	return nil, fmt.Errorf("no KSK among %v", files)
}
