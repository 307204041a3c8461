package resolver

import (
	"strings"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// inBailiwick reports whether name is zone or below it. It is the one
// bailiwick predicate: every trust decision about where a record may come
// from goes through it (no label counting elsewhere).
//
// It decides exactly as dns.IsSubDomain(zone, name) does, labels compared
// from the right with ASCII case folding, but splits the names into arrays
// on the stack: dns.Split allocates two slices per call, and scrub and
// the iterator call this several times per reply (issue #6).
func inBailiwick(name, zone string) bool {
	if zone == "." || name == "." {
		return zone == "."
	}
	var zb, nb [maxStackLabels]int
	zl, nl := splitLabels(zone, &zb), splitLabels(name, &nb)
	if len(zl) > len(nl) {
		return false
	}
	zEnd, nEnd := len(zone), len(name)
	for k := 1; k <= len(zl); k++ {
		zStart, nStart := zl[len(zl)-k], nl[len(nl)-k]
		if !asciiEqualFold(zone[zStart:zEnd], name[nStart:nEnd]) {
			return false
		}
		zEnd, nEnd = zStart, nStart
	}
	return true
}

// maxStackLabels is how many label offsets splitLabels keeps on the
// caller's stack; a name with more (no valid one has over 127) is split by
// dns.Split.
const maxStackLabels = 32

// splitLabels is dns.Split(s), in buf when the labels fit.
func splitLabels(s string, buf *[maxStackLabels]int) []int {
	if s == "." {
		return nil
	}
	idx := append(buf[:0], 0)
	for off, end := 0, false; ; {
		if off, end = dns.NextLabel(s, off); end {
			return idx
		}
		if len(idx) == len(buf) {
			return dns.Split(s)
		}
		idx = append(idx, off)
	}
}

// lowerEqual reports whether strings.ToLower(a) == strings.ToLower(b)
// without making the lower-case copies for ASCII names, as every name
// read from the wire is (miekg/dns escapes other bytes): the owners of a
// reply to a 0x20 query are mixed case, and splitRRsets compares each
// record with its neighbours (issue #6).
func lowerEqual(a, b string) bool {
	if isASCII(a) && isASCII(b) {
		return asciiEqualFold(a, b)
	}
	return strings.ToLower(a) == strings.ToLower(b)
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// asciiEqualFold is the comparison of dns.CompareDomainName: only A-Z
// fold, unlike strings.EqualFold's Unicode folding.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x |= 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y |= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// strictlyBelow reports whether name is below zone and not zone itself.
func strictlyBelow(name, zone string) bool {
	return inBailiwick(name, zone) && !equalNames(name, zone)
}

func equalNames(a, b string) bool { return strings.EqualFold(a, b) }

// lastLabels returns the last n labels of name as a name ("." for 0).
func lastLabels(name string, n int) string {
	if n <= 0 {
		return "."
	}
	var buf [maxStackLabels]int
	idx := splitLabels(name, &buf)
	if n >= len(idx) {
		return name
	}
	return name[idx[len(idx)-n]:]
}

// parentName returns the name one label up ("." stays ".").
func parentName(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[i:]
}
