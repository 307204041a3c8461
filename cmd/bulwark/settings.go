package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver"
	"github.com/bulwark-dns/bulwark/resolver/listener"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// defaultListen are the addresses served when neither -listen nor a
// listen: line names any.
var defaultListen = []string{"127.0.0.1:53", "[::1]:53"}

// settings is everything the daemon is told, from the built-in defaults,
// then the config file, then the command line.
type settings struct {
	listen      []string
	rootHints   string // file; "" means the built-in IANA hints
	trustAnchor string // file; "" means the built-in root anchors
	validate    bool
	access      []listener.AccessRule
	cacheSize   int64 // bytes; 0 means defaultCacheSize
	// gcPercent is the collector's GOGC; 0 means the GOGC environment
	// variable, else defaultGCPercent.
	gcPercent int
	// gcFloor is the heap growth allowed between collections however
	// small the live heap (gcfloor.go); 0 turns the floor off, negative
	// means the default (gcFloorBytes).
	gcFloor int64
	// workers is the number of UDP sockets and read loops per listen
	// address; 0 means GOMAXPROCS.
	workers int
	// serveExpired answers from expired answers for up to
	// serveExpiredTTL while refreshing them (RFC 8767).
	serveExpired    bool
	serveExpiredTTL time.Duration
	prefetch        bool
	// answerDoorkeeper stores an answer in the answer cache only when its
	// question was asked before recently (cache/doorkeeper.go).
	answerDoorkeeper bool
	// aggressiveNSEC answers from validated NSEC/NSEC3 (RFC 8198).
	aggressiveNSEC bool
	// ioURing says when upstream sockets are set up through io_uring
	// (transport.IOURing).
	ioURing transport.IOURing
	// heapHugePages asks for transparent huge pages behind the heap
	// (hugeheap.go).
	heapHugePages bool
	// insecure are negative trust anchors (domain-insecure).
	insecure []string
	logLevel string
	queryLog bool
	resolver resolver.Config
}

func defaultSettings() settings {
	return settings{
		listen:         append([]string(nil), defaultListen...),
		validate:       true,
		aggressiveNSEC: true,
		heapHugePages:  true,
		// Most names are asked once; their answers would only take the
		// answer cache's room (docs/performance.md, Memory).
		answerDoorkeeper: true,
		logLevel:         "info",
		resolver:         resolver.DefaultConfig(),
		// RFC 8767 §4 suggests 1 to 3 days.
		serveExpiredTTL: 24 * time.Hour,
		gcFloor:         -1,
	}
}

// defaultCacheSize is the memory bound of both caches together when
// cache-size is not set.
const defaultCacheSize = 64 << 20

// cacheSizes splits cache-size: a quarter to the answer cache, the rest to
// the record cache. Answers are small and each one stands for several
// RRsets the record cache must hold anyway, so the record cache gets most
// (Unbound's defaults give both 4 MiB; its rrset cache is told to be twice
// the message cache).
func (s *settings) cacheSizes() (records, answers int64) {
	total := s.cacheTotal()
	return total - total/4, total / 4
}

// cacheTotal is cache-size, or defaultCacheSize when it is not set.
func (s *settings) cacheTotal() int64 {
	if s.cacheSize <= 0 {
		return defaultCacheSize
	}
	return s.cacheSize
}

// defaultGCPercent lets the heap grow by half its live size between
// collections, where Go's default (GOGC=100) lets it double. Most of a
// resolver's heap is its caches, which live long, and the cache-hit path
// allocates nothing, so collections are paid for by cold resolutions
// alone: at 50 they took about 17% of the CPU of BenchmarkColdName
// against 11-14% at 100 (about 6% more CPU per cold name) and kept the
// heap at about 1.8 instead of 2.2 times its live size
// (TestHeapPerCachedName). Unbound has no such knob: it frees into its own
// allocator, so its RSS follows its cache sizes.
const defaultGCPercent = 50

// defaultGCFloor: below 16 MiB of live heap, gc-percent 50 would collect
// after less than 8 MiB of allocation. 16 MiB ran cold names no faster
// and left a fresh daemon's heap 8 MiB larger (docs/performance.md,
// Memory).
const defaultGCFloor = 8 << 20

// gcFloorBytes is gc-floor, or by default defaultGCFloor but at most a
// quarter of cache-size: an operator who sized the caches for a small
// router has said how much memory the daemon may take.
func (s *settings) gcFloorBytes() int64 {
	if s.gcFloor >= 0 {
		return s.gcFloor
	}
	return min(defaultGCFloor, s.cacheTotal()/4)
}

// goGC returns the GOGC to run with and whether the daemon must set
// it: not when neither gc-percent nor the default applies because the
// operator chose GOGC in the environment, which the runtime already read.
func (s *settings) goGC(getenv func(string) string) (int, bool) {
	switch {
	case s.gcPercent > 0:
		return s.gcPercent, true
	case getenv("GOGC") != "":
		return 0, false
	}
	return defaultGCPercent, true
}

// gcTuning is what the daemon sets on the collector: GOGC and the floor
// in bytes, or neither (set false, floor 0) when the operator's GOGC from
// the environment governs it. main applies it and the start-up summary
// logs it.
func (s *settings) gcTuning(getenv func(string) string) (percent int, floor int64, set bool) {
	percent, set = s.goGC(getenv)
	if !set {
		return 0, 0, false
	}
	return percent, s.gcFloorBytes(), true
}

// answerCache is the listener's cache of whole answers, or nil with the
// query log on: a hit never reaches the resolver, which logs the queries.
func (s *settings) answerCache() *cache.AnswerCache {
	if s.queryLog {
		return nil
	}
	var stale time.Duration
	if s.serveExpired {
		stale = s.serveExpiredTTL
	}
	_, bytes := s.cacheSizes()
	return cache.NewAnswerCache(cache.AnswerConfig{MaxBytes: bytes, MaxStale: stale, AdmitFirst: !s.answerDoorkeeper})
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// commandLine holds the flags as given; only those set override the
// config file.
type commandLine struct {
	fs          *flag.FlagSet
	listen      listFlag
	rootHints   string
	trustAnchor string
	validate    bool
	config      string
	logLevel    string
	queryLog    bool
	cpuProfile  string
}

func parseCommandLine(args []string, stderr io.Writer) (*commandLine, error) {
	c := &commandLine{fs: flag.NewFlagSet("bulwark", flag.ContinueOnError)}
	fs := c.fs
	fs.SetOutput(stderr)
	fs.Var(&c.listen, "listen", "serve UDP and TCP on `ADDR:PORT` (repeatable; replaces the defaults 127.0.0.1:53 and [::1]:53)")
	fs.StringVar(&c.rootHints, "root-hints", "", "root hints `FILE` in named.root format (default: built-in IANA hints)")
	fs.StringVar(&c.trustAnchor, "trust-anchor", "", "trust anchor `FILE`: DS or DNSKEY records in zone-file format (default: built-in root KSKs)")
	fs.BoolVar(&c.validate, "validate", true, "validate DNSSEC; -validate=false answers without validation")
	fs.StringVar(&c.config, "config", "", "read settings from `FILE` (key: value lines); flags override it")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	fs.BoolVar(&c.queryLog, "query-log", false, "log one line per client query")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile to `FILE` from start to shutdown (for performance reports)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: every setting is a flag", fs.Arg(0))
	}
	return c, nil
}

// apply lays the flags that were given over s.
func (c *commandLine) apply(s *settings) {
	c.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			s.listen = append([]string(nil), c.listen...)
		case "root-hints":
			s.rootHints = c.rootHints
		case "trust-anchor":
			s.trustAnchor = c.trustAnchor
		case "validate":
			s.validate = c.validate
		case "log-level":
			s.logLevel = c.logLevel
		case "query-log":
			s.queryLog = c.queryLog
		}
	})
}

// listenerConfig is the client side of s: the configured access rules
// come after the loopback default, so an equal prefix overrides it.
func (s *settings) listenerConfig() listener.Config {
	return listener.Config{
		Access:       append(listener.DefaultAccess(), s.access...),
		QueryTimeout: s.resolver.QueryTimeout + 2*time.Second,
		Prefetch:     s.prefetch,
		Workers:      s.workers,
	}
}
