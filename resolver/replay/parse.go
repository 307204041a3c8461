package replay

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxLineBytes bounds one scenario line; the longest real lines are RSA
// signatures of a few hundred bytes and RAW messages of a few kilobytes.
const maxLineBytes = 1 << 20

// DialectOf returns the dialect of a scenario file: that of the nearest
// parent directory named unbound or deckard, Unbound when there is none.
func DialectOf(path string) Dialect {
	dir := filepath.Dir(path)
	for {
		switch filepath.Base(dir) {
		case "deckard":
			return Deckard
		case "unbound":
			return Unbound
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return Unbound
		}
		dir = parent
	}
}

// ParseFile reads and parses the scenario at path in its directory's dialect.
func ParseFile(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path, DialectOf(path))
}

// parser holds the state of one pass over a scenario.
type parser struct {
	sc     *Scenario
	lines  *bufio.Scanner
	lineNo int
	// origin and ttl follow $ORIGIN / $TTL between entries.
	origin string
	ttl    uint32
}

// Parse reads a scenario. Lines it does not know become warnings, as
// Unbound's testbound skips them; only a broken structure or an
// unparseable record is an error.
func Parse(r io.Reader, path string, d Dialect) (*Scenario, error) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64*1024), maxLineBytes)
	p := &parser{
		sc:     &Scenario{Path: path, Dialect: d, Files: map[string]string{}},
		lines:  s,
		origin: ".",
		ttl:    3600,
	}
	if err := p.config(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", path, p.lineNo, err)
	}
	if err := p.body(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", path, p.lineNo, err)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p.sc, nil
}

// next returns the next line with comments and surrounding space removed,
// skipping empty lines.
func (p *parser) next() (string, bool) {
	for p.lines.Scan() {
		p.lineNo++
		if line := strings.TrimSpace(stripComment(p.lines.Text(), ';')); line != "" {
			return line, true
		}
	}
	return "", false
}

func (p *parser) warn(format string, args ...any) {
	p.sc.Warnings = append(p.sc.Warnings, fmt.Sprintf("line %d: ", p.lineNo)+fmt.Sprintf(format, args...))
}

// stripComment cuts line at the first c outside double quotes.
func stripComment(line string, c byte) string {
	quoted := false
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && quoted:
			i++
		case line[i] == '"':
			quoted = !quoted
		case line[i] == c && !quoted:
			return line[:i]
		}
	}
	return line
}

// config reads the CONFIG section up to CONFIG_END.
func (p *parser) config() error {
	block := ""
	for {
		line, ok := p.next()
		if !ok {
			return fmt.Errorf("no CONFIG_END")
		}
		line = strings.TrimSpace(stripComment(line, '#'))
		switch word := firstWord(line); {
		case line == "":
		case word == "CONFIG_END":
			return nil
		case word == "TEMPFILE_CONTENTS" || word == "AUTOTRUST_FILE":
			if err := p.file(word, line); err != nil {
				return err
			}
		case strings.HasSuffix(line, ":") && !strings.Contains(line[:len(line)-1], ":"):
			block = strings.TrimSuffix(line, ":")
		default:
			key, value, found := strings.Cut(line, ":")
			if !found {
				p.warn("config line without a key: %q", line)
				continue
			}
			p.sc.Config = append(p.sc.Config, Option{Block: block, Key: strings.TrimSpace(key), Value: unquote(strings.TrimSpace(value)), Line: p.lineNo})
		}
	}
}

// file keeps an inline TEMPFILE / AUTOTRUST body under its id.
func (p *parser) file(word, line string) error {
	id := strings.TrimSpace(strings.TrimPrefix(line, word))
	end := "TEMPFILE_END"
	if word == "AUTOTRUST_FILE" {
		end = "AUTOTRUST_END"
	}
	var b strings.Builder
	for p.lines.Scan() {
		p.lineNo++
		text := p.lines.Text()
		if strings.TrimSpace(text) == end {
			p.sc.Files[id] = b.String()
			return nil
		}
		b.WriteString(text)
		b.WriteByte('\n')
	}
	return fmt.Errorf("%s %s: no %s", word, id, end)
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func firstWord(line string) string {
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		return line[:i]
	}
	return line
}

// body reads the scenario after CONFIG_END: title, ranges and steps.
func (p *parser) body() error {
	for {
		line, ok := p.next()
		if !ok {
			return nil
		}
		fields := strings.Fields(line)
		switch fields[0] {
		case "SCENARIO_BEGIN":
			p.sc.Title = strings.TrimSpace(strings.TrimPrefix(line, "SCENARIO_BEGIN"))
		case "SCENARIO_END":
			return nil
		case "RANGE_BEGIN":
			if err := p.rangeBlock(fields); err != nil {
				return err
			}
		case "STEP":
			if err := p.step(fields); err != nil {
				return err
			}
		case "$ORIGIN", "$TTL":
			if err := p.directive(fields); err != nil {
				return err
			}
		default:
			p.warn("unknown line %q", line)
		}
	}
}

// directive applies $ORIGIN or $TTL to the records that follow.
func (p *parser) directive(fields []string) error {
	if len(fields) < 2 {
		return fmt.Errorf("%s without an argument", fields[0])
	}
	if fields[0] == "$ORIGIN" {
		p.origin = fields[1]
		return nil
	}
	ttl, err := strconv.ParseUint(fields[1], 10, 32)
	if err != nil {
		return fmt.Errorf("$TTL %q: %w", fields[1], err)
	}
	p.ttl = uint32(ttl)
	return nil
}

// rangeBlock reads RANGE_BEGIN from to [addr] ... RANGE_END.
func (p *parser) rangeBlock(fields []string) error {
	if len(fields) < 3 {
		return fmt.Errorf("RANGE_BEGIN needs two step numbers")
	}
	from, err1 := strconv.Atoi(fields[1])
	to, err2 := strconv.Atoi(fields[2])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("RANGE_BEGIN %q %q: bad step number", fields[1], fields[2])
	}
	rg := &Range{From: from, To: to, Line: p.lineNo}
	if len(fields) > 3 && p.sc.Dialect == Deckard {
		if err := p.addAddr(rg, fields[3]); err != nil {
			return err
		}
	}
	for {
		line, ok := p.next()
		if !ok {
			return fmt.Errorf("range at line %d: no RANGE_END", rg.Line)
		}
		f := strings.Fields(line)
		switch f[0] {
		case "RANGE_END":
			p.sc.Ranges = append(p.sc.Ranges, rg)
			return nil
		case "ADDRESS":
			if len(f) < 2 {
				return fmt.Errorf("ADDRESS without an address")
			}
			if p.sc.Dialect == Unbound {
				rg.Addrs = rg.Addrs[:0] // Unbound keeps the last ADDRESS only
			}
			if err := p.addAddr(rg, f[1]); err != nil {
				return err
			}
		case "ENTRY_BEGIN":
			e, err := p.entry()
			if err != nil {
				return err
			}
			rg.Entries = append(rg.Entries, e)
		case "$ORIGIN", "$TTL":
			if err := p.directive(f); err != nil {
				return err
			}
		default:
			p.warn("unknown line in range %q", line)
		}
	}
}

func (p *parser) addAddr(rg *Range, s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("range address %q: %w", s, err)
	}
	rg.Addrs = append(rg.Addrs, a)
	return nil
}

// step reads STEP n TYPE [args] and the entry that follows when the type
// takes one.
func (p *parser) step(fields []string) error {
	if len(fields) < 3 {
		return fmt.Errorf("STEP needs a number and a type")
	}
	n, err := strconv.Atoi(fields[1])
	if err != nil {
		return fmt.Errorf("STEP %q: %w", fields[1], err)
	}
	st := &Step{N: n, Type: fields[2], Args: fields[3:], Line: p.lineNo}
	if k := len(p.sc.Steps); k > 0 && p.sc.Steps[k-1].N >= n {
		p.warn("step %d does not follow step %d", n, p.sc.Steps[k-1].N)
	}
	if err := p.stepArgs(st); err != nil {
		return err
	}
	switch st.Type {
	case "QUERY", "CHECK_ANSWER", "CHECK_OUT_QUERY", "REPLY":
		line, ok := p.next()
		if !ok || line != "ENTRY_BEGIN" {
			return fmt.Errorf("STEP %d %s: expected ENTRY_BEGIN", n, st.Type)
		}
		if st.Entry, err = p.entry(); err != nil {
			return err
		}
	}
	p.sc.Steps = append(p.sc.Steps, st)
	return nil
}

// stepArgs reads the ADDRESS and ELAPSE arguments of a step.
func (p *parser) stepArgs(st *Step) error {
	for i := 0; i+1 < len(st.Args); i++ {
		switch st.Args[i] {
		case "ADDRESS":
			a, err := netip.ParseAddr(st.Args[i+1])
			if err != nil {
				return fmt.Errorf("STEP %d ADDRESS: %w", st.N, err)
			}
			st.Addr = a
		case "ELAPSE":
			v, err := strconv.ParseFloat(st.Args[i+1], 64)
			if err != nil {
				return fmt.Errorf("STEP %d ELAPSE: %w", st.N, err)
			}
			st.Elapse = v
		}
	}
	return nil
}

// hexBlock reads hex digits up to the end keyword, ignoring spaces.
func (p *parser) hexBlock(end string) ([]byte, error) {
	var digits strings.Builder
	for {
		line, ok := p.next()
		if !ok {
			return nil, fmt.Errorf("no %s", end)
		}
		if line == end {
			break
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		return nil, fmt.Errorf("before %s: %w", end, err)
	}
	return b, nil
}
