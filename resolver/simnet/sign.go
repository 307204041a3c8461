package simnet

import (
	"crypto"
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// SignOptions choose how Sign builds the zone's denial chain and signatures.
type SignOptions struct {
	// NSEC3 builds an NSEC3 chain (SHA-1, RFC 5155) instead of NSEC.
	NSEC3      bool
	Iterations uint16
	Salt       string // hex; empty for none
	// OptOut leaves insecure delegations out of the NSEC3 chain and sets
	// the opt-out flag (RFC 5155 §6).
	OptOut bool
	// Inception and Expiration bound the signatures (RFC 4034 §3.1.5, in
	// seconds since the epoch, serial arithmetic).
	Inception, Expiration uint32
}

// Sign signs z in place with one combined key (a CSK: key signs every
// RRset, DNSKEY included), after adding key at the apex and building the
// NSEC or NSEC3 chain. Call it once the zone's content, delegations
// included, is final; a parent's DS for z is key.ToDS(dns.SHA256).
func Sign(z *Zone, key *dns.DNSKEY, priv crypto.Signer, opts SignOptions) error {
	k := dns.Copy(key).(*dns.DNSKEY)
	k.Hdr = dns.RR_Header{Name: z.origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: DefaultTTL}
	if err := z.Add(k); err != nil {
		return err
	}
	if opts.NSEC3 {
		p := &dns.NSEC3PARAM{Hdr: dns.RR_Header{Name: z.origin, Rrtype: dns.TypeNSEC3PARAM, Class: dns.ClassINET},
			Hash: dns.SHA1, Iterations: opts.Iterations, Salt: upperHex(opts.Salt), SaltLength: uint8(len(opts.Salt) / 2)}
		if err := z.Add(p); err != nil {
			return err
		}
	}
	sets, secure := groupForSigning(z)
	var chain []dns.RR
	if opts.NSEC3 {
		chain = nsec3Chain(z.origin, sets, secure, opts)
	} else {
		chain = nsecChain(z.origin, sets, secure)
	}
	sigs, err := signAll(z.origin, k, priv, opts, sets, secure, chain)
	if err != nil {
		return err
	}
	return z.Add(append(chain, sigs...)...)
}

func upperHex(s string) string { return strings.ToUpper(s) }

// signedName says how Sign treats one owner: authoritative data, a
// delegation point, or glue below one (neither signed nor chained).
type signedName uint8

const (
	authName signedName = iota + 1
	cutName
)

func groupForSigning(z *Zone) (map[string]map[uint16][]dns.RR, map[string]signedName) {
	ix := z.index()
	kind := map[string]signedName{}
	for owner := range ix.sets {
		kind[owner] = authName
		for _, a := range ancestors(z.origin, owner) {
			if a != z.origin && ix.sets[a][dns.TypeNS] != nil {
				kind[owner] = cutName
				if a != owner {
					delete(kind, owner)
				}
				break
			}
		}
	}
	return ix.sets, kind
}

func minTTL(sets map[string]map[uint16][]dns.RR, origin string) uint32 {
	if soa := sets[origin][dns.TypeSOA]; len(soa) > 0 {
		s := soa[0].(*dns.SOA)
		return min(s.Hdr.Ttl, s.Minttl)
	}
	return NegativeTTL
}

func typeBitmap(sets map[uint16][]dns.RR, extra ...uint16) []uint16 {
	types := append([]uint16(nil), extra...)
	for t := range sets {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
	return types
}

func nsecChain(origin string, sets map[string]map[uint16][]dns.RR, kind map[string]signedName) []dns.RR {
	var names []string
	for n := range kind {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return canonicalCompare(names[i], names[j]) < 0 })
	ttl := minTTL(sets, origin)
	var out []dns.RR
	for i, n := range names {
		extra := []uint16{dns.TypeNSEC, dns.TypeRRSIG}
		out = append(out, &dns.NSEC{
			Hdr:        dns.RR_Header{Name: n, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: ttl},
			NextDomain: names[(i+1)%len(names)],
			TypeBitMap: typeBitmap(sets[n], extra...),
		})
	}
	return out
}

func nsec3Chain(origin string, sets map[string]map[uint16][]dns.RR, kind map[string]signedName, opts SignOptions) []dns.RR {
	type entry struct {
		hash  string
		types []uint16
	}
	seen := map[string]bool{}
	var entries []entry
	for n, k := range kind {
		if k == cutName && opts.OptOut && sets[n][dns.TypeDS] == nil {
			continue
		}
		for _, a := range ancestors(origin, n) {
			if seen[a] {
				continue
			}
			seen[a] = true
			e := entry{hash: dns.HashName(a, dns.SHA1, opts.Iterations, opts.Salt)}
			if a == n {
				e.types = nsec3Types(sets[n], k)
			}
			entries = append(entries, e)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].hash < entries[j].hash })
	var flags uint8
	if opts.OptOut {
		flags = 1
	}
	ttl := minTTL(sets, origin)
	out := make([]dns.RR, 0, len(entries))
	for i, e := range entries {
		out = append(out, &dns.NSEC3{
			Hdr:  dns.RR_Header{Name: dns.Fqdn(strings.ToLower(e.hash) + "." + strings.TrimPrefix(origin, ".")), Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: ttl},
			Hash: dns.SHA1, Flags: flags, Iterations: opts.Iterations,
			SaltLength: uint8(len(opts.Salt) / 2), Salt: upperHex(opts.Salt),
			HashLength: 20, NextDomain: entries[(i+1)%len(entries)].hash,
			TypeBitMap: e.types,
		})
	}
	return out
}

func nsec3Types(sets map[uint16][]dns.RR, k signedName) []uint16 {
	if k == cutName && sets[dns.TypeDS] == nil {
		return typeBitmap(sets)
	}
	return typeBitmap(sets, dns.TypeRRSIG)
}

// signAll signs every authoritative RRset, the DS (not the NS) at cuts, and
// the chain.
func signAll(origin string, k *dns.DNSKEY, priv crypto.Signer, opts SignOptions,
	sets map[string]map[uint16][]dns.RR, kind map[string]signedName, chain []dns.RR) ([]dns.RR, error) {
	var todo [][]dns.RR
	for n, kd := range kind {
		for t, rrs := range sets[n] {
			if kd == cutName && t != dns.TypeDS {
				continue
			}
			todo = append(todo, rrs)
		}
	}
	for _, rr := range chain {
		todo = append(todo, []dns.RR{rr})
	}
	out := make([]dns.RR, 0, len(todo))
	for _, rrs := range todo {
		sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: rrs[0].Header().Ttl}, Algorithm: k.Algorithm, KeyTag: k.KeyTag(),
			SignerName: origin, Inception: opts.Inception, Expiration: opts.Expiration}
		if err := sig.Sign(priv, rrs); err != nil {
			return nil, fmt.Errorf("sign %s %s in zone %s: %w", rrs[0].Header().Name, dns.TypeToString[rrs[0].Header().Rrtype], origin, err)
		}
		out = append(out, sig)
	}
	return out, nil
}
