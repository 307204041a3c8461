package validate

import "context"

// Config tunes a Validator.
type Config struct {
	Clock Clock
}

// Validator checks replies against the chain of trust. It is safe for
// concurrent use.
type Validator struct {
	cfg Config
}

// New returns a Validator.
func New(cfg Config) (*Validator, error) {
	return &Validator{cfg: cfg}, nil
}

// Validate returns the security status of r.
func (v *Validator) Validate(ctx context.Context, f Fetcher, r Reply) Result {
	return Result{}
}
