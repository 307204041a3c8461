package replay

import "time"

// frozenClock is Unbound's val-override-date: the validator's "now" stays
// put while TIME_PASSES ages the caches (on a simnet.Clock).
type frozenClock time.Time

func (f frozenClock) Now() time.Time { return time.Time(f) }
