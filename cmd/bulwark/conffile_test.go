package main

import (
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-dns/bulwark/resolver"
	"github.com/bulwark-dns/bulwark/resolver/listener"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

func TestConfigFileSetsEveryKey(t *testing.T) {
	text := `# a full file
listen: 127.0.0.1:5353
listen: [::1]:5353   # both families
root-hints: /etc/bulwark/named.root
trust-anchor: /etc/bulwark/root.key
validate: no
qname-minimisation: off
do-ip6: no
access-control: 192.168.0.0/16 allow
access-control: 10.0.0.0/8 deny
max-ttl: 3600
min-ttl: 30s
max-negative-ttl: 15m
query-timeout: 5
cache-size: 128m
gc-floor: 8m
log-level: debug
query-log: yes
max-referrals: 20
max-cnames: 8
max-ns-lookups: 5
max-upstream-queries: 50
max-depth: 4
max-servers-per-zone: 10
unwanted-reply-threshold: 25
workers: 1
serve-expired: yes
serve-expired-ttl: 2h
prefetch: yes
answer-cache-doorkeeper: no
minimal-responses: no
harden-unverified-glue: yes
aggressive-nsec: no
upstream-io-uring: no
heap-huge-pages: no
domain-insecure: corp.example
domain-insecure: lab.example.
forward-zone:
    name: "Corp.Example"
    forward-addr: 192.0.2.53
    forward-addr: 2001:db8::53@5353
forward-zone: name: lab.example. forward-addr: 192.0.2.54@53
`
	s := defaultSettings()
	if err := parseConfig(strings.NewReader(text), "bulwark.conf", &s); err != nil {
		t.Fatal(err)
	}
	want := defaultSettings()
	want.listen = []string{"127.0.0.1:5353", "[::1]:5353"}
	want.rootHints, want.trustAnchor = "/etc/bulwark/named.root", "/etc/bulwark/root.key"
	want.validate, want.resolver.QNameMinimisation, want.resolver.DoIPv6 = false, false, false
	want.access = []listener.AccessRule{
		{Prefix: netip.MustParsePrefix("192.168.0.0/16"), Action: listener.Allow},
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Action: listener.Deny},
	}
	want.resolver.MaxTTL, want.resolver.MinTTL = time.Hour, 30*time.Second
	want.resolver.MaxNegativeTTL, want.resolver.QueryTimeout = 15*time.Minute, 5*time.Second
	want.cacheSize, want.gcFloor, want.logLevel, want.queryLog = 128<<20, 8<<20, "debug", true
	want.resolver.Limits.MaxReferrals, want.resolver.Limits.MaxCNAMEs = 20, 8
	want.resolver.Limits.MaxNSLookups, want.resolver.Limits.MaxUpstreamQueries = 5, 50
	want.resolver.ZonePressure.Threshold = 25
	want.resolver.Limits.MaxDepth, want.resolver.Limits.MaxServersPerZone = 4, 10
	want.workers, want.serveExpired, want.serveExpiredTTL, want.prefetch = 1, true, 2*time.Hour, true
	want.answerDoorkeeper = false
	want.resolver.MinimalResponses, want.resolver.HardenUnverifiedGlue, want.aggressiveNSEC = false, true, false
	want.ioURing = transport.IOURingOff
	want.heapHugePages = false
	want.insecure = []string{"corp.example.", "lab.example."}
	want.resolver.ForwardZones = []resolver.ForwardZone{
		{Zone: "corp.example.", Addrs: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53"), netip.MustParseAddrPort("[2001:db8::53]:5353")}},
		{Zone: "lab.example.", Addrs: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.54:53")}},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("settings\n got %+v\nwant %+v", s, want)
	}
}

func TestConfigFileErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{name: "LineWithoutColon", text: "validate yes", want: `c.conf:1: want "key: value", got "validate yes"`},
		{name: "KeyWithoutValue", text: "# x\n\nroot-hints:", want: `c.conf:3: want "key: value", got "root-hints:"`},
		{name: "UnknownKey", text: "listen: 127.0.0.1:53\nstub-zone: x", want: `c.conf:2: unknown key "stub-zone" (known: access-control, aggressive-nsec, answer-cache-doorkeeper, cache-size, `},
		{name: "ForwardZoneWithoutName", text: "validate: yes\nforward-zone:\n  forward-addr: 192.0.2.1\nvalidate: yes", want: `c.conf:2: forward-zone: no name: line`},
		{name: "ForwardZoneWithoutAddr", text: "forward-zone:\n  name: corp.example\n", want: `c.conf:1: forward-zone: corp.example. has no forward-addr: line`},
		{name: "ForwardZoneTwice", text: "forward-zone: name: a.example forward-addr: 192.0.2.1\nforward-zone:\nname: A.example.\nforward-addr: 192.0.2.2", want: `c.conf:2: forward-zone: a.example. is already forwarded by an earlier stanza`},
		{name: "ForwardAddrNotAnAddress", text: "forward-zone:\n name: corp.example\n forward-addr: ns.corp.example", want: `c.conf:3: forward-addr: "ns.corp.example" is not an IP address (want IP or IP@PORT)`},
		{name: "ForwardAddrBadPort", text: "forward-zone:\n name: corp.example\n forward-addr: 192.0.2.1@99999", want: `c.conf:3: forward-addr: "192.0.2.1@99999": port "99999" is not 1-65535`},
		{name: "ForwardZoneNameTwice", text: "forward-zone:\n name: corp.example\n name: lab.example", want: `c.conf:3: name: the stanza already names corp.example.`},
		{name: "NameOutsideStanza", text: "validate: yes\nname: corp.example", want: `c.conf:2: name: only inside a forward-zone stanza`},
		{name: "AddrAfterStanzaClosed", text: "forward-zone: name: a.example forward-addr: 192.0.2.1\nvalidate: yes\nforward-addr: 192.0.2.2", want: `c.conf:3: forward-addr: only inside a forward-zone stanza`},
		{name: "ForwardZoneOneLineGarbled", text: "forward-zone: corp.example 192.0.2.1", want: `c.conf:1: forward-zone: want "name: ZONE forward-addr: IP[@PORT]...", got "corp.example 192.0.2.1"`},
		{name: "BadBool", text: "validate: maybe", want: `c.conf:1: validate: "maybe" is not yes or no`},
		{name: "BadDuration", text: "max-ttl: a day", want: `c.conf:1: max-ttl: "a day" is neither seconds nor a duration like 1h30m`},
		{name: "NegativeDuration", text: "min-ttl: -5s", want: `c.conf:1: min-ttl: "-5s" is neither seconds nor a duration like 1h30m`},
		{name: "BadSize", text: "cache-size: 64x", want: `c.conf:1: cache-size: "64x" is not a size like 64m`},
		{name: "ZeroCacheSize", text: "cache-size: 0", want: `c.conf:1: cache-size: "0" is not a size like 64m`},
		{name: "NegativeGCFloor", text: "gc-floor: -16m", want: `c.conf:1: gc-floor: "-16m" is not a size like 64m`},
		{name: "BadInteger", text: "max-depth: -1", want: `c.conf:1: max-depth: "-1" is not a non-negative integer`},
		{name: "BadListen", text: "listen: 127.0.0.1", want: `c.conf:1: listen: want ADDR:PORT: address 127.0.0.1: missing port in address`},
		{name: "BadAccessAction", text: "access-control: 10.0.0.0/8 permit", want: `c.conf:1: access-control: access rule "10.0.0.0/8 permit": action "permit" is not allow, refuse or deny`},
		{name: "BadLogLevel", text: "log-level: loud", want: `c.conf:1: log-level: log level "loud" is not debug, info, warn or error`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := defaultSettings()
			err := parseConfig(strings.NewReader(tc.text), "c.conf", &s)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestFlagsOverrideTheConfigFile(t *testing.T) {
	s := defaultSettings()
	text := "listen: 127.0.0.1:5353\nvalidate: yes\nlog-level: warn\nquery-log: no\nroot-hints: file.root"
	if err := parseConfig(strings.NewReader(text), "c.conf", &s); err != nil {
		t.Fatal(err)
	}
	cl, err := parseCommandLine([]string{"-listen", "127.0.0.2:53", "-listen", "[::1]:53", "-validate=false", "-query-log"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cl.apply(&s)
	if !reflect.DeepEqual(s.listen, []string{"127.0.0.2:53", "[::1]:53"}) || s.validate || !s.queryLog {
		t.Errorf("flags did not override: listen %v validate %v query-log %v", s.listen, s.validate, s.queryLog)
	}
	if s.logLevel != "warn" || s.rootHints != "file.root" {
		t.Errorf("unset flags overrode the file: log-level %q root-hints %q", s.logLevel, s.rootHints)
	}
}

func TestNoListenLineKeepsTheDefaults(t *testing.T) {
	s := defaultSettings()
	if err := parseConfig(strings.NewReader("validate: yes\n"), "c.conf", &s); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.listen, defaultListen) {
		t.Errorf("listen %v, want the defaults %v", s.listen, defaultListen)
	}
}

func TestCacheSizeIsSplitBetweenRecordsAndAnswers(t *testing.T) {
	tests := []struct {
		name             string
		size             int64
		records, answers int64
	}{
		{name: "Default", size: 0, records: 48 << 20, answers: 16 << 20},
		{name: "Configured", size: 400 << 20, records: 300 << 20, answers: 100 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := defaultSettings()
			s.cacheSize = tc.size
			if r, a := s.cacheSizes(); r != tc.records || a != tc.answers {
				t.Errorf("records %d answers %d, want %d and %d", r, a, tc.records, tc.answers)
			}
		})
	}
}

func TestGCPercentKeyThenEnvironmentThenDefault(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		env     string
		want    int
		wantSet bool
	}{
		{name: "Default", want: defaultGCPercent, wantSet: true},
		{name: "EnvironmentKept", env: "200", wantSet: false},
		{name: "KeyOverridesEnvironment", conf: "gc-percent: 80\n", env: "200", want: 80, wantSet: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := defaultSettings()
			if err := parseConfig(strings.NewReader(tc.conf), "c.conf", &s); err != nil {
				t.Fatal(err)
			}
			env := func(k string) string {
				if k == "GOGC" {
					return tc.env
				}
				return ""
			}
			if got, set := s.goGC(env); got != tc.want || set != tc.wantSet {
				t.Errorf("goGC = %d, %v; want %d, %v", got, set, tc.want, tc.wantSet)
			}
		})
	}
	s := defaultSettings()
	if err := parseConfig(strings.NewReader("gc-percent: 0\n"), "c.conf", &s); err == nil {
		t.Error("gc-percent: 0 accepted; it would make the collector run without pause")
	}
}

func TestQueryLogTurnsTheAnswerCacheOff(t *testing.T) {
	s := defaultSettings()
	if s.answerCache() == nil {
		t.Fatal("no answer cache by default")
	}
	s.queryLog = true
	if s.answerCache() != nil {
		t.Error("answer cache on with the query log: hits would go unlogged")
	}
}
