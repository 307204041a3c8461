package listener

import (
	"fmt"
	"net/netip"
	"strings"
)

// Action is what the access list does with a client's query.
type Action uint8

// Actions, in the spirit of Unbound's access-control.
const (
	// Refuse answers REFUSED: the client learns it is not served.
	Refuse Action = iota
	// Allow serves the client.
	Allow
	// Deny drops the query silently.
	Deny
)

var actionNames = [...]string{"refuse", "allow", "deny"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action?"
}

// AccessRule applies Action to clients inside Prefix.
type AccessRule struct {
	Prefix netip.Prefix
	Action Action
}

// DefaultAccess allows loopback only: an open resolver is a reflection
// amplifier, so private ranges (RFC 1918, ULA) are served only when
// configured.
func DefaultAccess() []AccessRule {
	return []AccessRule{
		{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Action: Allow},
		{Prefix: netip.MustParsePrefix("::1/128"), Action: Allow},
	}
}

// ParseAccessRule reads "PREFIX ACTION", e.g. "192.168.0.0/16 allow"; a
// bare address is a host prefix.
func ParseAccessRule(s string) (AccessRule, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return AccessRule{}, fmt.Errorf("access rule %q: want PREFIX ACTION (allow, refuse or deny)", s)
	}
	p, err := parsePrefix(f[0])
	if err != nil {
		return AccessRule{}, fmt.Errorf("access rule %q: %w", s, err)
	}
	for i, name := range actionNames {
		if strings.EqualFold(f[1], name) {
			return AccessRule{Prefix: p, Action: Action(i)}, nil
		}
	}
	return AccessRule{}, fmt.Errorf("access rule %q: action %q is not allow, refuse or deny", s, f[1])
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

// accessList picks the rule with the longest matching prefix; of equally
// long ones the last given wins, so a configured rule overrides a default.
type accessList []AccessRule

func newAccessList(rules []AccessRule) accessList {
	out := make(accessList, 0, len(rules))
	for _, r := range rules {
		out = append(out, AccessRule{Prefix: r.Prefix.Masked(), Action: r.Action})
	}
	return out
}

func (l accessList) decide(client netip.Addr) Action {
	client = client.Unmap()
	best, bits := Refuse, -1
	for _, r := range l {
		if r.Prefix.Bits() >= bits && r.Prefix.Contains(client) {
			best, bits = r.Action, r.Prefix.Bits()
		}
	}
	return best
}
