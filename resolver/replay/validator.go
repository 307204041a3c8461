package replay

import (
	"errors"

	"github.com/bulwark-dns/bulwark/validate"
)

// errValidatorOption marks a DNSSEC option that validate.Config cannot
// express yet (issue #4); such scenarios skip with the key named.
var errValidatorOption = errors.New("validate.Config has no such option yet (#4)")

// newValidator builds the scenario's validator, or reports the option it
// cannot honour. It returns nil when the scenario does not validate.
func newValidator(st setup, clock validate.Clock) (*validate.Validator, string) {
	if !st.validate {
		return nil, ""
	}
	if len(st.anchors) > 0 {
		return nil, "trust-anchor: " + errValidatorOption.Error()
	}
	v, err := validate.New(validate.Config{Clock: clock})
	if err != nil {
		return nil, "validator: " + err.Error()
	}
	return v, ""
}
