package cache

import (
	"errors"
	"testing"
)

func TestAnswerIsAdmittedAtItsSecondPut(t *testing.T) {
	msg := packedAnswer(t, "a.example.", 300, false)
	key := answerKey(t, "a.example.", 0)
	tests := []struct {
		name string
		cfg  AnswerConfig
		// between runs after the first Put, before the second.
		between func(c *AnswerCache)
		want    []error // each Put's result
	}{
		{name: "FirstRefusedSecondStored", want: []error{ErrNotAdmitted, nil}},
		{name: "AdmitFirstStoresAtOnce", cfg: AnswerConfig{AdmitFirst: true}, want: []error{nil, nil}},
		{name: "FlushForgetsTheQuestion", between: (*AnswerCache).Flush, want: []error{ErrNotAdmitted, ErrNotAdmitted}},
		{name: "HeldAnswerIsReplacedAfterTheFilterIsCleared", between: func(c *AnswerCache) {
			if err := c.Put(key, msg, AnswerMeta{}, t0); err != nil {
				t.Fatal(err)
			}
			c.door.clear()
		}, want: []error{ErrNotAdmitted, nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewAnswerCache(tc.cfg)
			for i, want := range tc.want {
				if i == 1 && tc.between != nil {
					tc.between(c)
				}
				if err := c.Put(key, msg, AnswerMeta{}, t0); !errors.Is(err, want) {
					t.Fatalf("Put %d: %v, want %v", i+1, err, want)
				}
				_, held := c.Get(key, t0)
				if held != (want == nil) {
					t.Fatalf("after Put %d: held %v", i+1, held)
				}
			}
		})
	}
}

// TestDoorkeeperForgetsOnceAQuarterOfItsBitsAreSet checks the window: a
// question stays seen while the filter fills and is forgotten when it is
// cleared, which bounds both the false "seen" rate and the memory.
func TestDoorkeeperForgetsOnceAQuarterOfItsBitsAreSet(t *testing.T) {
	d := newDoorkeeper()
	const first = 0x0123456789abcdef
	d.admit(first)
	// A multiplicative sequence spreads over the filter like a hash.
	h := uint64(first)
	cleared := false
	for i := range doorkeeperBits {
		h = h*0x9e3779b97f4a7c15 + 1
		d.admit(h)
		if d.set.Load() == 0 {
			cleared = true
			t.Logf("cleared after %d questions", i+1)
			break
		}
		if i%1000 == 0 && !d.seen(first) {
			t.Fatalf("forgot the first question after %d others, before a clear", i)
		}
	}
	if !cleared {
		t.Fatal("never cleared")
	}
	if d.seen(first) {
		t.Error("the first question is still seen after the clear")
	}
}

// seen reports, without marking, whether h was seen.
func (d *doorkeeper) seen(h uint64) bool {
	i, j := doorkeeperIndexes(h)
	return d.words[i/64].Load()&(1<<(i%64)) != 0 && d.words[j/64].Load()&(1<<(j%64)) != 0
}
