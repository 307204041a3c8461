package replay

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/resolver/transport"
)

// exec plays one step.
func (e *engine) exec(ctx context.Context, st *Step) error {
	fail := func(format string, args ...any) error {
		return &stepError{step: st.N, msg: fmt.Sprintf(format, args...)}
	}
	switch st.Type {
	case "QUERY":
		e.query(ctx, st)
	case "CHECK_ANSWER":
		if why := e.checkAnswer(ctx, st); why != "" {
			return fail("%s", why)
		}
	case "CHECK_OUT_QUERY":
		if e.sc.Dialect == Unbound && !e.checkOutQuery(ctx, st) {
			return fail("no upstream query %s was sent", questionText(st.Entry.Question))
		}
	case "REPLY":
		if e.sc.Dialect == Unbound && !e.reply(ctx, st) {
			return fail("REPLY: no pending upstream query to answer")
		}
	case "TIMEOUT":
		e.net.resolvePending(nil, nil, nil)
	case "ERROR":
		e.net.resolvePending(nil, nil, transport.ErrRefused)
	case "TIME_PASSES":
		e.clock.Advance(time.Duration(st.Elapse * float64(time.Second)))
	case "TRAFFIC":
		e.settle(ctx)
	}
	return nil
}

// query sends the step's entry to the daemon's listener as a client's
// packet, over TCP when the entry says MATCH TCP. Deckard waits for the
// answer; Unbound lets it run while the next steps play.
func (e *engine) query(ctx context.Context, st *Step) {
	raw := st.Entry.rawForm()
	if raw == nil {
		b, err := st.Entry.msg(e.sc.Dialect).Pack()
		if err != nil {
			return
		}
		raw = b
	}
	udp := !st.Entry.Match["TCP"]
	e.inflight++
	go func() {
		var m *dns.Msg
		if out := e.srv.ServePacket(raw, clientAddr, udp); out != nil {
			// An SVCB the library refuses is read as opaque data, as
			// testbound's ldns reads it.
			m, _ = transport.UnpackLenient(out)
		}
		e.answers <- m
	}()
	if e.sc.Dialect == Deckard {
		e.last = nil
		e.settle(ctx)
		if n := len(e.unchecked); n > 0 {
			e.last = e.unchecked[n-1]
			e.unchecked = nil
		}
	}
}

// settle waits until every client query has been answered, or the
// resolver waits on queries only the script can answer.
func (e *engine) settle(ctx context.Context) {
	for e.inflight > 0 {
		changed, pending := e.net.state()
		quiet := time.NewTimer(quietPeriod)
		select {
		case m := <-e.answers:
			e.inflight--
			if m != nil {
				e.unchecked = append(e.unchecked, m)
			}
		case <-changed:
		case <-quiet.C:
			if pending > 0 {
				return
			}
		case <-ctx.Done():
			quiet.Stop()
			return
		}
		quiet.Stop()
	}
}

// checkAnswer compares an answer with the entry: Deckard the last one,
// Unbound any not yet checked. Held queries that no step will answer time
// out so that the resolver can finish.
func (e *engine) checkAnswer(ctx context.Context, st *Step) string {
	if e.sc.Dialect == Deckard {
		if e.last == nil {
			return "no answer to the last query"
		}
		return e.judge(st.Entry, e.last)
	}
	for len(e.unchecked) == 0 && e.inflight > 0 && ctx.Err() == nil {
		e.settle(ctx)
		if len(e.unchecked) == 0 {
			e.net.resolvePending(nil, nil, nil)
		}
	}
	if len(e.unchecked) == 0 {
		return "no answer arrived"
	}
	first := ""
	for i, m := range e.unchecked {
		why := e.judge(st.Entry, m)
		if why == "" {
			e.unchecked = append(e.unchecked[:i], e.unchecked[i+1:]...)
			return ""
		}
		if first == "" {
			first = why
		}
	}
	return first
}

// judge compares one answer with an expected entry.
func (e *engine) judge(want *Entry, got *dns.Msg) string {
	if why := want.mismatch(got, false, e.sc.Dialect); why != "" {
		return fmt.Sprintf("%s (answer %s)", why, brief(got))
	}
	return ""
}

// checkOutQuery looks for a sent query matching the entry; with copy_id
// the entry answers it when it is still pending.
func (e *engine) checkOutQuery(ctx context.Context, st *Step) bool {
	answer := func(q *dns.Msg) []byte { return st.Entry.reply(q, Unbound) }
	if !st.Entry.Adjust["copy_id"] {
		answer = nil
	}
	for range 2 {
		if answer != nil && e.net.resolvePending(st.Entry, answer, nil) {
			return true
		}
		if e.net.sent(st.Entry, st.Addr) {
			return true
		}
		e.settle(ctx)
	}
	return false
}

// reply answers the newest pending query with the step's entry.
func (e *engine) reply(ctx context.Context, st *Step) bool {
	answer := func(q *dns.Msg) []byte { return st.Entry.reply(q, Unbound) }
	if e.net.resolvePending(nil, answer, nil) {
		return true
	}
	e.settle(ctx)
	return e.net.resolvePending(nil, answer, nil)
}

// brief renders a message on one line for failure reports.
func brief(m *dns.Msg) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", dns.RcodeToString[m.Rcode], flagText(m))
	for _, sec := range []struct {
		name string
		rrs  []dns.RR
	}{{"an", m.Answer}, {"ns", m.Ns}, {"ar", m.Extra}} {
		if len(sec.rrs) == 0 {
			continue
		}
		texts := make([]string, 0, len(sec.rrs))
		for _, rr := range sec.rrs {
			if rr.Header().Rrtype == dns.TypeOPT {
				texts = append(texts, ednsText(m))
				continue
			}
			texts = append(texts, strings.Join(strings.Fields(rr.String()), " "))
		}
		fmt.Fprintf(&b, " %s{%s}", sec.name, strings.Join(texts, " | "))
	}
	return b.String()
}
