package validate

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// FuzzValidate feeds arbitrary reply bytes to a validator anchored on a
// signed test hierarchy: it must never panic, nor work past its caps, and
// whatever it remembers must synthesise only replies that validate.
func FuzzValidate(f *testing.F) {
	w, anchors := buildWorld(f, worldOpts{nsec3: true})
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"www.example.test.", dns.TypeA}, {"nope.example.test.", dns.TypeA}, {"x.wild.example.test.", dns.TypeA},
		{"www.insecure.example.test.", dns.TypeA}, {"www.example.test.", dns.TypeTXT},
	} {
		if b, err := w.reply(q.name, q.qtype).Msg.Pack(); err == nil {
			f.Add(b)
		}
	}
	v := newValidator(f, anchors, aggressive)
	check := newValidator(f, anchors, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		m := new(dns.Msg)
		if m.Unpack(data) != nil || len(m.Question) != 1 {
			return
		}
		q := m.Question[0]
		got := v.Validate(context.Background(), w, Reply{Zone: leafName, QName: q.Name, QType: q.Qtype, Msg: m})
		if got.Verifications > v.cfg.MaxVerifications || got.NSEC3Hashes > v.cfg.MaxNSEC3Hashes {
			t.Fatalf("work above the caps: %+v", got)
		}
		if syn, _, ok := v.Synthesize(q.Name, q.Qtype); ok {
			r := Reply{Zone: leafName, QName: q.Name, QType: q.Qtype, Msg: syn}
			if again := check.Validate(context.Background(), w, r); again.Security == cache.Bogus {
				t.Fatalf("synthesised a bogus reply: %+v\n%v", again, syn)
			}
		}
	})
}
