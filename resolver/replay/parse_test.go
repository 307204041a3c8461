package replay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusRoot is the shared scenario folder, next to the repository.
var corpusRoot = filepath.Join("..", "..", "..", "shared", "testdata")

func scenarioFiles(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".rpl") || strings.HasSuffix(path, ".crpl")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Skipf("scenario folder %s: %v", dir, err)
	}
	return files
}

func TestEveryShippedScenarioParses(t *testing.T) {
	for _, c := range []struct {
		dir  string
		want int
	}{{"rpl", 298}, {"rpl-extra", 149}} {
		files := scenarioFiles(t, filepath.Join(corpusRoot, c.dir))
		if len(files) != c.want {
			t.Errorf("%s: %d scenario files, want %d", c.dir, len(files), c.want)
		}
		for _, f := range files {
			sc, err := ParseFile(f)
			if err != nil {
				t.Errorf("parse: %v", err)
				continue
			}
			if len(sc.Steps) == 0 {
				t.Errorf("%s: no steps", f)
			}
			for _, w := range sc.Warnings {
				t.Logf("%s: %s", f, w)
			}
		}
	}
}
