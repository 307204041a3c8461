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
// NSEC proofs compare names with every record of a zone: names in ASCII
// are compared on the stack, others by wireLabels.
func canonicalCompare(a, b string) int {
	var wa, wb [256]byte
	var ia, ib [maxLabels]int
	la, oka := asciiWireLabels(a, wa[:], ia[:0])
	lb, okb := asciiWireLabels(b, wb[:], ib[:0])
	if !oka || !okb {
		return canonicalCompareSlow(a, b)
	}
	for i := 1; i <= len(la) && i <= len(lb); i++ {
		if c := compareLower(label(wa[:], la[len(la)-i]), label(wb[:], lb[len(lb)-i])); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}

// asciiWireLabels packs name into buf as wireLabels does and appends the
// offset of each label's length octet to idx. It reports false when a
// label holds a non-ASCII octet, which bytes.ToLower would treat as
// UTF-8, or there are more labels than idx holds.
func asciiWireLabels(name string, buf []byte, idx []int) ([]int, bool) {
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return idx, true // wireLabels: no labels
	}
	for off := 0; off < n && buf[off] != 0; off += 1 + int(buf[off]) {
		if len(idx) == cap(idx) {
			return nil, false
		}
		for _, c := range label(buf, off) {
			if c >= 0x80 {
				return nil, false
			}
		}
		idx = append(idx, off)
	}
	return idx, true
}

// label is the label whose length octet is at buf[off].
func label(buf []byte, off int) []byte { return buf[off+1 : off+1+int(buf[off])] }

// compareLower is bytes.Compare of a and b with ASCII letters lowered.
func compareLower(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if x, y := lower(a[i]), lower(b[i]); x != y {
			return int(x) - int(y)
		}
	}
	return len(a) - len(b)
}

// canonicalCompareSlow is canonicalCompare over wireLabels.
func canonicalCompareSlow(a, b string) int {
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

// maxLabels bounds the labels isSubDomain and canonicalCompare index on
// the stack: a valid name has at most 127; longer strings take the slow
// path (miekg's, or wireLabels).
const maxLabels = 128

// isSubDomain is dns.IsSubDomain without its two allocations per call
// (the label indexes of both names): the validator asks it for every
// ancestor of every name it proves or synthesises.
func isSubDomain(parent, child string) bool {
	var pi, ci [maxLabels]int
	p, okp := labelStarts(parent, pi[:0])
	c, okc := labelStarts(child, ci[:0])
	if !okp || !okc {
		return dns.IsSubDomain(parent, child)
	}
	// len(p) is dns.CountLabel(parent): both count dns.NextLabel's steps.
	return commonLabels(parent, child, p, c) == len(p)
}

// labelStarts appends to idx the label offsets dns.Split returns for s,
// or reports false when they do not fit in idx's capacity.
func labelStarts(s string, idx []int) ([]int, bool) {
	if s == "." {
		return idx, true
	}
	idx = append(idx, 0)
	for off, end := dns.NextLabel(s, 0); !end; off, end = dns.NextLabel(s, off) {
		if len(idx) == cap(idx) {
			return nil, false
		}
		idx = append(idx, off)
	}
	return idx, true
}

// commonLabels is dns.CompareDomainName over label offsets l1 and l2 of
// s1 and s2.
func commonLabels(s1, s2 string, l1, l2 []int) int {
	if s1 == "." || s2 == "." {
		return 0
	}
	j1, j2 := len(l1)-1, len(l2)-1
	if !asciiEqualFold(s1[l1[j1]:], s2[l2[j2]:]) {
		return 0
	}
	n := 1
	for i1, i2 := j1-1, j2-1; i1 >= 0 && i2 >= 0; i1, i2, j1, j2 = i1-1, i2-1, j1-1, j2-1 {
		if !asciiEqualFold(s1[l1[i1]:l1[j1]], s2[l2[i2]:l2[j2]]) {
			break
		}
		n++
	}
	return n
}
