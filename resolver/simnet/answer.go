package simnet

import (
	"strings"

	"github.com/miekg/dns"
)

// maxChain bounds the CNAME/DNAME hops followed inside one zone, so that a
// looping zone still gets an answer (the resolver then sees the loop).
const maxChain = 16

// responder builds one authoritative answer from one zone's index.
type responder struct {
	ix    *index
	m     *dns.Msg
	qtype uint16
	do    bool // DNSSEC records wanted and the zone is signed
	added map[dns.RR]bool
}

// answerFromZone fills m (a reply whose question is set) from ix, following
// the order of RFC 1034 §4.3.2 with DNAME (RFC 6672) and wildcards (RFC 4592).
func answerFromZone(ix *index, m *dns.Msg, do bool) {
	q := m.Question[0]
	r := &responder{ix: ix, m: m, qtype: q.Qtype, do: do && ix.signed, added: map[dns.RR]bool{}}
	m.Authoritative = true
	name := q.Name
	for hop := 0; hop < maxChain; hop++ {
		next, more := r.step(name)
		if !more || !dns.IsSubDomain(ix.origin, next) {
			return
		}
		name = next
	}
}

// step answers for name and returns the next name of a CNAME/DNAME chain.
func (r *responder) step(name string) (string, bool) {
	lname := strings.ToLower(name)
	for _, a := range ancestors(r.ix.origin, lname) {
		if a != r.ix.origin && r.ix.sets[a][dns.TypeNS] != nil && (a != lname || r.qtype != dns.TypeDS) {
			r.referral(a)
			return "", false
		}
		if a != lname && r.ix.sets[a][dns.TypeDNAME] != nil {
			return r.dname(a, name)
		}
	}
	if sets := r.ix.sets[lname]; sets != nil {
		return r.exact(lname, sets)
	}
	if r.ix.nodes[lname] {
		r.nodata(lname)
		return "", false
	}
	return r.wildcardOrNX(name, lname)
}

func (r *responder) exact(lname string, sets map[uint16][]dns.RR) (string, bool) {
	if r.qtype == dns.TypeANY {
		for t, rrs := range sets {
			r.answer(rrs, lname, t)
		}
		return "", false
	}
	if rrs := sets[r.qtype]; rrs != nil {
		r.answer(rrs, lname, r.qtype)
		r.additional(rrs)
		return "", false
	}
	if rrs := sets[dns.TypeCNAME]; rrs != nil {
		r.answer(rrs, lname, dns.TypeCNAME)
		return rrs[0].(*dns.CNAME).Target, true
	}
	r.nodata(lname)
	return "", false
}

// dname answers with the DNAME at owner and the CNAME it synthesises for
// name (RFC 6672 §3.1), then follows the new name.
func (r *responder) dname(owner, name string) (string, bool) {
	rrs := r.ix.sets[owner][dns.TypeDNAME]
	d := rrs[0].(*dns.DNAME)
	r.answer(rrs, owner, dns.TypeDNAME)
	prefix := name[:len(name)-len(owner)]
	target := prefix + d.Target
	if d.Target == "." {
		target = prefix
	}
	if _, ok := dns.IsDomainName(target); !ok || len(target) > 255 {
		r.m.Rcode = dns.RcodeYXDomain
		return "", false
	}
	c := &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: d.Hdr.Class, Ttl: d.Hdr.Ttl}, Target: target}
	r.m.Answer = append(r.m.Answer, c)
	return target, true
}

// referral sends the resolver to the child zone at cut (RFC 1034 §4.3.2
// step 3b): NS in authority, glue in additional, no AA; with DO, the DS
// set or the proof that there is none (RFC 4035 §3.1.4).
func (r *responder) referral(cut string) {
	if len(r.m.Answer) == 0 {
		r.m.Authoritative = false
	}
	ns := r.ix.sets[cut][dns.TypeNS]
	r.m.Ns = append(r.m.Ns, ns...)
	if r.do {
		if ds := r.ix.sets[cut][dns.TypeDS]; ds != nil {
			r.m.Ns = append(r.m.Ns, ds...)
			r.m.Ns = append(r.m.Ns, r.ix.sigs[cut][dns.TypeDS]...)
		} else {
			r.proveNoData(cut)
		}
	}
	r.glue(ns)
}

// glue adds the addresses the zone holds for the NS or MX/SRV targets in rrs,
// occluded ones below a cut included, as an authoritative server does.
func (r *responder) glue(rrs []dns.RR) {
	for _, rr := range rrs {
		target := ""
		switch v := rr.(type) {
		case *dns.NS:
			target = v.Ns
		case *dns.MX:
			target = v.Mx
		case *dns.SRV:
			target = v.Target
		}
		lt := strings.ToLower(target)
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			for _, a := range r.ix.sets[lt][t] {
				if !r.added[a] {
					r.added[a] = true
					r.m.Extra = append(r.m.Extra, a)
				}
			}
		}
	}
}

func (r *responder) additional(rrs []dns.RR) {
	switch r.qtype {
	case dns.TypeNS, dns.TypeMX, dns.TypeSRV:
		r.glue(rrs)
	}
}

// answer appends an RRset and, with DO, its signatures.
func (r *responder) answer(rrs []dns.RR, owner string, t uint16) {
	r.m.Answer = append(r.m.Answer, rrs...)
	if r.do {
		r.m.Answer = append(r.m.Answer, r.ix.sigs[owner][t]...)
	}
}

func (r *responder) wildcardOrNX(name, lname string) (string, bool) {
	ce := r.closestEncloser(lname)
	wc := "*." + ce
	if ce == "." {
		wc = "*."
	}
	sets := r.ix.sets[wc]
	if sets == nil {
		r.m.Rcode = dns.RcodeNameError
		r.soa()
		r.proveNXDomain(lname, ce)
		return "", false
	}
	t := r.qtype
	if sets[t] == nil && sets[dns.TypeCNAME] != nil {
		t = dns.TypeCNAME
	}
	if sets[t] == nil || r.qtype == dns.TypeANY {
		r.soa()
		r.proveWildcardNoData(lname, ce, wc)
		return "", false
	}
	r.m.Answer = append(r.m.Answer, synthesise(sets[t], name)...)
	if r.do {
		r.m.Answer = append(r.m.Answer, synthesise(r.ix.sigs[wc][t], name)...)
		r.proveWildcardAnswer(lname, ce)
	}
	if t == dns.TypeCNAME {
		return sets[t][0].(*dns.CNAME).Target, true
	}
	return "", false
}

// synthesise copies wildcard records to owner name (RFC 4592 §3.3.1); the
// RRSIG labels field keeps telling validators the data was synthesised.
func synthesise(rrs []dns.RR, name string) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
		out[i].Header().Name = name
	}
	return out
}

// closestEncloser is the longest existing ancestor of lname (RFC 4592 §3.3.1).
func (r *responder) closestEncloser(lname string) string {
	for n := parent(lname); n != r.ix.origin; n = parent(n) {
		if r.ix.nodes[n] {
			return n
		}
	}
	return r.ix.origin
}

func (r *responder) nodata(lname string) {
	r.soa()
	r.proveNoData(lname)
}

// soa puts the apex SOA in authority with the negative TTL of RFC 2308 §3:
// the smaller of the SOA's TTL and its MINIMUM field.
func (r *responder) soa() {
	rrs := r.ix.sets[r.ix.origin][dns.TypeSOA]
	if len(rrs) == 0 {
		return
	}
	s := dns.Copy(rrs[0]).(*dns.SOA)
	s.Hdr.Ttl = min(s.Hdr.Ttl, s.Minttl)
	r.m.Ns = append(r.m.Ns, s)
	if r.do {
		r.m.Ns = append(r.m.Ns, r.ix.sigs[r.ix.origin][dns.TypeSOA]...)
	}
}

// ancestors lists the names from origin down to lname, origin first.
func ancestors(origin, lname string) []string {
	if !dns.IsSubDomain(origin, lname) {
		return nil
	}
	var out []string
	for n := lname; ; n = parent(n) {
		out = append(out, n)
		if n == origin || n == "." {
			break
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
