package transport

import (
	"io/fs"
	"testing"
)

func TestIOURingIsWantedOnlyWhereSystemCallsAreDear(t *testing.T) {
	isolation := func(isolated bool, err error) func() (bool, error) {
		return func() (bool, error) { return isolated, err }
	}
	for _, tc := range []struct {
		name   string
		choice IOURing
		pti    func() (bool, error)
		want   bool
		why    string
	}{
		{"auto with page table isolation", IOURingAuto, isolation(true, nil), true,
			"; the kernel isolates page tables"},
		{"auto without it", IOURingAuto, isolation(false, nil), false,
			"; the kernel does not isolate page tables"},
		{"auto without the kernel's report", IOURingAuto, isolation(false, fs.ErrNotExist), false,
			"; page table isolation unknown: file does not exist"},
		{"on whatever the isolation", IOURingOn, isolation(false, nil), true, ""},
		{"off whatever the isolation", IOURingOff, isolation(true, nil), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, why := tc.choice.wanted(tc.pti)
			if want != tc.want || why != tc.why {
				t.Errorf("got %v %q, want %v %q", want, why, tc.want, tc.why)
			}
		})
	}
}

// ringMode is the IOURing that asks for the ring, or forbids it.
func ringMode(ring bool) IOURing {
	if ring {
		return IOURingOn
	}
	return IOURingOff
}
