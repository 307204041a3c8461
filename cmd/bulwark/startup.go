package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/resolver/listener"
)

// listenAll binds every listen address. Of the defaults, [::1]:53 may be
// missing on a machine without IPv6: that is a warning, and IPv4 serves
// alone. Any other failure stops the start with a message saying what to
// do.
func listenAll(ctx context.Context, srv *listener.Server, s *settings, log *zap.Logger) error {
	defaults := slices.Equal(s.listen, defaultListen)
	bound := 0
	for _, addr := range s.listen {
		err := srv.Listen(ctx, addr)
		if err == nil {
			bound++
			continue
		}
		if defaults && isIPv6(addr) && noIPv6(err) {
			log.Warn("IPv6 loopback is not available on this machine; serving IPv4 only",
				zap.String("listen", addr), zap.Error(err))
			continue
		}
		return bindError(addr, err)
	}
	if bound == 0 {
		return errors.New("no listen address could be bound")
	}
	return nil
}

func isIPv6(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.To4() == nil
}

func noIPv6(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT)
}

// bindError explains a failed bind and what to do about it.
func bindError(addr string, err error) error {
	var hint string
	switch {
	case errors.Is(err, syscall.EACCES):
		hint = "ports below 1024 need privileges: run bulwark as root, or build it and grant the capability " +
			"(go build ./cmd/bulwark && sudo setcap cap_net_bind_service=+ep ./bulwark), " +
			"or listen on a high port instead, e.g. -listen 127.0.0.1:5353"
	case errors.Is(err, syscall.EADDRINUSE):
		hint = "another program already serves this address (another resolver such as unbound, dnsmasq " +
			"or systemd-resolved, or a second bulwark): stop it, or choose another address, e.g. -listen 127.0.0.1:5353"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = "no interface of this machine has this address: choose another with -listen"
	default:
		hint = "choose another address with -listen ADDR:PORT"
	}
	return fmt.Errorf("cannot listen on %s: %w\n  %s", addr, err, hint)
}

// logSummary logs what the daemon runs with, once, at start; hugePages
// is what heapHugePages did.
func logSummary(log *zap.Logger, s *settings, srv *listener.Server, hugePages string) {
	var addrs []string
	for _, a := range srv.Addrs() {
		addrs = append(addrs, a.String())
	}
	hintSource := s.rootHints
	if hintSource == "" {
		hintSource = "built-in IANA named.root"
	}
	servers, hintAddrs := countHints(s.resolver.RootHints)
	anchors := s.trustAnchor
	switch {
	case !s.validate:
		anchors = "unused: validation off"
	case anchors == "":
		anchors = "built-in root KSKs"
	}
	records, answers := s.cacheSizes()
	cacheSize := fmt.Sprintf("%d bytes: %d records, %d answers", records+answers, records, answers)
	if s.cacheSize <= 0 {
		cacheSize = "64m (default): 48m records, 16m answers"
	}
	_, gcFloor, _ := s.gcTuning(os.Getenv)
	var access []string
	for _, r := range s.listenerConfig().Access {
		access = append(access, r.Prefix.String()+" "+r.Action.String())
	}
	log.Info("bulwark started",
		zap.Strings("listen", addrs),
		zap.String("root-hints", hintSource),
		zap.Int("root-servers", servers),
		zap.Int("root-addresses", hintAddrs),
		zap.Bool("validate", s.validate),
		zap.String("trust-anchor", anchors),
		zap.Bool("qname-minimisation", s.resolver.QNameMinimisation),
		zap.Strings("access-control", access),
		zap.Duration("max-ttl", s.resolver.MaxTTL),
		zap.String("cache-size", cacheSize),
		zap.Bool("answer-cache-doorkeeper", s.answerDoorkeeper),
		zap.String("gc-percent", gcPercentText(s)),
		zap.Int64("gc-floor", gcFloor),
		zap.Any("limits", s.resolver.Limits),
		zap.Int("workers", srv.Workers()),
		zap.Bool("prefetch", s.prefetch),
		zap.String("serve-expired", serveExpired(s)),
		zap.Strings("forward-zones", forwardZones(s)),
		zap.Bool("query-log", s.queryLog),
		zap.String("upstream-sockets", upstreamSockets(s.ioURing)),
		zap.String("heap-huge-pages", hugePages))
}

// gcPercentText says which GOGC the daemon runs with and where it came from.
func gcPercentText(s *settings) string {
	p, set := s.goGC(os.Getenv)
	switch {
	case !set:
		return "GOGC=" + os.Getenv("GOGC") + " (environment)"
	case s.gcPercent == 0:
		return strconv.Itoa(p) + " (default)"
	}
	return strconv.Itoa(p)
}

// forwardZones describes each forward zone as "zone → addr:port, ...".
func forwardZones(s *settings) []string {
	var out []string
	for _, fz := range s.resolver.ForwardZones {
		addrs := make([]string, len(fz.Addrs))
		for i, a := range fz.Addrs {
			addrs[i] = a.String()
		}
		out = append(out, fz.Zone+" → "+strings.Join(addrs, ", "))
	}
	return out
}

func countHints(hints []dns.RR) (servers, addrs int) {
	for _, rr := range hints {
		switch rr.(type) {
		case *dns.NS:
			servers++
		case *dns.A, *dns.AAAA:
			addrs++
		}
	}
	return servers, addrs
}

func serveExpired(s *settings) string {
	if !s.serveExpired {
		return "no"
	}
	return "up to " + s.serveExpiredTTL.String() + " past expiry"
}
