package validate

import (
	"bytes"
	"strings"

	"github.com/miekg/dns"
)

// wireLabels returns name's labels in wire form, lower-cased, leftmost
// first. Escapes (\065, \.) are resolved by packing, so that the canonical
// order of RFC 4034 §6.1 compares the real octets.
func wireLabels(name string) [][]byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return nil
	}
	var labels [][]byte
	for off := 0; off < n && buf[off] != 0; {
		l := int(buf[off])
		label := bytes.ToLower(buf[off+1 : off+1+l])
		labels = append(labels, label)
		off += 1 + l
	}
	return labels
}

// canonicalCompare orders names as RFC 4034 §6.1: label by label from the
// right, each label as lower-cased octets, a missing label sorting first.
func canonicalCompare(a, b string) int {
	la, lb := wireLabels(a), wireLabels(b)
	for i := 1; i <= len(la) && i <= len(lb); i++ {
		if c := bytes.Compare(la[len(la)-i], lb[len(lb)-i]); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}

// lastLabels returns the rightmost n labels of name as a name.
func lastLabels(name string, n int) string {
	labels := dns.SplitDomainName(name)
	if n <= 0 {
		return "."
	}
	if n > len(labels) {
		n = len(labels)
	}
	return canonical(strings.Join(labels[len(labels)-n:], "."))
}

// commonAncestor returns the longest name both a and b are at or under.
func commonAncestor(a, b string) string {
	return lastLabels(a, dns.CompareDomainName(a, b))
}

// wildcardAt returns the wildcard name directly under name.
func wildcardAt(name string) string {
	if name == "." {
		return "*."
	}
	return "*." + name
}

// hasType reports whether an NSEC or NSEC3 type bitmap lists t.
func hasType(bitmap []uint16, t uint16) bool {
	for _, b := range bitmap {
		if b == t {
			return true
		}
	}
	return false
}
