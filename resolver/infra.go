package resolver

type infraCache struct{ clock Clock }

func newInfraCache(c Clock) *infraCache { return &infraCache{clock: c} }
