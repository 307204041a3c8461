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
		nsec3  bool
		child  string // the referral's proof is kept for this name
		edit   func([]dns.RR)
		wantDS int
	}{
		{name: "NSEC3 proof", nsec3: true, child: insecureName},
		{name: "NSEC proof", child: insecureName},
		{name: "forged signature falls back to the DS query", nsec3: true, child: insecureName, edit: forgeSigs, wantDS: 1},
		{name: "proof replayed for another child falls back", nsec3: true, child: "other.example.test.", wantDS: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, anchors := buildWorld(t, worldOpts{nsec3: c.nsec3})
			f := &dsCounter{world: w}
			v := newValidator(t, anchors, nil)
			ref := w.zones[leafName].answer(insecureName, dns.TypeNS)
			if c.edit != nil {
				c.edit(ref.Ns)
			}
			v.KeepReferralProof(leafName, c.child, ref.Ns)
			v.KeepReferralProof(leafName, insecureName, nil) // nothing to keep: the proof above stays
			got := v.Validate(context.Background(), f, w.reply("www.insecure.example.test.", dns.TypeA))
			if got.Security != cache.Insecure || f.ds != c.wantDS {
				t.Fatalf("child answer: %+v after %d DS fetches, want insecure after %d", got, f.ds, c.wantDS)
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
