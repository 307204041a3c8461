package replay

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary text to the parser: scenario files come from
// other projects, so no input may panic it or make it loop.
func FuzzParse(f *testing.F) {
	f.Add(tinyScenario)
	f.Add("CONFIG_END\nSTEP 1 QUERY\nENTRY_BEGIN\nRAW\n00zz\nENTRY_END\n")
	f.Add("CONFIG_END\nRANGE_BEGIN 0 1\n$ORIGIN x.\nENTRY_BEGIN\nSECTION ANSWER\nns IN TYPE65 \\# 2 0001\nENTRY_END\nRANGE_END\n")
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
