package attack

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver/simnet"
)

// injector is the on-path attacker of ONP-1..3 (GFW-style): it reads
// every UDP query the server sees (port, ID, case, cookie) and sends its
// forgeries from the server's address at random offsets within spread of
// the query, racing the genuine reply.
type injector struct {
	mu     sync.Mutex
	sp     *spoofer
	wg     sync.WaitGroup
	cancel context.CancelFunc
	seen   int // queries forged for
}

func startInjector(t *testing.T, e *env, s *simnet.Server, spread time.Duration, forge func(simnet.QueryRecord) [][]byte) *injector {
	t.Helper()
	sp, err := newSpoofer(100000, 50000, 120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &injector{sp: sp, cancel: cancel}
	in.wg.Add(1)
	seen := s.QueryCount()
	go func() {
		defer in.wg.Done()
		watchQueries(ctx, s, seen, func(rec simnet.QueryRecord) {
			payloads := forge(rec)
			if len(payloads) == 0 {
				return
			}
			in.seen++
			in.wg.Add(1)
			go in.fire(t, serverAP(s), rec, payloads, spread)
		})
	}()
	return in
}

// fire sends payloads at sorted random offsets within spread.
func (in *injector) fire(t *testing.T, src netip.AddrPort, rec simnet.QueryRecord, payloads [][]byte, spread time.Duration) {
	defer in.wg.Done()
	offs := make([]time.Duration, len(payloads))
	for i := range offs {
		offs[i] = rand.N(spread + 1)
	}
	slices.Sort(offs)
	start := time.Now()
	for i, p := range payloads {
		time.Sleep(offs[i] - time.Since(start))
		in.mu.Lock()
		err := in.sp.send(src, rec.From, p)
		in.mu.Unlock()
		if err != nil {
			t.Errorf("injector: %v", err)
			return
		}
	}
}

// stop ends the injector and returns how many packets it forged.
func (in *injector) stop() int {
	in.cancel()
	in.wg.Wait()
	_ = in.sp.Close()
	return in.sp.sent
}

// poolAddr is the i-th of the injector's 10 forged addresses (GFW replies
// come from a pool).
func poolAddr(i int) string { return fmt.Sprintf("6.6.6.%d", 10+i) }

func inPool(a string) bool { return strings.HasPrefix(a, "6.6.6.") }

// signedLooking forges an answer to rec from the pool, with the query's
// client cookie echoed and an RRSIG that looks right but is random bytes:
// the injector cannot sign for bank.test.
func signedLooking(rec simnet.QueryRecord, pool int, keyTag uint16) []byte {
	m := new(dns.Msg)
	m.Id = rec.ID
	m.Response, m.Authoritative = true, true
	m.Question = []dns.Question{{Name: rec.Name, Qtype: rec.Type, Qclass: dns.ClassINET}}
	ttl := uint32(60 + rand.N(241))
	a := &dns.A{Hdr: dns.RR_Header{Name: rec.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
		A: net.ParseIP(poolAddr(pool)).To4()}
	raw := make([]byte, 64)
	for i := range raw {
		raw[i] = byte(rand.N(256))
	}
	now := time.Now()
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: rec.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: ttl},
		TypeCovered: dns.TypeA, Algorithm: dns.ECDSAP256SHA256, Labels: uint8(dns.CountLabel(rec.Name)), OrigTtl: ttl,
		Expiration: uint32(now.Add(time.Hour).Unix()), Inception: uint32(now.Add(-time.Hour).Unix()),
		KeyTag: keyTag, SignerName: "bank.test.", Signature: base64.StdEncoding.EncodeToString(raw)}
	m.Answer = []dns.RR{a, sig}
	m.SetEdns0(1232, rec.DO)
	echoCookie(m, rec)
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// echoCookie copies the query's client cookie with a made-up server
// cookie, as an injector that read the query can.
func echoCookie(m *dns.Msg, rec simnet.QueryRecord) {
	if len(rec.Cookie) < 8 {
		return
	}
	ck := append(append([]byte(nil), rec.Cookie[:8]...), 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef)
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: fmt.Sprintf("%x", ck)})
}

// threeFromPool is the GFW pattern: three injectors, three different
// forged addresses per query.
func threeFromPool(keyTag uint16) func(simnet.QueryRecord) [][]byte {
	return func(rec simnet.QueryRecord) [][]byte {
		if rec.Type != dns.TypeA || !strings.HasPrefix(strings.ToLower(rec.Name), "a") {
			return nil
		}
		p := rand.Perm(10)
		return [][]byte{signedLooking(rec, p[0], keyTag), signedLooking(rec, p[1], keyTag), signedLooking(rec, p[2], keyTag)}
	}
}

// forgedCached counts cached A records of name that came from the pool.
func (e *env) forgedCached(name string) int {
	en, ok := e.cache.Get(cache.NewKey(dns.Fqdn(name), dns.TypeA, dns.ClassINET), time.Now())
	if !ok {
		return 0
	}
	n := 0
	for _, rr := range en.RRs {
		if a, ok := rr.(*dns.A); ok && inPool(a.A.String()) {
			n++
		}
	}
	return n
}
