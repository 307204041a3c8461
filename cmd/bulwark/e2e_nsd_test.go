package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// needTool skips the test when an external program is missing, unless
// BULWARK_E2E=require (as .ci/run sets) makes that a failure.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("BULWARK_E2E") == "require" {
			t.Fatalf("%s is required (BULWARK_E2E=require) but missing: %v", name, err)
		}
		t.Skipf("%s not installed; set BULWARK_E2E=require to make this a failure", name)
	}
}

// nsdWorld is a root, a TLD and leaf zones, each on its own NSD process so
// that every level answers only with a referral to the next.
type nsdWorld struct {
	dir    string
	prefix string // "127.54.X." for this run
}

func (w nsdWorld) addr(host int) string { return fmt.Sprintf("%s%d", w.prefix, host) }

// zones returns, per server host number, its zone files. Server 4 serves
// the target of the cross-zone CNAME, the zone delegated without glue and
// alt., the TLD of that zone's name server.
func (w nsdWorld) zones() map[int]map[string]string {
	soa := "@ SOA ns hostmaster 1 3600 600 86400 300\n"
	return map[int]map[string]string{
		1: {".": "$TTL 3600\n. SOA ns1.test. hostmaster.test. 1 3600 600 86400 300\n. NS ns1.test.\n" +
			"test. NS ns.nic.test.\nns.nic.test. A " + w.addr(2) + "\n" +
			"alt. NS ns.alt.\nns.alt. A " + w.addr(4) + "\n" +
			"ns1.test. A " + w.addr(1) + "\n"},
		2: {"test.": "$TTL 3600\n" + soa + "@ NS ns.nic\nns.nic A " + w.addr(2) + "\n" +
			"example NS ns1.example\nns1.example A " + w.addr(3) + "\n" +
			"other NS ns.other\nns.other A " + w.addr(4) + "\n"},
		3: {"example.test.": "$TTL 300\n" + soa + "@ NS ns1\nns1 A " + w.addr(3) + "\n" +
			"www A 192.0.2.10\nwww AAAA 2001:db8::10\n@ MX 10 mail\nmail A 192.0.2.25\n" +
			"alias CNAME web.other.test.\nsub NS dns.alt.\n"},
		4: {
			"other.test.":       "$TTL 300\n" + soa + "@ NS ns\nns A " + w.addr(4) + "\nweb A 192.0.2.20\n",
			"sub.example.test.": "$TTL 300\n" + soa + "@ NS dns.alt.\nhost A 192.0.2.30\n",
			"alt.":              "$TTL 300\n" + soa + "@ NS ns\nns A " + w.addr(4) + "\ndns A " + w.addr(4) + "\n",
		},
	}
}

// nsdConf writes the zones and configuration of one server.
func (w nsdWorld) nsdConf(t *testing.T, host int, zones map[string]string) string {
	t.Helper()
	dir := filepath.Join(w.dir, fmt.Sprintf("nsd%d", host))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var zoneBlocks strings.Builder
	for name, text := range zones {
		file := strings.Trim(name, ".") + "root.zone"
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&zoneBlocks, "zone:\n  name: %q\n  zonefile: %q\n", name, file)
	}
	conf := fmt.Sprintf(`server:
  ip-address: %s
  port: 53
  zonesdir: %q
  pidfile: %q
  database: ""
  zonelistfile: %q
  xfrdfile: %q
  xfrdir: %q
  username: ""
  chroot: ""
  server-count: 1
  do-ip6: no
  rrl-ratelimit: 0
  verbosity: 1
remote-control:
  control-enable: no
%s`, w.addr(host), dir, filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "zone.list"),
		filepath.Join(dir, "xfrd.state"), dir, zoneBlocks.String())
	path := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProcess starts name and stops it at the end of the test: SIGTERM,
// then SIGKILL after 5 s. It reports a non-zero exit after SIGTERM when
// cleanExit is set.
func startProcess(t *testing.T, cleanExit bool, name string, args ...string) *lockedBuffer {
	t.Helper()
	cmd := exec.Command(name, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if cleanExit && err != nil {
				t.Errorf("%s did not exit cleanly on SIGTERM: %v\n%s", name, err, out)
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%s ignored SIGTERM for 5 s; killed", name)
		}
	})
	return out
}

// waitUntil polls cond every 100 ms for at most 10 s.
func waitUntil(t *testing.T, what string, out *lockedBuffer, cond func() bool) {
	t.Helper()
	for range 100 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 10 s; output:\n%s", what, out)
}

func answers(addr string) bool {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeSOA)
	_, _, err := c.Exchange(m, net.JoinHostPort(addr, "53"))
	return err == nil
}

func freePort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// startWorld starts the four NSD servers and returns the root hints file.
func startWorld(t *testing.T) string {
	t.Helper()
	w := nsdWorld{dir: t.TempDir(), prefix: fmt.Sprintf("127.54.%d.", 1+os.Getpid()%250)}
	for host, zones := range w.zones() {
		conf := w.nsdConf(t, host, zones)
		out := startProcess(t, false, "nsd", "-d", "-c", conf)
		waitUntil(t, "nsd on "+w.addr(host), out, func() bool { return answers(w.addr(host)) })
	}
	hints := filepath.Join(w.dir, "named.root")
	text := ". 3600000 NS ns1.test.\nns1.test. 3600000 A " + w.addr(1) + "\n"
	if err := os.WriteFile(hints, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return hints
}

var digStatus = regexp.MustCompile(`status: ([A-Z]+)`)

// dig asks the daemon and returns the status and the answer records with
// the TTL left out ("www.example.test. IN A 192.0.2.10").
func dig(t *testing.T, port int, name, qtype string, tcp bool) (string, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args := []string{"@127.0.0.1", "-p", fmt.Sprint(port), "+time=10", "+tries=1", "+noall", "+comments", "+answer", name, qtype}
	if tcp {
		args = append(args, "+tcp")
	}
	out, err := exec.CommandContext(ctx, "dig", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s %s: %v\n%s", name, qtype, err, out)
	}
	// The transcript, for go test -v (the closing notes quote it).
	t.Logf("$ dig %s\n%s", strings.Join(args, " "), out)
	m := digStatus.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("dig %s %s: no status in\n%s", name, qtype, out)
	}
	var rrs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(line, ";") {
			continue
		}
		rrs = append(rrs, strings.Join(append([]string{f[0]}, f[2:]...), " "))
	}
	return m[1], rrs
}

func TestDaemonResolvesAnNSDHierarchy(t *testing.T) {
	needTool(t, "nsd")
	needTool(t, "dig")
	if os.Geteuid() != 0 {
		if os.Getenv("BULWARK_E2E") == "require" {
			t.Fatal("NSD must bind port 53 on 127.54.x.y: run as root")
		}
		t.Skip("NSD must bind port 53 on 127.54.x.y: not root")
	}
	hints := startWorld(t)
	port := freePort(t)
	out := startProcess(t, true, bulwarkBinary(t), "-listen", fmt.Sprintf("127.0.0.1:%d", port),
		"-root-hints", hints, "-validate=false", "-log-level", "debug")
	waitUntil(t, "bulwark", out, func() bool { return strings.Contains(out.String(), "bulwark started") })

	tests := []struct {
		name, qname, qtype, status string
		tcp                        bool
		want                       []string
	}{
		{name: "A", qname: "www.example.test.", qtype: "A", status: "NOERROR", want: []string{"www.example.test. IN A 192.0.2.10"}},
		{name: "AAAA", qname: "www.example.test.", qtype: "AAAA", status: "NOERROR", want: []string{"www.example.test. IN AAAA 2001:db8::10"}},
		{name: "MX", qname: "example.test.", qtype: "MX", status: "NOERROR", want: []string{"example.test. IN MX 10 mail.example.test."}},
		{name: "CNAMEChainAcrossZones", qname: "alias.example.test.", qtype: "A", status: "NOERROR",
			want: []string{"alias.example.test. IN CNAME web.other.test.", "web.other.test. IN A 192.0.2.20"}},
		{name: "NXDOMAIN", qname: "missing.example.test.", qtype: "A", status: "NXDOMAIN"},
		{name: "NODATA", qname: "www.example.test.", qtype: "TXT", status: "NOERROR"},
		{name: "OverTCP", qname: "mail.example.test.", qtype: "A", tcp: true, status: "NOERROR", want: []string{"mail.example.test. IN A 192.0.2.25"}},
		{name: "DelegationWithoutGlue", qname: "host.sub.example.test.", qtype: "A", status: "NOERROR", want: []string{"host.sub.example.test. IN A 192.0.2.30"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, rrs := dig(t, port, tc.qname, tc.qtype, tc.tcp)
			if status != tc.status || strings.Join(rrs, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("%s %s: %s %q\nwant %s %q\nbulwark log:\n%s", tc.qname, tc.qtype, status, rrs, tc.status, tc.want, out)
			}
		})
	}
}
