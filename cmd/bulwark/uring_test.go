package main

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestUpstreamSocketsUseTheRingOnlyWhereSystemCallsAreDear(t *testing.T) {
	meltdown := func(content string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if name != meltdownFile {
				return nil, errors.New("read " + name)
			}
			return []byte(content), nil
		}
	}
	missing := func(string) ([]byte, error) { return nil, fs.ErrNotExist }
	ringWorks := func() error { return nil }
	noRing := func() error { return errors.New("io_uring_setup: operation not permitted") }
	for _, tc := range []struct {
		name    string
		choice  ringChoice
		read    func(string) ([]byte, error)
		support func() error
		ring    bool
		text    string
	}{
		{"auto with page table isolation", ringAuto, meltdown("Mitigation: PTI\n"), ringWorks, true,
			"io_uring, one system call per socket (upstream-io-uring: auto; the kernel isolates page tables)"},
		{"auto on a CPU Meltdown does not affect", ringAuto, meltdown("Not affected\n"), ringWorks, false,
			"one system call per step (upstream-io-uring: auto; the kernel does not isolate page tables)"},
		{"auto with isolation turned off", ringAuto, meltdown("Vulnerable\n"), ringWorks, false,
			"one system call per step (upstream-io-uring: auto; the kernel does not isolate page tables)"},
		{"auto without the report", ringAuto, missing, ringWorks, false,
			"one system call per step (upstream-io-uring: auto; page table isolation unknown: file does not exist)"},
		{"auto with isolation but no ring", ringAuto, meltdown("Mitigation: PTI\n"), noRing, false,
			"one system call per step (upstream-io-uring: auto; the kernel isolates page tables; io_uring_setup: operation not permitted)"},
		{"yes whatever the isolation", ringYes, meltdown("Not affected\n"), ringWorks, true,
			"io_uring, one system call per socket (upstream-io-uring: yes)"},
		{"yes without a ring", ringYes, missing, noRing, false,
			"one system call per step (upstream-io-uring: yes; io_uring_setup: operation not permitted)"},
		{"no", ringNo, meltdown("Mitigation: PTI\n"), ringWorks, false,
			"one system call per step (upstream-io-uring: no)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := chooseUpstreamSockets(tc.choice, tc.read, tc.support)
			if got.ring != tc.ring || got.text != tc.text {
				t.Errorf("got %v %q\nwant %v %q", got.ring, got.text, tc.ring, tc.text)
			}
		})
	}
}

func TestUpstreamIOURingTakesAutoYesOrNo(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  ringChoice
		err   string
	}{
		{"auto", ringAuto, ""},
		{"AUTO", ringAuto, ""},
		{"yes", ringYes, ""},
		{"on", ringYes, ""},
		{"no", ringNo, ""},
		{"false", ringNo, ""},
		{"sometimes", ringAuto, `"sometimes" is not auto, yes or no`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			s := defaultSettings()
			err := parseConfig(strings.NewReader("upstream-io-uring: "+tc.value+"\n"), "bulwark.conf", &s)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "bulwark.conf:1") {
					t.Fatalf("error %v, want one naming bulwark.conf:1 and %s", err, tc.err)
				}
				return
			}
			if err != nil || s.ioURing != tc.want {
				t.Errorf("got %v (%v), want %v", s.ioURing, err, tc.want)
			}
		})
	}
}
