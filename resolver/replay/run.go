package replay

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/resolver"
	"github.com/bulwark-dns/bulwark/resolver/listener"
	"github.com/bulwark-dns/bulwark/resolver/simnet"
	"github.com/bulwark-dns/bulwark/resolver/transport"
	"github.com/bulwark-dns/bulwark/validate"
)

// Status is a scenario's outcome.
type Status int

// Outcomes.
const (
	Pass Status = iota
	Fail
	Skip
)

func (s Status) String() string {
	return [...]string{"PASS", "FAIL", "SKIP"}[s]
}

// Result is the outcome of one scenario. Step is the step that failed (0
// when the failure is not tied to one).
type Result struct {
	Path    string
	Dialect Dialect
	Status  Status
	Step    int
	Reason  string
	Elapsed time.Duration
	// Upstream lists the queries the resolver sent, in order, with how
	// the script answered each: the first thing to read on a failure.
	Upstream []string
}

// Options tune a run. The zero value runs with the real transport client.
type Options struct {
	// Timeout bounds one scenario in real time. Default 10 s.
	Timeout time.Duration
	// NewExchanger wraps the simulated network; default
	// transport.NewExchanger, so that the real ID/0x20/EDNS layer runs.
	NewExchanger func(transport.Network, transport.Clock) transport.Exchanger
	// Logger receives the resolver's logs; default none.
	Logger *zap.Logger
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.NewExchanger == nil {
		o.NewExchanger = func(nw transport.Network, c transport.Clock) transport.Exchanger {
			return transport.NewExchanger(nw, transport.Config{Clock: c}, zap.NewNop())
		}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// quietPeriod is how long the network must stay silent, with queries
// pending, before the engine decides the resolver waits on the script.
const quietPeriod = 30 * time.Millisecond

// stepError fails a scenario at a step.
type stepError struct {
	step int
	msg  string
}

func (e *stepError) Error() string { return fmt.Sprintf("step %d: %s", e.step, e.msg) }

// errSkip skips a scenario when it asks what Bulwark cannot do.
type errSkip string

func (e errSkip) Error() string { return string(e) }

// Run plays one scenario against a fresh resolver.
func Run(ctx context.Context, sc *Scenario, opt Options) Result {
	opt = opt.withDefaults()
	begin := time.Now()
	res := Result{Path: sc.Path, Dialect: sc.Dialect}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	err := run(ctx, sc, opt, &res)
	res.Elapsed = time.Since(begin)
	var se *stepError
	var skip errSkip
	switch {
	case err == nil:
		res.Status = Pass
	case errors.As(err, &skip):
		res.Status, res.Reason = Skip, skip.Error()
	case errors.As(err, &se):
		res.Status, res.Step, res.Reason = Fail, se.step, se.msg
	default:
		res.Status, res.Reason = Fail, err.Error()
	}
	return res
}

// engine is the state of one scenario run.
type engine struct {
	sc      *Scenario
	net     *Network
	srv     *listener.Server // the daemon's client-facing packet path
	clock   *simnet.Clock
	timeout time.Duration
	answers chan *dns.Msg
	// inflight counts client queries sent and not yet answered.
	inflight int
	// unchecked are answers no CHECK_ANSWER has matched yet (Unbound).
	unchecked []*dns.Msg
	last      *dns.Msg // answer to the last QUERY (Deckard)
}

func run(ctx context.Context, sc *Scenario, opt Options, res *Result) error {
	e, err := newEngine(sc, opt)
	if err != nil {
		return err
	}
	defer func() { res.Upstream = e.net.trace() }()
	defer e.close()
	for i, st := range sc.Steps {
		e.net.setStep(st.N)
		if err := e.exec(ctx, st); err != nil {
			return err
		}
		next := st.N
		if i+1 < len(sc.Steps) {
			next = sc.Steps[i+1].N
		}
		if sc.Dialect == Unbound {
			e.net.setStep(next)
			e.settle(ctx)
		}
	}
	return e.finish()
}

// newEngine builds the resolver the scenario's CONFIG describes.
func newEngine(sc *Scenario, opt Options) (*engine, error) {
	if why := unsupportedStep(sc); why != "" {
		return nil, errSkip(why)
	}
	st := buildSetup(sc)
	if st.skip != "" {
		return nil, errSkip(st.skip)
	}
	clock := simnet.NewClock(st.start)
	var sigClock validate.Clock
	if sc.Dialect == Unbound && !st.sigTime.IsZero() {
		sigClock = frozenClock(st.sigTime)
	}
	v, skip := newValidator(st, clock, sigClock)
	if skip != "" {
		return nil, errSkip(skip)
	}
	nw := newNetwork(sc, sc.Dialect == Unbound && holdsQueries(sc))
	r, err := resolver.New(st.cfg, resolver.Deps{
		Exchanger: opt.NewExchanger(nw, clock),
		Clock:     clock,
		Logger:    opt.Logger,
		Validator: v,
	})
	if err != nil {
		return nil, errSkip("resolver config: " + err.Error())
	}
	srv := listener.New(listener.Config{QueryTimeout: opt.Timeout, Logger: opt.Logger}, r)
	return &engine{sc: sc, net: nw, srv: srv, clock: clock, timeout: opt.Timeout,
		answers: make(chan *dns.Msg, len(sc.Steps)+1)}, nil
}

// holdsQueries reports whether the script answers queries itself, so
// unmatched ones must wait for it instead of timing out at once.
func holdsQueries(sc *Scenario) bool {
	for _, st := range sc.Steps {
		switch st.Type {
		case "CHECK_OUT_QUERY", "REPLY", "TIMEOUT", "ERROR":
			return true
		}
	}
	return false
}

// unsupportedStep names the first step type the engine cannot play.
func unsupportedStep(sc *Scenario) string {
	for _, st := range sc.Steps {
		switch st.Type {
		case "QUERY", "CHECK_ANSWER", "CHECK_OUT_QUERY", "REPLY", "TIMEOUT", "ERROR", "TRAFFIC", "NOTHING":
		case "TIME_PASSES":
			if len(st.Args) < 2 || st.Args[0] != "ELAPSE" {
				return fmt.Sprintf("step %d: TIME_PASSES %v not supported", st.N, st.Args)
			}
		default:
			return fmt.Sprintf("step %d: %s not supported", st.N, st.Type)
		}
	}
	return ""
}

// close releases every held query so that no resolver goroutine outlives
// the scenario, then waits a bounded time for in-flight answers.
func (e *engine) close() {
	for e.net.resolvePending(nil, nil, nil) {
	}
	deadline := time.After(e.timeout)
	for ; e.inflight > 0; e.inflight-- {
		select {
		case <-e.answers:
		case <-deadline:
			return
		}
	}
}

// finish applies the end-of-scenario rules.
func (e *engine) finish() error {
	if e.sc.Dialect == Unbound && len(e.unchecked) > 0 {
		return &stepError{step: e.sc.Steps[len(e.sc.Steps)-1].N, msg: fmt.Sprintf("%d answer(s) never checked, first: %s", len(e.unchecked), brief(e.unchecked[0]))}
	}
	if missing := e.net.unusedMandatory(); len(missing) > 0 {
		return &stepError{msg: fmt.Sprintf("MANDATORY entries never used: %v", missing)}
	}
	return nil
}

// clientAddr is where scenario client queries come from (Unbound's
// testbound: 127.0.0.1), inside the listener's default access list.
var clientAddr = netip.MustParseAddrPort("127.0.0.1:40000")
