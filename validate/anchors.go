package validate

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/miekg/dns"
)

// rootAnchorText is IANA's root-anchors.xml as DS records: KSK-2017 (valid
// from 2017-02-02) and KSK-2024 (valid from 2024-07-18), both carried
// during the rollover.
var rootAnchorText = []string{
	". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
	". IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
}

// RootAnchors returns the built-in root trust anchors as DS records.
func RootAnchors() []dns.RR {
	out := make([]dns.RR, 0, len(rootAnchorText))
	for _, s := range rootAnchorText {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(fmt.Sprintf("validate: built-in anchor %q: %v", s, err))
		}
		out = append(out, rr)
	}
	return out
}

// ParseAnchors reads DS and DNSKEY trust anchors in zone-file format (the
// -trust-anchor flag). file names the source in errors, which also name
// the line.
func ParseAnchors(r io.Reader, file string) ([]dns.RR, error) {
	text, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("trust anchor %s: %w", file, err)
	}
	lines := recordLines(string(text))
	zp := dns.NewZoneParser(strings.NewReader(string(text)), ".", file)
	var out []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		line := 0
		if len(out) < len(lines) {
			line = lines[len(out)]
		}
		switch rr.(type) {
		case *dns.DS, *dns.DNSKEY:
		default:
			return nil, fmt.Errorf("trust anchor %s:%d: %s %s is not DS or DNSKEY",
				file, line, rr.Header().Name, dns.TypeToString[rr.Header().Rrtype])
		}
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("trust anchor %s: %w", file, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("trust anchor %s: no DS or DNSKEY record", file)
	}
	return out, nil
}

// recordLines returns the line on which each record of a zone file starts,
// skipping comments, blank lines, directives and parenthesised
// continuations, so that a record can be named by its line.
func recordLines(text string) []int {
	var starts []int
	depth := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := stripComment(sc.Text())
		if depth == 0 && strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "$") {
			starts = append(starts, n)
		}
		depth += strings.Count(line, "(") - strings.Count(line, ")")
		if depth < 0 {
			depth = 0
		}
	}
	return starts
}

func stripComment(line string) string {
	quoted := false
	for i, c := range line {
		switch {
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			return line[:i]
		}
	}
	return line
}
