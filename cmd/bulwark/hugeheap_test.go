package main

import (
	"errors"
	"io/fs"
	"testing"
)

func TestHeapHugePagesSaysWhyItAdvisesNothing(t *testing.T) {
	missing := func(string) ([]byte, error) { return nil, fs.ErrNotExist }
	file := func(content string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if name != thpModeFile {
				return nil, errors.New("read " + name)
			}
			return []byte(content), nil
		}
	}
	for _, tc := range []struct {
		name string
		off  bool
		read func(string) ([]byte, error)
		want string
	}{
		{"turned off", true, file("always [madvise] never\n"), "off (heap-huge-pages: no)"},
		{"kernel without them", false, missing, "not available (file does not exist)"},
		{"kernel gives them everywhere", false, file("[always] madvise never\n"), "the kernel's mode: always"},
		{"kernel gives none", false, file("always madvise [never]\n"), "the kernel's mode: never"},
		{"unreadable mode", false, file("always madvise never\n"),
			`not available (` + thpModeFile + `: no mode in brackets in "always madvise never")`},
		{"unclosed bracket", false, file("always [madvise"),
			`not available (` + thpModeFile + `: no mode in brackets in "always [madvise")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := defaultSettings()
			s.heapHugePages = !tc.off
			if got := heapHugePages(&s, tc.read); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
