package replay

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver"
)

// setup is what a scenario's CONFIG turns into.
type setup struct {
	cfg resolver.Config
	// validate is false for module-config without the validator and for
	// scenarios without a trust anchor (nothing could become secure).
	validate bool
	anchors  []dns.RR
	// insecure are the domain-insecure names (negative trust anchors).
	insecure                           []string
	fakeSHA1, fakeDSA                  bool
	aggressiveNSEC                     bool // Unbound's default is yes
	hardenAlgoDowngrade, allowStripped bool
	ignoreDates                        bool // val-override-date: -1
	// nsec3MaxIterations is the validator's NSEC3 iteration limit; 0
	// keeps Bulwark's default (50).
	nsec3MaxIterations int
	// start is the virtual clock's start; sigTime, when set, freezes the
	// validator's clock (Unbound val-override-date).
	start   time.Time
	sigTime time.Time
	// skip names the option that Bulwark cannot honour.
	skip string
}

// defaultStart is the virtual clock's start when a scenario fixes none.
var defaultStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Keys that only tune logging and never change an answer.
var logOnlyKeys = map[string]bool{"verbosity": true, "log-servfail": true, "val-log-level": true, "directory": true}

// fixedBehaviour holds keys whose value states what Bulwark always does,
// so the scenario runs; any other value of the key makes it skip. An empty
// value list accepts every value: the option names a hardening Bulwark has
// no switch for and the answers show whether it behaves as asked.
var fixedBehaviour = map[string][]string{
	"target-fetch-policy":       nil,    // Bulwark looks NS addresses up lazily, one at a time, whatever the scenario asks
	"trust-anchor-signaling":    {"no"}, // no RFC 8145 signalling queries
	"iter-scrub-promiscuous":    nil,
	"rrset-roundrobin":          {"no"},
	"harden-glue":               {"yes"}, // Bulwark always scrubs glue
	"harden-referral-path":      nil,
	"harden-unknown-additional": nil,
	"harden-below-nxdomain":     nil,
	"ede":                       {"yes"},
	"local-zone":                {"test. nodefault"},
	"do-not-query-localhost":    {"off", "no"},
	"stub-name":                 nil,
	"name":                      {"."},
}

// buildSetup maps the scenario's CONFIG onto resolver options.
func buildSetup(sc *Scenario) setup {
	st := setup{cfg: resolver.DefaultConfig(), validate: true, start: defaultStart, aggressiveNSEC: true}
	if sc.Dialect == Unbound {
		// testbound runs with Unbound's default val-nsec3-keysize-iterations,
		// 150 for every key size, and its scenarios sign with up to 123.
		st.nsec3MaxIterations = 150
		// Unbound's minimal responses keep an NS answer's addresses;
		// Knot Resolver, whose behaviour Deckard's scenarios expect, drops them.
		st.cfg.NSAnswerAddresses = true
	}
	var stubs []netip.Addr
	for _, o := range sc.Config {
		if o.Block != "" && o.Block != "server" && o.Block != "stub-zone" {
			return setup{skip: fmt.Sprintf("%s: not supported", o.Block)}
		}
		var err error
		switch o.Key {
		case "stub-addr":
			var a netip.Addr
			a, err = netip.ParseAddr(firstWord(o.Value))
			stubs = append(stubs, a)
		default:
			err = st.apply(o)
		}
		if err != nil {
			return setup{skip: fmt.Sprintf("%s: %v", o.Key, err)}
		}
	}
	if len(stubs) > 0 {
		st.cfg.RootHints = stubHints(sc, stubs)
	}
	if len(st.anchors) == 0 {
		st.validate = false
	}
	return st
}

// apply sets the option o names.
func (st *setup) apply(o Option) error {
	v := strings.ToLower(o.Value)
	switch o.Key {
	case "qname-minimisation", "query-minimization":
		return setBool(&st.cfg.QNameMinimisation, v)
	case "minimal-responses":
		return setBool(&st.cfg.MinimalResponses, v)
	case "do-ip4":
		return setBool(&st.cfg.DoIPv4, v)
	case "do-ip6":
		return setBool(&st.cfg.DoIPv6, v)
	case "stub-prime":
		return setBool(&st.cfg.PrimeRoot, v)
	case "aggressive-nsec":
		return setBool(&st.aggressiveNSEC, v)
	case "harden-algo-downgrade":
		return setBool(&st.hardenAlgoDowngrade, v)
	case "harden-dnssec-stripped":
		var harden bool
		err := setBool(&harden, v)
		st.allowStripped = !harden
		return err
	case "harden-unverified-glue":
		return setBool(&st.cfg.HardenUnverifiedGlue, v)
	case "iter-scrub-ns":
		return setInt(&st.cfg.Limits.MaxServersPerZone, v)
	case "access-control":
		return st.accessControl(v)
	case "module-config":
		st.validate = strings.Contains(v, "validator")
		return nil
	case "trust-anchor", "val-override-date", "val-override-timestamp", "fake-sha1", "fake-dsa", "domain-insecure":
		return st.validatorOption(o)
	}
	if logOnlyKeys[o.Key] {
		return nil
	}
	allowed, known := fixedBehaviour[o.Key]
	if !known {
		return fmt.Errorf("not supported")
	}
	if allowed == nil {
		return nil
	}
	for _, a := range allowed {
		if strings.Join(strings.Fields(v), " ") == a {
			return nil
		}
	}
	return fmt.Errorf("value %q not supported", o.Value)
}

func setBool(dst *bool, v string) error {
	switch v {
	case "yes", "on", "true":
		*dst = true
	case "no", "off", "false":
		*dst = false
	default:
		return fmt.Errorf("%q is not yes or no", v)
	}
	return nil
}

func setInt(dst *int, v string) error {
	n, err := strconv.Atoi(strings.Trim(v, `"`))
	if err != nil || n < 1 {
		return fmt.Errorf("%q is not a positive number", v)
	}
	*dst = n
	return nil
}

// accessControl honours "prefix allow" and "prefix allow_snoop" for the
// loopback clients the runner sends from.
func (st *setup) accessControl(v string) error {
	f := strings.Fields(v)
	if len(f) != 2 {
		return fmt.Errorf("%q: want prefix and action", v)
	}
	switch f[1] {
	case "allow":
	case "allow_snoop":
		st.cfg.AllowSnoop = true
	default:
		return fmt.Errorf("action %q not supported", f[1])
	}
	return nil
}

// validatorOption records the DNSSEC options of a scenario.
func (st *setup) validatorOption(o Option) error {
	switch o.Key {
	case "trust-anchor":
		rr, err := dns.NewRR(o.Value)
		if err != nil {
			return fmt.Errorf("%q: %w", o.Value, err)
		}
		st.anchors = append(st.anchors, rr)
	case "val-override-date":
		if o.Value == "-1" {
			st.ignoreDates = true
			return nil
		}
		t, err := time.Parse("20060102150405", o.Value)
		if err != nil {
			return err
		}
		st.start, st.sigTime = t, t
	case "val-override-timestamp":
		sec, err := strconv.ParseInt(o.Value, 10, 64)
		if err != nil {
			return err
		}
		st.start = time.Unix(sec, 0).UTC()
		st.sigTime = st.start
	case "fake-sha1":
		return setBool(&st.fakeSHA1, strings.ToLower(o.Value))
	case "fake-dsa":
		return setBool(&st.fakeDSA, strings.ToLower(o.Value))
	case "domain-insecure":
		st.insecure = append(st.insecure, dns.Fqdn(strings.ToLower(o.Value)))
	}
	return nil
}

// stubHints builds root hints for the stub addresses, naming each server
// as the scenario's own root NS answer does, else k.root-servers.net
// (Deckard's stub-name default).
func stubHints(sc *Scenario, addrs []netip.Addr) []dns.RR {
	var hints []dns.RR
	seen := map[string]bool{}
	for _, a := range addrs {
		name := serverName(sc, a)
		if !seen[name] {
			seen[name] = true
			hints = append(hints, &dns.NS{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600000}, Ns: name})
		}
		hdr := dns.RR_Header{Name: name, Class: dns.ClassINET, Ttl: 3600000}
		if a.Is4() {
			hdr.Rrtype = dns.TypeA
			hints = append(hints, &dns.A{Hdr: hdr, A: a.AsSlice()})
		} else {
			hdr.Rrtype = dns.TypeAAAA
			hints = append(hints, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	return hints
}

// serverName finds the root NS name the scenario gives address a.
func serverName(sc *Scenario, a netip.Addr) string {
	for _, o := range sc.Config {
		if o.Key == "stub-name" {
			return dns.Fqdn(strings.ToLower(o.Value))
		}
	}
	roots := map[string]bool{}
	var named []string
	for _, rg := range sc.Ranges {
		for _, e := range rg.Entries {
			for _, sec := range e.Sections {
				for _, rr := range sec {
					switch v := rr.(type) {
					case *dns.NS:
						if v.Hdr.Name == "." {
							roots[strings.ToLower(v.Ns)] = true
						}
					case *dns.A, *dns.AAAA:
						if addr, ok := rrAddr(rr); ok && addr == a {
							named = append(named, strings.ToLower(rr.Header().Name))
						}
					}
				}
			}
		}
	}
	for _, n := range named {
		if roots[n] {
			return n
		}
	}
	return "k.root-servers.net."
}

func rrAddr(rr dns.RR) (netip.Addr, bool) {
	switch v := rr.(type) {
	case *dns.A:
		return netip.AddrFromSlice(v.A.To4())
	case *dns.AAAA:
		a, ok := netip.AddrFromSlice(v.AAAA.To16())
		return a.Unmap(), ok
	}
	return netip.Addr{}, false
}
