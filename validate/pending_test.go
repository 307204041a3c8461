package validate

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

// dsCounter is a world that counts the questions for insecureName's DS.
type dsCounter struct {
	*world
	ds int
}

func (c *dsCounter) Fetch(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, error) {
	if qtype == dns.TypeDS && canonical(name) == insecureName {
		c.ds++
	}
	return c.world.Fetch(ctx, name, qtype)
}

const insecureName = "insecure.example.test."

// forgeSigs replaces every RRSIG in rrs by a copy with a byte of its
// signature flipped.
func forgeSigs(rrs []dns.RR) {
	for i, rr := range rrs {
		if sig, ok := rr.(*dns.RRSIG); ok {
			c := dns.Copy(sig).(*dns.RRSIG)
			b := []byte(c.Signature)
			b[10] ^= 1
			c.Signature = string(b)
			rrs[i] = c
		}
	}
}

func TestKeptReferralProofSavesTheDSQuery(t *testing.T) {
	cases := []struct {
		name   string
		opts   worldOpts
		child  string // the referral's proof is kept for this name
		edit   func([]dns.RR)
		wantDS int
		ede    uint16
	}{
		{name: "NSEC3 proof", opts: worldOpts{nsec3: true}, child: insecureName},
		{name: "NSEC proof", child: insecureName},
		{name: "opt-out span", opts: worldOpts{nsec3: true, optOut: true}, child: insecureName},
		{name: "iterations above the limit keep EDE 27", opts: worldOpts{nsec3: true, iter: 100}, child: insecureName,
			ede: edeUnsupportedNSEC3Itr},
		{name: "forged signature falls back to the DS query", opts: worldOpts{nsec3: true}, child: insecureName,
			edit: forgeSigs, wantDS: 1},
		{name: "proof replayed for another child falls back", opts: worldOpts{nsec3: true}, child: "other.example.test.",
			wantDS: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, anchors := buildWorld(t, c.opts)
			f := &dsCounter{world: w}
			v := newValidator(t, anchors, nil)
			ref := w.zones[leafName].answer(insecureName, dns.TypeNS)
			if c.edit != nil {
				c.edit(ref.Ns)
			}
			v.KeepReferralProof(leafName, c.child, ref.Ns)
			v.KeepReferralProof(leafName, insecureName, nil) // nothing to keep: the proof above stays
			got := v.Validate(context.Background(), f, w.reply("www.insecure.example.test.", dns.TypeA))
			if got.Security != cache.Insecure || got.EDE != c.ede || f.ds != c.wantDS {
				t.Fatalf("child answer: %+v after %d DS fetches, want insecure (EDE %d) after %d", got, f.ds, c.ede, c.wantDS)
			}
		})
	}
}

func TestReferralProofIsNotKeptForSignedOrForeignDelegations(t *testing.T) {
	w, anchors := buildWorld(t, worldOpts{nsec3: true})
	v := newValidator(t, anchors, nil)
	signed := w.zones[leafName].answer("signed.example.test.", dns.TypeNS)
	v.KeepReferralProof(leafName, "signed.example.test.", signed.Ns)
	insecure := w.zones[leafName].answer(insecureName, dns.TypeNS)
	v.KeepReferralProof("other.test.", insecureName, insecure.Ns) // not the child's parent
	v.KeepReferralProof(insecureName, insecureName, insecure.Ns)  // the child itself
	if n := v.pending.Len(); n != 0 {
		t.Fatalf("%d referral proofs kept, want none", n)
	}
}
