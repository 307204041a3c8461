package replay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary text to the parser: scenario files come from
// other projects, so no input may panic it or make it loop.
func FuzzParse(f *testing.F) {
	f.Add(tinyScenario)
	f.Add("CONFIG_END\nSTEP 1 QUERY\nENTRY_BEGIN\nRAW\n00zz\nENTRY_END\n")
	f.Add("CONFIG_END\nRANGE_BEGIN 0 1\n$ORIGIN x.\nENTRY_BEGIN\nSECTION ANSWER\nns IN TYPE65 \\# 2 0001\nENTRY_END\nRANGE_END\n")
	for _, name := range []string{"unbound/iter_resolve.rpl", "deckard/val_adbit.rpl"} {
		if b, err := os.ReadFile(filepath.Join(corpusRoot, "rpl", name)); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, d := range []Dialect{Unbound, Deckard} {
			sc, err := Parse(strings.NewReader(text), "fuzz.rpl", d)
			if err != nil {
				continue
			}
			for _, rg := range sc.Ranges {
				for _, e := range rg.Entries {
					e.msg(d)
				}
			}
		}
	})
}
