package replay

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readFloor reads testdata/floor.txt: "dialect passes" per line, '#'
// comments. The lead raises the numbers as the resolver improves.
func readFloor(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "floor.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	floor := map[string]int{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(stripComment(s.Text(), '#'))
		if len(fields) != 2 {
			continue
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil {
			t.Fatalf("floor.txt: %q: %v", s.Text(), err)
		}
		floor[fields[0]] = n
	}
	return floor
}

func TestShippedScenariosPassAtLeastTheFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("plays every shipped scenario")
	}
	floor := readFloor(t)
	files := scenarioFiles(t, filepath.Join(corpusRoot, "rpl"))
	counts := map[Dialect]*Counts{Unbound: {}, Deckard: {}}
	for _, r := range RunAll(context.Background(), files, Options{}, nil) {
		counts[r.Dialect].Add(r)
		if r.Status == Fail && testing.Verbose() {
			t.Logf("FAIL %s: step %d: %s", r.Path, r.Step, r.Reason)
		}
	}
	for _, d := range []Dialect{Unbound, Deckard} {
		c := counts[d]
		t.Logf("%s: %d passed, %d failed, %d skipped (floor %d)", d, c.Passed, c.Failed, c.Skipped, floor[d.String()])
		if c.Passed < floor[d.String()] {
			t.Errorf("%s: %d scenarios pass, below the floor of %d", d, c.Passed, floor[d.String()])
		}
	}
}
