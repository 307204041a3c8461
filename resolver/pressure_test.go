package resolver

import (
	"fmt"
	"testing"
	"time"
)

func TestZonePressureCounter(t *testing.T) {
	cfg := ZonePressure{Threshold: 10, Window: time.Minute, Hold: 10 * time.Minute, MaxZones: 3}
	t0 := time.Unix(1_800_000_000, 0)
	type note struct {
		zone string
		n    int
		at   time.Duration // after t0
	}
	tests := []struct {
		name      string
		cfg       ZonePressure
		notes     []note
		escalated []bool // per note
		pending   map[string]bool
		zones     int
	}{
		{"BelowTheThresholdNothingHappens", cfg,
			[]note{{"bank.test.", 4, 0}, {"bank.test.", 5, time.Second}},
			[]bool{false, false}, map[string]bool{"bank.test.": false}, 1},
		{"ReachingTheThresholdEscalatesOnce", cfg,
			[]note{{"bank.test.", 6, 0}, {"bank.test.", 4, time.Second}, {"bank.test.", 10, 2 * time.Second}},
			// the third would escalate again, but the first re-validation is still running
			[]bool{false, true, false}, map[string]bool{"bank.test.": true}, 1},
		{"OneExchangeAboveTheThresholdEscalates", cfg,
			[]note{{"bank.test.", 50, 0}},
			[]bool{true}, map[string]bool{"bank.test.": true}, 1},
		{"CountsOfAPassedWindowAreForgotten", cfg,
			[]note{{"bank.test.", 9, 0}, {"bank.test.", 9, 61 * time.Second}},
			[]bool{false, false}, map[string]bool{"bank.test.": false}, 1},
		{"ZonesAreCountedApart", cfg,
			[]note{{"bank.test.", 9, 0}, {"other.test.", 9, 0}},
			[]bool{false, false}, map[string]bool{"bank.test.": false, "other.test.": false}, 2},
		{"PendingEndsAfterTheHold", cfg,
			[]note{{"bank.test.", 10, 0}, {"other.test.", 1, 11 * time.Minute}},
			[]bool{true, false}, map[string]bool{"bank.test.": false}, 2},
		{"ZeroThresholdIsOff", ZonePressure{Window: time.Minute, Hold: time.Minute, MaxZones: 3},
			[]note{{"bank.test.", 1000, 0}},
			[]bool{false}, map[string]bool{"bank.test.": false}, 0},
		{"TableKeepsAtMostMaxZones", cfg,
			[]note{{"a.test.", 1, 0}, {"b.test.", 1, time.Second}, {"c.test.", 1, 2 * time.Second}, {"d.test.", 1, 3 * time.Second}},
			[]bool{false, false, false, false}, nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newZonePressure(tt.cfg)
			var last time.Time
			for i, n := range tt.notes {
				last = t0.Add(n.at)
				if got := p.note(n.zone, n.n, last); got != tt.escalated[i] {
					t.Fatalf("note %d (%+v): escalated %v, want %v", i, n, got, tt.escalated[i])
				}
			}
			for zone, want := range tt.pending {
				if got := p.pending(zone, at(last)); got != want {
					t.Errorf("pending(%s) = %v, want %v", zone, got, want)
				}
			}
			if len(p.zones) != tt.zones {
				t.Errorf("%d zones tracked, want %d", len(p.zones), tt.zones)
			}
		})
	}
}

func TestZonePressureEvictionKeepsTheZonesUnderAttack(t *testing.T) {
	p := newZonePressure(ZonePressure{Threshold: 10, Window: time.Minute, Hold: 10 * time.Minute, MaxZones: 2})
	t0 := time.Unix(1_800_000_000, 0)
	if !p.note("bank.test.", 10, t0) {
		t.Fatal("bank.test. did not escalate")
	}
	// bank.test. is being re-validated: a stream of other zones may push
	// out only the others.
	for i := range 20 {
		p.note(fmt.Sprintf("z%d.test.", i), 1, t0.Add(time.Duration(i)*time.Second))
	}
	if len(p.zones) != 2 || p.zones["bank.test."] == nil || !p.pending("bank.test.", at(t0.Add(time.Minute))) {
		t.Fatalf("zones %v: want bank.test. still counted and pending", p.zones)
	}
	p.done("bank.test.", true)
	if p.pending("bank.test.", at(t0.Add(time.Minute))) || p.pendingN.Load() != 0 {
		t.Fatalf("pending after a successful re-validation (pendingN %d)", p.pendingN.Load())
	}
	if p.escalations.Load() != 1 || p.revalidated.Load() != 1 {
		t.Fatalf("escalations %d, revalidated %d", p.escalations.Load(), p.revalidated.Load())
	}
}

func TestFailedRevalidationKeepsTheZonePendingUntilTheHoldEnds(t *testing.T) {
	p := newZonePressure(ZonePressure{Threshold: 2, Window: time.Minute, Hold: 10 * time.Minute, MaxZones: 10})
	t0 := time.Unix(1_800_000_000, 0)
	if !p.note("bank.test.", 2, t0) {
		t.Fatal("no escalation")
	}
	p.done("bank.test.", false)
	if !p.pending("bank.test.", at(t0.Add(9*time.Minute))) {
		t.Fatal("not pending after a failed re-validation")
	}
	if !p.note("bank.test.", 2, t0.Add(9*time.Minute)) {
		t.Fatal("a failed re-validation is not tried again at the next escalation")
	}
	p.done("bank.test.", false)
	if p.pending("bank.test.", at(t0.Add(20*time.Minute))) || p.pendingN.Load() != 0 {
		t.Fatal("still pending after the hold")
	}
}

// at is a clock stopped at t, for pending.
func at(t time.Time) func() time.Time { return func() time.Time { return t } }
