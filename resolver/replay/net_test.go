package replay

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/bulwark-dns/bulwark/resolver/transport"
)

const tinyScenario = `server:
	qname-minimisation: no
stub-zone:
	name: "."
	stub-addr: 193.0.14.129
CONFIG_END
SCENARIO_BEGIN tiny
RANGE_BEGIN 0 100
	ADDRESS 193.0.14.129
ENTRY_BEGIN
MATCH opcode qtype qname
ADJUST copy_id
REPLY QR AA NOERROR
SECTION QUESTION
www.example.com. IN A
SECTION ANSWER
www.example.com. IN A 10.20.30.40
ENTRY_END
RANGE_END
STEP 1 QUERY
ENTRY_BEGIN
REPLY RD
SECTION QUESTION
www.example.com. IN A
ENTRY_END
STEP 10 CHECK_ANSWER
ENTRY_BEGIN
MATCH all
REPLY QR RD RA NOERROR
SECTION QUESTION
www.example.com. IN A
SECTION ANSWER
www.example.com. IN A 10.20.30.40
ENTRY_END
SCENARIO_END
`

func mustParse(t *testing.T, text string, d Dialect) *Scenario {
	t.Helper()
	sc, err := Parse(strings.NewReader(text), "test.rpl", d)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestSimulatedServerAnswersThroughTheRealExchanger(t *testing.T) {
	for _, d := range []Dialect{Unbound, Deckard} {
		t.Run(d.String(), func(t *testing.T) {
			nw := newNetwork(mustParse(t, tinyScenario, d), false)
			nw.setStep(10)
			ex := transport.NewExchanger(nw, transport.Config{Clock: simnet.NewClock(defaultStart)}, zap.NewNop())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := ex.Exchange(ctx, transport.Query{
				Server: netip.MustParseAddrPort("193.0.14.129:53"), Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET,
			})
			if err != nil {
				t.Fatalf("exchange: %v; upstream %v", err, nw.trace())
			}
			if len(resp.Msg.Answer) != 1 {
				t.Fatalf("answer %v", resp.Msg)
			}
		})
	}
}

func TestUnmatchedUnboundQueryTimesOutAtOnce(t *testing.T) {
	nw := newNetwork(mustParse(t, tinyScenario, Unbound), false)
	nw.setStep(10)
	ex := transport.NewExchanger(nw, transport.Config{Clock: simnet.NewClock(defaultStart)}, zap.NewNop())
	begin := time.Now()
	_, err := ex.Exchange(context.Background(), transport.Query{
		Server: netip.MustParseAddrPort("193.0.14.129:53"), Name: "other.example.com.", Type: dns.TypeA, Class: dns.ClassINET,
	})
	if !errors.Is(err, transport.ErrTimeout) {
		t.Fatalf("err %v, want timeout", err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("timeout took %v of real time", d)
	}
}

func TestUnmatchedDeckardQueryGetsServfail(t *testing.T) {
	nw := newNetwork(mustParse(t, tinyScenario, Deckard), false)
	nw.setStep(10)
	q := new(dns.Msg)
	q.SetQuestion("other.example.com.", dns.TypeA)
	b, _ := q.Pack()
	u := nw.send(netip.MustParseAddrPort("193.0.14.129:53"), b, false)
	r := new(dns.Msg)
	if err := r.Unpack(<-u.reply); err != nil || r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("reply %v, err %v", r, err)
	}
}
