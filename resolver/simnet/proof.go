package simnet

import (
	"strings"

	"github.com/miekg/dns"
)

// The prove* methods add denial-of-existence records to the authority
// section when the query has DO and the zone is signed: NSEC after RFC 4035
// §3.1.3, NSEC3 after RFC 5155 §7.2. A zone with both gets both; a zone
// signed by a real signer has one chain.

// proveNXDomain: the name does not exist and no wildcard could have
// produced it (RFC 4035 §3.1.3.2, RFC 5155 §7.2.2).
func (r *responder) proveNXDomain(lname, ce string) {
	if !r.do {
		return
	}
	r.nsecCover(lname)
	r.nsecCover(wildcardOf(ce))
	if len(r.ix.nsec3s) > 0 {
		pce := r.nsec3ClosestEncloser(lname)
		r.nsec3Cover(wildcardOf(pce))
	}
}

// proveNoData: the name exists but not with the type (RFC 4035 §3.1.3.1,
// RFC 5155 §7.2.3); for an empty non-terminal the NSEC before it covers it.
// Without a matching NSEC3 (a DS query or referral under opt-out, RFC 5155
// §7.2.4) the closest provable encloser proof stands in.
func (r *responder) proveNoData(lname string) {
	if !r.do {
		return
	}
	if !r.nsecMatch(lname) {
		r.nsecCover(lname)
	}
	if len(r.ix.nsec3s) > 0 && !r.nsec3Match(lname) {
		r.nsec3ClosestEncloser(lname)
	}
}

// proveWildcardAnswer: no closer match than the wildcard exists (RFC 4035
// §3.1.3.3, RFC 5155 §7.2.6).
func (r *responder) proveWildcardAnswer(lname, ce string) {
	r.nsecCover(lname)
	if len(r.ix.nsec3s) > 0 {
		r.nsec3Cover(nextCloser(lname, ce))
	}
}

// proveWildcardNoData: the wildcard matched but lacks the type (RFC 4035
// §3.1.3.4, RFC 5155 §7.2.5).
func (r *responder) proveWildcardNoData(lname, ce, wc string) {
	if !r.do {
		return
	}
	r.nsecCover(lname)
	r.nsecMatch(wc)
	if len(r.ix.nsec3s) > 0 {
		r.nsec3Match(ce)
		r.nsec3Cover(nextCloser(lname, ce))
		r.nsec3Match(wc)
	}
}

func (r *responder) nsecMatch(lname string) bool {
	for _, n := range r.ix.nsecs {
		if strings.ToLower(n.Hdr.Name) == lname {
			r.proof(n, n.Hdr.Name)
			return true
		}
	}
	return false
}

func (r *responder) nsecCover(lname string) {
	for _, n := range r.ix.nsecs {
		owner, next := strings.ToLower(n.Hdr.Name), strings.ToLower(n.NextDomain)
		after := canonicalCompare(owner, lname) < 0
		before := canonicalCompare(lname, next) < 0 || canonicalCompare(next, owner) <= 0
		if after && before {
			r.proof(n, n.Hdr.Name)
			return
		}
	}
}

func (r *responder) nsec3Match(lname string) bool {
	if n := r.findNSEC3(lname, true); n != nil {
		r.proof(n, n.Hdr.Name)
		return true
	}
	return false
}

func (r *responder) nsec3Cover(lname string) {
	if n := r.findNSEC3(lname, false); n != nil {
		r.proof(n, n.Hdr.Name)
	}
}

// findNSEC3 returns the NSEC3 matching (or covering) lname. The name is
// hashed once per parameter set rather than once per record, as miekg's
// Match and Cover would.
func (r *responder) findNSEC3(lname string, match bool) *dns.NSEC3 {
	hashes := map[nsec3Params]string{}
	for _, n := range r.ix.nsec3s {
		p := nsec3Params{n.rr.Hash, n.rr.Iterations, n.rr.Salt}
		h, ok := hashes[p]
		if !ok {
			h = dns.HashName(lname, p.hash, p.iterations, p.salt)
			hashes[p] = h
		}
		if match && h == n.hash {
			return n.rr
		}
		// Signers write the next hash in either case (ldns-signzone:
		// lower); the hashes compare in upper case.
		if !match && covers(n.hash, strings.ToUpper(n.rr.NextDomain), h) {
			return n.rr
		}
	}
	return nil
}

// covers says whether hash h falls strictly between owner and next on the
// circular NSEC3 chain (RFC 5155 §8.3).
func covers(owner, next, h string) bool {
	if owner < next {
		return owner < h && h < next
	}
	return h > owner || h < next
}

// nsec3ClosestEncloser adds the closest encloser proof (RFC 5155 §7.2.1):
// the NSEC3 matching the closest provable encloser and the one covering the
// next closer name. It returns the encloser.
func (r *responder) nsec3ClosestEncloser(lname string) string {
	for n := parent(lname); ; n = parent(n) {
		if n == r.ix.origin || r.hasNSEC3For(n) {
			r.nsec3Match(n)
			r.nsec3Cover(nextCloser(lname, n))
			return n
		}
	}
}

func (r *responder) hasNSEC3For(lname string) bool { return r.findNSEC3(lname, true) != nil }

// proof adds a denial record and its signatures once.
func (r *responder) proof(rr dns.RR, owner string) {
	if r.added[rr] {
		return
	}
	r.added[rr] = true
	r.m.Ns = append(r.m.Ns, rr)
	r.m.Ns = append(r.m.Ns, r.ix.sigs[strings.ToLower(owner)][rr.Header().Rrtype]...)
}

// nextCloser is the ancestor of lname one label longer than ce.
func nextCloser(lname, ce string) string {
	n := lname
	for parent(n) != ce && n != "." {
		n = parent(n)
	}
	return n
}

func wildcardOf(name string) string {
	if name == "." {
		return "*."
	}
	return "*." + name
}

// canonicalCompare orders lower-case names as RFC 4034 §6.1 does: label by
// label from the root, each label compared as bytes.
func canonicalCompare(a, b string) int {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := strings.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return (len(la) - len(lb))
}
