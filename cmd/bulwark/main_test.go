package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the bulwark binary built once for the tests that run it as
// a process, as a person or a CI job would.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bulwark-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// bulwarkBinary builds ./cmd/bulwark once and returns its path.
func bulwarkBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "bulwark")
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// runBulwark runs the binary to its exit, which must come within 10 s.
func runBulwark(t *testing.T, args ...string) (code int, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bulwarkBinary(t), args...)
	var buf bytes.Buffer
	cmd.Stderr = &buf
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, buf.String()
	case errors.As(err, &exit) && ctx.Err() == nil:
		return exit.ExitCode(), buf.String()
	}
	t.Fatalf("bulwark %v: %v\n%s", args, err, buf.String())
	return 0, ""
}

func TestListenOnABoundAddressExitsWithAHint(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.LocalAddr().String()
	code, stderr := runBulwark(t, "-listen", addr, "-validate=false")
	if code == 0 {
		t.Fatalf("exit code 0 on a bound address; stderr:\n%s", stderr)
	}
	for _, want := range []string{"cannot listen on " + addr, "address already in use", "-listen 127.0.0.1:5353"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestPrivilegedPortMessageSaysWhatToDo(t *testing.T) {
	err := bindError("127.0.0.1:53", &net.OpError{Op: "listen", Net: "udp", Err: os.NewSyscallError("bind", syscall.EACCES)})
	for _, want := range []string{"cannot listen on 127.0.0.1:53", "permission denied", "root", "setcap cap_net_bind_service=+ep", "-listen 127.0.0.1:5353"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
}

func TestBrokenConfigLineExitsNamingTheLine(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "bulwark.conf")
	text := "# test\nlisten: 127.0.0.1:5353\nmax-ttl: forever\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := runBulwark(t, "-config", conf)
	if code == 0 {
		t.Fatalf("exit code 0 with a broken config; stderr:\n%s", stderr)
	}
	if want := conf + `:3: max-ttl: "forever"`; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}

func TestUnknownFlagExitsWithUsage(t *testing.T) {
	code, stderr := runBulwark(t, "-listen-address", "127.0.0.1:53")
	if code != 2 || !strings.Contains(stderr, "-root-hints FILE") {
		t.Errorf("exit %d, stderr:\n%s\nwant 2 and the usage", code, stderr)
	}
}

func TestOnlyAMissingIPv6LoopbackIsForgiven(t *testing.T) {
	notAvail := &net.OpError{Op: "listen", Net: "udp", Err: os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}
	inUse := &net.OpError{Op: "listen", Net: "udp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	tests := []struct {
		addr string
		err  error
		want bool
	}{
		{"[::1]:53", notAvail, true},
		{"[::1]:53", &net.OpError{Op: "listen", Net: "udp", Err: os.NewSyscallError("socket", syscall.EAFNOSUPPORT)}, true},
		{"[::1]:53", inUse, false},
		{"127.0.0.1:53", notAvail, false},
	}
	for _, tc := range tests {
		if got := isIPv6(tc.addr) && noIPv6(tc.err); got != tc.want {
			t.Errorf("%s %v: forgiven %v, want %v", tc.addr, tc.err, got, tc.want)
		}
	}
}
