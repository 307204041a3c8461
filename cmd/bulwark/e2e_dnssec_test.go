package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
)

// The daemon against a signed NSD hierarchy (issue #4): the root and test.
// signed by ldns-signzone, example.test. by dnssec-signzone, broken.test.
// by ldns-signzone with signatures that expired two days ago. bulwark runs
// with -trust-anchor set to the test root's DS; dig +dnssec and delv ask
// it. Run with -v to see the transcript.

// signTool runs a signing tool (simnet.RunSigner).
func signTool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out, err := simnet.RunSigner(dir, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// kskOf reads the SEP key from the K*.key files in dir.
func kskOf(t *testing.T, dir string) *dns.DNSKEY {
	t.Helper()
	k, err := simnet.ReadKSK(dir)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signedZone is a signed zone's text and the DS its parent publishes.
type signedZone struct {
	text string
	ds   *dns.DS
}

const dateStamp = "20060102150405"

// ldnsSign signs with one ECDSAP256SHA256 KSK; nsec3 uses NSEC3 with no
// extra iterations (RFC 9276).
func ldnsSign(t *testing.T, origin, text string, nsec3 bool, from, until time.Time) signedZone {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "zone"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	base := signTool(t, dir, "ldns-keygen", "-a", "ECDSAP256SHA256", "-k", origin)
	args := []string{"-i", from.Format(dateStamp), "-e", until.Format(dateStamp), "-f", "signed"}
	if nsec3 {
		args = append(args, "-n", "-s", "beef", "-t", "0")
	}
	signTool(t, dir, "ldns-signzone", append(args, "zone", base)...)
	return readSigned(t, dir)
}

// bindSign signs with an ED25519 KSK and ZSK and NSEC3 (not opt-out, whose
// wildcard answers are Insecure).
func bindSign(t *testing.T, origin, text string, from, until time.Time) signedZone {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "zone"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	signTool(t, dir, "dnssec-keygen", "-q", "-K", ".", "-a", "ED25519", "-f", "KSK", "-n", "ZONE", origin)
	signTool(t, dir, "dnssec-keygen", "-q", "-K", ".", "-a", "ED25519", "-n", "ZONE", origin)
	signTool(t, dir, "dnssec-signzone", "-S", "-K", ".", "-s", from.Format(dateStamp), "-e", until.Format(dateStamp),
		"-3", "beef", "-H", "0", "-o", origin, "-f", "signed", "zone")
	return readSigned(t, dir)
}

func readSigned(t *testing.T, dir string) signedZone {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "signed"))
	if err != nil {
		t.Fatal(err)
	}
	return signedZone{text: string(b), ds: kskOf(t, dir).ToDS(dns.SHA256)}
}

// signedWorld signs the zones, starts one NSD per server and returns the
// root hints file and the trust anchor file (the root's DS).
func signedWorld(t *testing.T) (hints, anchor string, rootDS *dns.DS) {
	t.Helper()
	w := nsdWorld{dir: t.TempDir(), prefix: fmt.Sprintf("127.58.%d.", 1+os.Getpid()%250)}
	now := time.Now().UTC()
	from, until := now.Add(-24*time.Hour), now.Add(30*24*time.Hour)
	soa := "@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300\n@ 3600 IN NS ns\nns 3600 IN A "
	example := bindSign(t, "example.test.", "$ORIGIN example.test.\n$TTL 300\n"+soa+w.addr(3)+"\n"+
		"www A 192.0.2.10\nwww AAAA 2001:db8::10\n*.wild A 192.0.2.11\n", from, until)
	broken := ldnsSign(t, "broken.test.", "$ORIGIN broken.test.\n$TTL 300\n"+soa+w.addr(4)+"\nwww A 192.0.2.40\n",
		false, now.Add(-30*24*time.Hour), now.Add(-48*time.Hour))
	tld := ldnsSign(t, "test.", "$ORIGIN test.\n$TTL 3600\n"+soa+w.addr(2)+"\n"+
		"example NS ns.example\nns.example A "+w.addr(3)+"\n"+example.ds.String()+"\n"+
		"broken NS ns.broken\nns.broken A "+w.addr(4)+"\n"+broken.ds.String()+"\n", true, from, until)
	root := ldnsSign(t, ".", "$TTL 86400\n. SOA a.root-servers. hostmaster.root-servers. 1 3600 600 86400 300\n"+
		". NS a.root-servers.\na.root-servers. A "+w.addr(1)+"\n"+
		"test. NS ns.test.\nns.test. A "+w.addr(2)+"\n"+tld.ds.String()+"\n", false, from, until)
	zones := map[int]map[string]string{1: {".": root.text}, 2: {"test.": tld.text},
		3: {"example.test.": example.text}, 4: {"broken.test.": broken.text}}
	for host, z := range zones {
		out := startProcess(t, false, "nsd", "-d", "-c", w.nsdConf(t, host, z))
		waitUntil(t, "nsd on "+w.addr(host), out, func() bool { return answers(w.addr(host)) })
	}
	hints = filepath.Join(w.dir, "named.root")
	anchor = filepath.Join(w.dir, "anchor.ds")
	if err := os.WriteFile(hints, []byte(". 3600000 NS a.root-servers.\na.root-servers. 3600000 A "+w.addr(1)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(anchor, []byte(root.ds.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return hints, anchor, root.ds
}

var (
	digFlags = regexp.MustCompile(`;; flags:([a-z ]*);`)
	digEDE   = regexp.MustCompile(`; EDE: (\d+)`)
)

// digDNSSEC runs dig +dnssec against the daemon, logs the transcript and
// returns the status, header flags and EDE code ("" when none).
func digDNSSEC(t *testing.T, port int, name, qtype string, extra ...string) (status, flags, ede string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args := append([]string{"@127.0.0.1", "-p", fmt.Sprint(port), "+dnssec", "+time=10", "+tries=1", "+nocmd", "+multiline"}, extra...)
	args = append(args, name, qtype)
	out, err := exec.CommandContext(ctx, "dig", args...).CombinedOutput()
	t.Logf("$ dig %s\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("dig %s %s: %v", name, qtype, err)
	}
	s := digStatus.FindStringSubmatch(string(out))
	f := digFlags.FindStringSubmatch(string(out))
	if s == nil || f == nil {
		t.Fatalf("dig %s %s: no status or flags", name, qtype)
	}
	if e := digEDE.FindStringSubmatch(string(out)); e != nil {
		ede = e[1]
	}
	return s[1], " " + f[1] + " ", ede
}

func TestE2EDNSSECDaemonValidatesASignedNSDHierarchy(t *testing.T) {
	for _, tool := range []string{"nsd", "dig", "ldns-signzone", "ldns-keygen", "dnssec-signzone", "dnssec-keygen"} {
		needTool(t, tool)
	}
	if os.Geteuid() != 0 {
		if os.Getenv("BULWARK_E2E") == "require" {
			t.Fatal("NSD must bind port 53 on 127.58.x.y: run as root")
		}
		t.Skip("NSD must bind port 53 on 127.58.x.y: not root")
	}
	hints, anchor, rootDS := signedWorld(t)
	port := freePort(t)
	out := startProcess(t, true, bulwarkBinary(t), "-listen", fmt.Sprintf("127.0.0.1:%d", port),
		"-root-hints", hints, "-trust-anchor", anchor, "-log-level", "debug")
	waitUntil(t, "bulwark", out, func() bool { return strings.Contains(out.String(), "bulwark started") })

	tests := []struct {
		name, qname, qtype, status, ede string
		ad                              bool
		extra                           []string
	}{
		{name: "SignedNameIsAD", qname: "www.example.test.", qtype: "A", status: "NOERROR", ad: true},
		{name: "WildcardIsAD", qname: "any.wild.example.test.", qtype: "A", status: "NOERROR", ad: true},
		{name: "NODATAIsAD", qname: "www.example.test.", qtype: "TXT", status: "NOERROR", ad: true},
		{name: "SignedTLDNXDOMAINIsAD", qname: "missing.test.", qtype: "A", status: "NXDOMAIN", ad: true},
		{name: "ExpiredSignaturesAreSERVFAILWithEDE7", qname: "www.broken.test.", qtype: "A", status: "SERVFAIL", ede: "7"},
		{name: "CheckingDisabledServesTheExpiredData", qname: "www.broken.test.", qtype: "A", status: "NOERROR", extra: []string{"+cd"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, flags, ede := digDNSSEC(t, port, tc.qname, tc.qtype, tc.extra...)
			if status != tc.status || strings.Contains(flags, " ad ") != tc.ad || ede != tc.ede {
				t.Errorf("%s %s: %s flags[%s] EDE %q, want %s AD=%v EDE %q\nbulwark log:\n%s",
					tc.qname, tc.qtype, status, flags, ede, tc.status, tc.ad, tc.ede, out)
			}
		})
	}
	t.Run("DelvValidatesThroughTheDaemon", func(t *testing.T) {
		delvChecks(t, port, rootDS)
	})
}

// delvChecks asks delv, which validates itself from the test root's DS
// with CD set towards bulwark, for a signed and a broken name.
func delvChecks(t *testing.T, port int, rootDS *dns.DS) {
	if _, err := exec.LookPath("delv"); err != nil {
		t.Skip("delv not installed")
	}
	conf := filepath.Join(t.TempDir(), "anchor.conf")
	text := fmt.Sprintf("trust-anchors {\n  \".\" static-ds %d %d %d \"%s\";\n};\n",
		rootDS.KeyTag, rootDS.Algorithm, rootDS.DigestType, strings.ToUpper(rootDS.Digest))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, want string }{
		{"www.example.test.", "; fully validated"},
		{"www.broken.test.", "resolution failed"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		args := []string{"@127.0.0.1", "-p", fmt.Sprint(port), "-a", conf, "+root=.", c.name, "A"}
		out, _ := exec.CommandContext(ctx, "delv", args...).CombinedOutput()
		cancel()
		t.Logf("$ delv %s\n%s", strings.Join(args, " "), out)
		if !strings.Contains(string(out), c.want) {
			t.Errorf("delv %s: want %q in the output", c.name, c.want)
		}
	}
}
