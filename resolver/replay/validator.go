package replay

import (
	"github.com/bulwark-dns/bulwark/validate"
)

// newValidator builds the scenario's validator: its trust anchors, negative
// anchors and, as Unbound's test build, faked SHA-1/DSA signature crypto for
// recorded data signed with keys nobody can verify today. It returns nil
// when the scenario does not validate.
func newValidator(st setup, clock, sigClock validate.Clock) (*validate.Validator, string) {
	if !st.validate {
		return nil, ""
	}
	v, err := validate.New(validate.Config{
		Clock:                clock,
		SignatureClock:       sigClock,
		IgnoreSignatureDates: st.ignoreDates,
		NSEC3MaxIterations:   st.nsec3MaxIterations,
		Anchors:              st.anchors,
		NegativeAnchors:      st.insecure,
		FakeSHA1:             st.fakeSHA1,
		FakeDSA:              st.fakeDSA,
		AggressiveNSEC:       st.aggressiveNSEC,
		HardenAlgoDowngrade:  st.hardenAlgoDowngrade,
		AllowStripped:        st.allowStripped,
	})
	if err != nil {
		return nil, "validator: " + err.Error()
	}
	return v, ""
}
