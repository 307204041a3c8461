package resolver

import (
	"strings"

	"github.com/miekg/dns"
)

// inBailiwick reports whether name is zone or below it. It is the one
// bailiwick predicate: every trust decision about where a record may come
// from goes through it (no label counting elsewhere).
func inBailiwick(name, zone string) bool {
	return dns.IsSubDomain(zone, name)
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
	idx := dns.Split(name)
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
