package attack

import (
	"testing"
	"time"

	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// TestHoldOnAddsNoLatencyOnACleanPath measures what Hold-On costs when
// nobody injects: the bank server answers in 20 ms, 30 fresh names are
// asked with Hold-On on (the default) and off.
func TestHoldOnAddsNoLatencyOnACleanPath(t *testing.T) {
	clean := func(*env, simnetQR) []packet { return nil }
	var mean [2]time.Duration
	for i, cfg := range []transport.Config{{}, {DisableHoldOn: true}} {
		e := newEnv(t, 90+byte(i), cfg, transport.SocketConfig{})
		tl := oracleRun(t, e, 30, 20*time.Millisecond, clean)
		mean[i] = tl.latency
		t.Logf("RESULT HOLDON-CLEAN hold_on=%v: %v | hold_on_waits=%d late_replies=%d", i == 0, tl, e.ex.Stats().HoldOnWaits, e.ex.Stats().LateReplies)
		if tl.genuine != tl.attempts {
			t.Fatalf("clean path failed: %v", tl)
		}
	}
	if mean[0] > mean[1]+10*time.Millisecond {
		t.Errorf("Hold-On adds %v on a clean path", mean[0]-mean[1])
	}
}
