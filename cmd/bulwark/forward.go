package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver"
)

// A forward zone is written as in unbound.conf, either as a stanza
//
//	forward-zone:
//	    name: corp.example
//	    forward-addr: 192.0.2.53
//	    forward-addr: 2001:db8::53@5353
//
// or on one line: "forward-zone: name: corp.example forward-addr: 192.0.2.53".
// Queries at or below the name are sent, with RD set, to the forwarders
// (port 53 unless @port is given) instead of being resolved from the root.

// stanzaKeys are the keys that belong to an open forward-zone stanza.
var stanzaKeys = map[string]bool{"name": true, "forward-addr": true}

// forwardStanza is a forward-zone being read.
type forwardStanza struct {
	line int // of the forward-zone: line, which its errors name
	zone resolver.ForwardZone
}

// openStanza starts a forward-zone stanza at line n; value holds the
// one-line form's "name: X forward-addr: A" pairs, if any.
func (c *confReader) openStanza(n int, value string) error {
	c.fwd = &forwardStanza{line: n}
	fields := strings.Fields(value)
	for i := 0; i < len(fields); i += 2 {
		key, ok := strings.CutSuffix(fields[i], ":")
		if !ok || !stanzaKeys[key] || i+1 >= len(fields) {
			return fmt.Errorf("%s:%d: forward-zone: want \"name: ZONE forward-addr: IP[@PORT]...\", got %q", c.file, n, value)
		}
		if err := c.fwd.set(key, fields[i+1]); err != nil {
			return fmt.Errorf("%s:%d: forward-zone: %s: %w", c.file, n, key, err)
		}
	}
	return nil
}

// endStanza closes the open forward-zone stanza, if any, and adds its
// zone to the settings.
func (c *confReader) endStanza() error {
	f := c.fwd
	if f == nil {
		return nil
	}
	c.fwd = nil
	var err error
	switch {
	case f.zone.Zone == "":
		err = errors.New("no name: line")
	case len(f.zone.Addrs) == 0:
		err = fmt.Errorf("%s has no forward-addr: line", f.zone.Zone)
	}
	for _, other := range c.s.resolver.ForwardZones {
		if err == nil && other.Zone == f.zone.Zone {
			err = fmt.Errorf("%s is already forwarded by an earlier stanza", f.zone.Zone)
		}
	}
	if err != nil {
		return fmt.Errorf("%s:%d: forward-zone: %w", c.file, f.line, err)
	}
	c.s.resolver.ForwardZones = append(c.s.resolver.ForwardZones, f.zone)
	return nil
}

// set applies one name: or forward-addr: line of the stanza.
func (f *forwardStanza) set(key, value string) error {
	value = strings.Trim(value, `"`)
	if key == "forward-addr" {
		ap, err := parseForwardAddr(value)
		if err != nil {
			return err
		}
		f.zone.Addrs = append(f.zone.Addrs, ap)
		return nil
	}
	if f.zone.Zone != "" {
		return fmt.Errorf("the stanza already names %s", f.zone.Zone)
	}
	if _, ok := dns.IsDomainName(value); !ok || value == "" {
		return fmt.Errorf("%q is not a domain name", value)
	}
	f.zone.Zone = dns.Fqdn(strings.ToLower(value))
	return nil
}

// parseForwardAddr reads IP or IP@PORT, as unbound.conf writes them.
func parseForwardAddr(v string) (netip.AddrPort, error) {
	host, port, hasPort := strings.Cut(v, "@")
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address (want IP or IP@PORT)", v)
	}
	p := uint64(53)
	if hasPort {
		if p, err = strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return netip.AddrPort{}, fmt.Errorf("%q: port %q is not 1-65535", v, port)
		}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), nil
}
