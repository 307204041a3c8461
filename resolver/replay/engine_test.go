package replay

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunJudgesTheResolversAnswer(t *testing.T) {
	wrong := strings.Replace(tinyScenario, "SECTION ANSWER\nwww.example.com. IN A 10.20.30.40\nENTRY_END\nSCENARIO_END",
		"SECTION ANSWER\nwww.example.com. IN A 10.9.9.9\nENTRY_END\nSCENARIO_END", 1)
	for _, c := range []struct {
		name, text string
		d          Dialect
		want       Status
	}{
		{"UnboundExpectedAnswerPasses", tinyScenario, Unbound, Pass},
		{"DeckardExpectedAnswerPasses", tinyScenario, Deckard, Pass},
		{"WrongExpectedAnswerFailsAtTheCheckStep", wrong, Unbound, Fail},
		{"UnsupportedOptionSkips", "auth-zone:\n\tname: \".\"\n" + tinyScenario, Unbound, Skip},
		{"UnknownStepTypeSkips", strings.Replace(tinyScenario, "STEP 10 CHECK_ANSWER", "STEP 5 ASSIGN x = 1\nSTEP 10 CHECK_ANSWER", 1), Unbound, Skip},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Run(context.Background(), mustParse(t, c.text, c.d), Options{})
			if r.Status != c.want {
				t.Fatalf("status %v (%s), want %v; upstream %v", r.Status, r.Reason, c.want, r.Upstream)
			}
			if c.want == Fail && r.Step != 10 {
				t.Errorf("failed at step %d, want 10", r.Step)
			}
		})
	}
}

func TestParseReadsEntryDetails(t *testing.T) {
	sc := mustParse(t, `CONFIG_END
SCENARIO_BEGIN details
RANGE_BEGIN 0 10 1.2.3.4
	ADDRESS 5.6.7.8
ENTRY_BEGIN
MATCH opcode qname ede=any
ADJUST copy_id copy_query
REPLY QR AA NXDOMAIN DO
SECTION QUESTION
example.com. ANY
SECTION AUTHORITY
example.com. 300 IN DS 2854 DSA 1 46e4ffc6e9a4793b488954bd3f0cc6af0dfb201b
HEX_EDNSDATA_BEGIN
	00 08 00 00
HEX_EDNSDATA_END
ENTRY_END
RANGE_END
STEP 3 TIME_PASSES ELAPSE 0.5
SCENARIO_END
`, Deckard)
	rg := sc.Ranges[0]
	if len(rg.Addrs) != 2 {
		t.Errorf("Deckard range addresses %v, want the RANGE_BEGIN one and the ADDRESS one", rg.Addrs)
	}
	e := rg.Entries[0]
	if !e.HasEDE || e.EDE != -1 || !e.Adjust["copy_query"] || !e.Flags.AA || !e.DO || e.Rcode != 3 {
		t.Errorf("entry %+v", e)
	}
	if len(e.Question) != 1 || e.Question[0].Qtype != 255 {
		t.Errorf("question %v, want type ANY", e.Question)
	}
	if len(e.Sections[secAuthority]) != 1 || e.Sections[secAuthority][0].Header().Ttl != 300 {
		t.Errorf("authority %v", e.Sections[secAuthority])
	}
	if len(e.EDNSData) != 4 {
		t.Errorf("EDNS data %x", e.EDNSData)
	}
	if sc.Steps[0].Elapse != 0.5 {
		t.Errorf("elapse %v", sc.Steps[0].Elapse)
	}
}

func TestUnknownLinesWarnAndDoNotFail(t *testing.T) {
	sc := mustParse(t, "CONFIG_END\nSCENARIO_BEGIN x\nSTRAY LINE\nSTEP 1 NOTHING\nSCENARIO_END\n", Unbound)
	if len(sc.Warnings) != 1 {
		t.Errorf("warnings %v, want one", sc.Warnings)
	}
}

func TestDialectComesFromTheNearestNamedParent(t *testing.T) {
	for path, want := range map[string]Dialect{
		"a/deckard/x.rpl":           Deckard,
		"a/unbound/deckard/b/x.rpl": Deckard,
		"a/deckard/unbound/x.rpl":   Unbound,
		"other/x.rpl":               Unbound,
	} {
		if got := DialectOf(path); got != want {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
}
