package listener

import (
	"context"
	"strconv"
	"testing"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/cache"
	"github.com/bulwark-dns/bulwark/resolver"
	"github.com/bulwark-dns/bulwark/resolver/internal/deadline"
	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// bigZone is an in-process hierarchy whose zone big.test. answers every
// name, and a resolver over it, on clock, with a record cache of
// cacheBytes.
func bigZone(tb testing.TB, cacheBytes int64) (h *simnet.Hierarchy, r *resolver.Resolver, records *cache.Cache, clock *simnet.Clock) {
	tb.Helper()
	h = simnet.NewHierarchy(simnet.InstantTimeouts())
	h.Zone(".", []string{"127.53.0.1"}, "")
	h.Zone("test.", []string{"127.53.0.2"}, "")
	h.Zone("big.test.", []string{"127.53.1.1"}, "* 86400 A 10.100.0.1\n")
	clock = simnet.NewClock(t0)
	cfg := resolver.DefaultConfig()
	cfg.RootHints = h.RootHints()
	cfg.DoIPv6 = false
	records = cache.New(cfg.CacheConfig(cacheBytes))
	r, err := resolver.New(cfg, resolver.Deps{Exchanger: transport.NewExchanger(h.Net, transport.Config{}, nil),
		Clock: clock, Logger: zap.NewNop(), Cache: records})
	if err != nil {
		tb.Fatal(err)
	}
	return h, r, records, clock
}

// coldServer is a Server over bigZone's resolver, as wrap hands it on,
// with the answer cache and its doorkeeper as the daemon has them, and the
// zone's cut already cached.
func coldServer(tb testing.TB, wrap func(*resolver.Resolver) Handler) *Server {
	tb.Helper()
	_, r, _, clock := bigZone(tb, 64<<20)
	var h Handler = r
	if wrap != nil {
		h = wrap(r)
	}
	s := New(Config{Answers: cache.NewAnswerCache(cache.AnswerConfig{MaxBytes: 64 << 20}), Clock: clock}, h)
	tb.Cleanup(func() { s.wg.Wait() })
	askCold(tb, s, "warm.big.test.", nil)
	return s
}

// askCold asks for name as a miss worker does, packing the reply into
// room.
func askCold(tb testing.TB, s *Server, name string, room []byte) {
	raw := pack(tb, withEDNS(query(name, dns.TypeA), 1232, 0))
	if out := s.processInto(room, raw, loopback, true); len(out) == 0 {
		tb.Fatalf("%s: no answer", name)
	}
}

type handlerFunc func(context.Context, *dns.Msg) *dns.Msg

func (f handlerFunc) Answer(ctx context.Context, req *dns.Msg) *dns.Msg { return f(ctx, req) }

// The resolver resolves a name nobody else is resolving on a deadline of
// its own: the listener's must then cost no timer (issue #6).
func TestResolverMakesNoListenerTimer(t *testing.T) {
	var got *deadline.Context
	s := coldServer(t, func(r *resolver.Resolver) Handler {
		return handlerFunc(func(ctx context.Context, req *dns.Msg) *dns.Msg {
			got, _ = ctx.(*deadline.Context)
			return r.Answer(ctx, req)
		})
	})
	out := s.process(pack(t, withEDNS(query("cold.big.test.", dns.TypeA), 1232, 0)), loopback, true)
	if m := new(dns.Msg); m.Unpack(out) != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("answer %v", out)
	}
	if got == nil || got.Timed() {
		t.Errorf("Handler context %v: want a deadline.Context without its timer", got)
	}
}

// BenchmarkProcessColdName is the daemon's miss path without sockets: a
// new name of a zone whose cut is cached, through the listener, the
// resolver, one upstream exchange in process and the answer cache.
func BenchmarkProcessColdName(b *testing.B) {
	s := coldServer(b, nil)
	room := make([]byte, missReplyRoom)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		askCold(b, s, "h"+strconv.Itoa(i)+".big.test.", room)
	}
}
