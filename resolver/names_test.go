package resolver

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// nameCases are spellings whose label splitting is easy to get wrong:
// the root, the empty name, relative names, case, escaped dots and
// backslashes, and a name with more labels than splitLabels keeps on the
// stack.
var nameCases = []string{
	".", "", "test.", "test", "TEST.", "example.test.", "Example.TEST.",
	"www.example.test.", "example.test", "xexample.test.", "a\\.example.test.",
	"a\\\\.example.test.", "a\\\\\\.b.example.test.", "\\.test.", "test\\.",
	"b.a\\.example.test.", "www.example.test.test.", "k.test.", "\u212a.test.",
	strings.Repeat("a.", 40) + "example.test.", strings.Repeat("a.", 31) + "test.",
	strings.Repeat("a.", 32) + "test.", strings.Repeat("b.", 33),
}

func TestInBailiwickDecidesAsIsSubDomain(t *testing.T) {
	for _, zone := range nameCases {
		for _, name := range nameCases {
			if got, want := inBailiwick(name, zone), dns.IsSubDomain(zone, name); got != want {
				t.Errorf("inBailiwick(%q, %q) = %v, dns.IsSubDomain says %v", name, zone, got, want)
			}
		}
	}
}

func TestSplitLabelsIsSplit(t *testing.T) {
	for _, name := range nameCases {
		var buf [maxStackLabels]int
		if got, want := splitLabels(name, &buf), dns.Split(name); !slices.Equal(got, want) {
			t.Errorf("splitLabels(%q) = %v, dns.Split says %v", name, got, want)
		}
	}
}

func TestInBailiwickAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { inBailiwick("www.Example.test.", "example.test.") }); n != 0 {
		t.Errorf("inBailiwick allocates %v times per call", n)
	}
}

func TestLowerEqualIsEqualityOfToLower(t *testing.T) {
	names := []string{"a.test.", "A.TeSt.", "b.test.", "a.test", "ä.test.", "Ä.test.", "\u212a.test.", "k.test.", "K.test.", "@.test.", "`.test."}
	for _, a := range names {
		for _, b := range names {
			if got, want := lowerEqual(a, b), strings.ToLower(a) == strings.ToLower(b); got != want {
				t.Errorf("lowerEqual(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
}
