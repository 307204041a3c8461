package resolver

import (
	"github.com/miekg/dns"
)

// responseKind is what a scrubbed reply means for the question asked
// (Unbound's RESPONSE_TYPE_*).
type responseKind uint8

const (
	kindAnswer   responseKind = iota // the asked RRset is in the answer
	kindCNAME                        // the answer starts a CNAME/DNAME chain
	kindNXDomain                     // the name does not exist
	kindNoData                       // the name exists, the type does not
	kindReferral                     // a delegation to a zone below the cut
	kindLame                         // the server is not authoritative or broken
)

var kindNames = [...]string{"answer", "cname", "nxdomain", "nodata", "referral", "lame"}

func (k responseKind) String() string { return kindNames[k] }

// classify decides what a scrubbed reply from zone's server says about
// (name, qtype).
func classify(s scrubbed, zone, name string, qtype uint16) responseKind {
	m := s.msg
	// TC reaches here only over TCP, where it is an error.
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError || m.Truncated {
		return kindLame
	}
	if hasRRset(m.Answer, name, qtype) {
		return kindAnswer
	}
	if len(m.Answer) > 0 {
		return kindCNAME
	}
	if m.Rcode == dns.RcodeNameError {
		return kindNXDomain
	}
	soa := hasType(m.Ns, dns.TypeSOA)
	if owner, ok := nsOwner(m.Ns); ok && strictlyBelow(owner, zone) && !soa {
		return kindReferral
	}
	if s.upward && !m.Authoritative && !soa {
		return kindLame // a referral to the zone itself or upward
	}
	// An empty NOERROR, even without AA and SOA or with only records the
	// scrubber removed, is a NODATA, as Unbound and Knot Resolver take it.
	// Without an SOA it gets no negative TTL and is not cached.
	return kindNoData
}

// hasRRset reports whether rrs hold a record of qtype owned by name.
func hasRRset(rrs []dns.RR, name string, qtype uint16) bool {
	for _, rr := range rrs {
		if equalNames(rr.Header().Name, name) && matchesType(rr, qtype) {
			return true
		}
	}
	return false
}

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

// nsOwner returns the owner of the NS records in rrs (scrub leaves one).
func nsOwner(rrs []dns.RR) (string, bool) {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeNS {
			return rr.Header().Name, true
		}
	}
	return "", false
}
