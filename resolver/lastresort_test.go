package resolver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/simnet"
)

// pcWorld builds pc.test., which test. delegates to ns1.pc.test.
// (127.53.3.1) and ns.spare.alt., a name in another TLD and so without
// glue there. spare.alt. is served by ns.spare.alt. at 127.53.3.2, which
// serves pc.test. too.
func pcWorld(t testing.TB) *simnet.Hierarchy {
	t.Helper()
	h := simnet.NewHierarchy(simnet.InstantTimeouts())
	h.Zone(".", []string{"127.53.0.1"}, "")
	h.Zone("test.", []string{"127.53.0.2"}, "")
	h.Zone("alt.", []string{"127.53.0.3"}, "")
	h.ZoneWithNS("spare.alt.", map[string][]string{"ns.spare.alt.": {"127.53.3.2"}}, "")
	pc := h.ZoneWithNS("pc.test.", map[string][]string{"ns1.pc.test.": {"127.53.3.1"}}, `
@    300 NS ns1.pc.test.
www  300 A  192.0.2.10
mail 300 A  192.0.2.20
`)
	h.Net.AddServer(netip.MustParseAddr("127.53.3.2"), pc)
	return h
}

// listSpareInAuthority makes pc.test.'s first server name ns.spare.alt.
// in the authority section of its answers, as a child whose NS set lists
// a server the parent does not.
func listSpareInAuthority(q *dns.Msg, honest func(*dns.Msg) *dns.Msg) *dns.Msg {
	m := honest(q)
	if m != nil && m.Authoritative && len(m.Answer) > 0 {
		m.Ns = append(m.Ns, rrOf("pc.test. 300 IN NS ns1.pc.test."), rrOf("pc.test. 300 IN NS ns.spare.alt."))
	}
	return m
}

// spareMisnamesItself makes ns.spare.alt.'s own zone give it an address
// where nothing answers, while the parent's glue is right.
func spareMisnamesItself(q *dns.Msg, honest func(*dns.Msg) *dns.Msg) *dns.Msg {
	qq := q.Question[0]
	if strings.EqualFold(qq.Name, "ns.spare.alt.") && qq.Qtype == dns.TypeA {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		m.Answer = []dns.RR{rrOf("ns.spare.alt. 300 IN A 127.53.9.9")}
		return m
	}
	return honest(q)
}

func rrOf(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

func TestLastResortServersWhenTheDelegationFails(t *testing.T) {
	tests := []struct {
		name    string
		tamper  map[string]func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg
		declare bool // the parent lists ns.spare.alt. as well
		want    int
	}{
		{"ChildNSBeyondTheParentsIsTried", map[string]func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg{"127.53.3.1": listSpareInAuthority}, false, dns.RcodeSuccess},
		{"WithoutChildNSNothingIsLeft", nil, false, dns.RcodeServerFailure},
		{"ParentGlueBeatsTheChildsWrongAddress", map[string]func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg{"127.53.3.2": spareMisnamesItself}, true, dns.RcodeSuccess},
		{"ChildNSWithWrongAddressFallsBackToParentGlue", map[string]func(*dns.Msg, func(*dns.Msg) *dns.Msg) *dns.Msg{
			"127.53.3.1": listSpareInAuthority, "127.53.3.2": spareMisnamesItself}, false, dns.RcodeSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := pcWorld(t)
			if tc.declare {
				if err := h.ZoneAt("test.").Add(rrOf("pc.test. 300 IN NS ns.spare.alt.")); err != nil {
					t.Fatal(err)
				}
			}
			for addr, edit := range tc.tamper {
				tamper(t, h, addr, edit)
			}
			f := newFixture(t, h, nil)
			if !tc.declare {
				// Warm up while the parent's server works, so the child's
				// answer can name its extra server.
				if m := f.ask(t, "www.pc.test.", dns.TypeA); m.Rcode != dns.RcodeSuccess {
					t.Fatalf("warm-up: %s", dns.RcodeToString[m.Rcode])
				}
			}
			h.Server("127.53.3.1").Update(func(k *simnet.Knobs) { k.Dead = true })
			m := f.ask(t, "mail.pc.test.", dns.TypeA)
			if m.Rcode != tc.want {
				t.Fatalf("rcode %s, want %s; answer %q", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.want], answerText(m))
			}
			if tc.want == dns.RcodeSuccess && answerText(m) != "mail.pc.test. A 192.0.2.20" {
				t.Errorf("answer %q", answerText(m))
			}
		})
	}
}

// TestChildNSNeverReplacesAWorkingDelegation: the NS set an answer's
// authority section names is a fallback only; the parent's servers keep
// being asked while they work.
func TestChildNSNeverReplacesAWorkingDelegation(t *testing.T) {
	h := pcWorld(t)
	tamper(t, h, "127.53.3.1", listSpareInAuthority)
	f := newFixture(t, h, nil)
	for _, name := range []string{"www.pc.test.", "mail.pc.test.", "nope.pc.test."} {
		f.ask(t, name, dns.TypeA)
	}
	if n := h.Net.Server(netip.MustParseAddr("127.53.3.2")).QueryCount(); n != 0 {
		t.Errorf("the child-listed server got %d queries while the delegation worked", n)
	}
}
