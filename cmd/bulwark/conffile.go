package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/listener"
)

// The config file is line-oriented in the spirit of unbound.conf: one
// "key: value" per line, "#" starts a comment, blank lines are ignored.
// listen, access-control, domain-insecure and forward-zone may repeat; any
// other key given twice keeps the last value. A "forward-zone:" line opens
// a stanza whose "name:" and "forward-addr:" lines follow it (see
// forward.go); the next other key closes it. Durations are seconds ("86400") or Go durations ("24h");
// sizes are bytes with an optional k, m or g suffix.

type setter func(s *settings, v string) error

var configKeys = map[string]setter{
	"listen":                  setListen,
	"root-hints":              func(s *settings, v string) error { s.rootHints = v; return nil },
	"trust-anchor":            func(s *settings, v string) error { s.trustAnchor = v; return nil },
	"validate":                boolKey(func(s *settings) *bool { return &s.validate }),
	"qname-minimisation":      boolKey(func(s *settings) *bool { return &s.resolver.QNameMinimisation }),
	"minimal-responses":       boolKey(func(s *settings) *bool { return &s.resolver.MinimalResponses }),
	"ns-answer-addresses":     boolKey(func(s *settings) *bool { return &s.resolver.NSAnswerAddresses }),
	"harden-unverified-glue":  boolKey(func(s *settings) *bool { return &s.resolver.HardenUnverifiedGlue }),
	"aggressive-nsec":         boolKey(func(s *settings) *bool { return &s.aggressiveNSEC }),
	"upstream-io-uring":       setIOURing,
	"heap-huge-pages":         boolKey(func(s *settings) *bool { return &s.heapHugePages }),
	"domain-insecure":         setDomainInsecure,
	"do-ip4":                  boolKey(func(s *settings) *bool { return &s.resolver.DoIPv4 }),
	"do-ip6":                  boolKey(func(s *settings) *bool { return &s.resolver.DoIPv6 }),
	"query-log":               boolKey(func(s *settings) *bool { return &s.queryLog }),
	"access-control":          setAccess,
	"max-ttl":                 durationKey(func(s *settings) *time.Duration { return &s.resolver.MaxTTL }),
	"min-ttl":                 durationKey(func(s *settings) *time.Duration { return &s.resolver.MinTTL }),
	"max-negative-ttl":        durationKey(func(s *settings) *time.Duration { return &s.resolver.MaxNegativeTTL }),
	"query-timeout":           durationKey(func(s *settings) *time.Duration { return &s.resolver.QueryTimeout }),
	"cache-size":              setCacheSize,
	"gc-percent":              setGCPercent,
	"gc-floor":                setGCFloor,
	"workers":                 intKey(func(s *settings) *int { return &s.workers }),
	"serve-expired":           boolKey(func(s *settings) *bool { return &s.serveExpired }),
	"serve-expired-ttl":       durationKey(func(s *settings) *time.Duration { return &s.serveExpiredTTL }),
	"prefetch":                boolKey(func(s *settings) *bool { return &s.prefetch }),
	"answer-cache-doorkeeper": boolKey(func(s *settings) *bool { return &s.answerDoorkeeper }),
	"log-level":               setLogLevel,
	"max-referrals":           intKey(func(s *settings) *int { return &s.resolver.Limits.MaxReferrals }),
	"max-cnames":              intKey(func(s *settings) *int { return &s.resolver.Limits.MaxCNAMEs }),
	"max-ns-lookups":          intKey(func(s *settings) *int { return &s.resolver.Limits.MaxNSLookups }),
	"max-upstream-queries":    intKey(func(s *settings) *int { return &s.resolver.Limits.MaxUpstreamQueries }),
	"max-depth":               intKey(func(s *settings) *int { return &s.resolver.Limits.MaxDepth }),
	"max-servers-per-zone":    intKey(func(s *settings) *int { return &s.resolver.Limits.MaxServersPerZone }),

	// Per-zone spoofing pressure (docs/security.md); 0 turns it off.
	"unwanted-reply-threshold": intKey(func(s *settings) *int { return &s.resolver.ZonePressure.Threshold }),
}

// setDomainInsecure adds a negative trust anchor: names at and below it
// are answered without validation (RFC 7646), like Unbound's key.
func setDomainInsecure(s *settings, v string) error {
	if _, ok := dns.IsDomainName(v); !ok {
		return fmt.Errorf("domain-insecure: %q is not a domain name", v)
	}
	s.insecure = append(s.insecure, dns.Fqdn(strings.ToLower(v)))
	return nil
}

// parseConfig applies the file's lines to s. The error names the file and
// the line.
func parseConfig(r io.Reader, file string, s *settings) error {
	sc := bufio.NewScanner(r)
	c := confReader{s: s, file: file}
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if err := c.line(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return c.endStanza()
}

// confReader holds what one line of the file needs from the ones before.
type confReader struct {
	s        *settings
	file     string
	listened bool
	fwd      *forwardStanza // open forward-zone stanza, nil outside one
}

// line applies line n of the file.
func (c *confReader) line(n int, line string) error {
	key, value, ok := strings.Cut(line, ":")
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if ok && stanzaKeys[key] {
		if c.fwd == nil {
			return fmt.Errorf("%s:%d: %s: only inside a forward-zone stanza", c.file, n, key)
		}
		if err := c.fwd.set(key, value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", c.file, n, key, err)
		}
		return nil
	}
	if err := c.endStanza(); err != nil {
		return err
	}
	if ok && key == "forward-zone" {
		return c.openStanza(n, value)
	}
	if !ok || value == "" {
		return fmt.Errorf("%s:%d: want \"key: value\", got %q", c.file, n, line)
	}
	set, known := configKeys[key]
	if !known {
		return fmt.Errorf("%s:%d: unknown key %q (known: %s)", c.file, n, key, knownKeys())
	}
	if key == "listen" && !c.listened {
		c.s.listen, c.listened = nil, true
	}
	if err := set(c.s, value); err != nil {
		return fmt.Errorf("%s:%d: %s: %w", c.file, n, key, err)
	}
	return nil
}

func knownKeys() string {
	keys := make([]string, 0, len(configKeys))
	for k := range configKeys {
		keys = append(keys, k)
	}
	keys = append(keys, "forward-zone")
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

func setListen(s *settings, v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return fmt.Errorf("want ADDR:PORT: %w", err)
	}
	s.listen = append(s.listen, v)
	return nil
}

func setAccess(s *settings, v string) error {
	r, err := listener.ParseAccessRule(v)
	if err != nil {
		return err
	}
	s.access = append(s.access, r)
	return nil
}

func setLogLevel(s *settings, v string) error {
	if _, err := parseLevel(v); err != nil {
		return err
	}
	s.logLevel = v
	return nil
}

func boolKey(field func(*settings) *bool) setter {
	return func(s *settings, v string) error {
		b, ok := parseYesNo(v)
		if !ok {
			return fmt.Errorf("%q is not yes or no", v)
		}
		*field(s) = b
		return nil
	}
}

// parseYesNo reads a boolean value of the config file.
func parseYesNo(v string) (b, ok bool) {
	switch strings.ToLower(v) {
	case "yes", "true", "on":
		return true, true
	case "no", "false", "off":
		return false, true
	}
	return false, false
}

func intKey(field func(*settings) *int) setter {
	return func(s *settings, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a non-negative integer", v)
		}
		*field(s) = n
		return nil
	}
}

func durationKey(field func(*settings) *time.Duration) setter {
	return func(s *settings, v string) error {
		d, err := parseDuration(v)
		if err != nil {
			return err
		}
		*field(s) = d
		return nil
	}
}

// parseDuration reads whole seconds, as unbound.conf writes TTLs, or a Go
// duration.
func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 31); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is neither seconds nor a duration like 1h30m", v)
	}
	return d, nil
}

func setGCPercent(s *settings, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return fmt.Errorf("%q is not a positive integer", v)
	}
	s.gcPercent = n
	return nil
}

func setCacheSize(s *settings, v string) error {
	n, err := parseSize(v)
	if err != nil || n == 0 {
		return fmt.Errorf("%q is not a size like 64m", v)
	}
	s.cacheSize = n
	return nil
}

func setGCFloor(s *settings, v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	s.gcFloor = n
	return nil
}

// parseSize reads a byte count with an optional k, m or g suffix.
func parseSize(v string) (int64, error) {
	mult := int64(1)
	num := strings.ToLower(v)
	if suffix := num[len(num)-1]; suffix == 'k' || suffix == 'm' || suffix == 'g' {
		mult = map[byte]int64{'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}[suffix]
		num = num[:len(num)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size like 64m", v)
	}
	return n * mult, nil
}
