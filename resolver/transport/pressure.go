package transport

import (
	"time"

	"go.uber.org/zap"
)

// noteUnwanted counts one reply that failed a check on an exchange with
// q.Server. Past Config.UnwantedThreshold within Config.UnwantedWindow the
// server is asked over TCP for Config.PressureTCPFor and a warning names
// it: someone is spraying forgeries at our ports for that server. Unbound's
// unwanted-reply-threshold (off by default, 10 million suggested) is one
// counter per thread whose action is to flush the caches; a per-server
// count reacts to a targeted attack a million times sooner, and TCP keeps
// answering instead of throwing away everything learned.
//
// q's own count goes back to the resolver with the exchange (Unwanted),
// which adds the counts up per zone.
func (c *Client) noteUnwanted(q *Query) {
	c.n.unwanted.Add(1)
	q.unwanted++
	now := c.cfg.Clock.Now()
	escalate := false
	c.servers.update(q.Server, func(s *serverInfo) {
		if now.Sub(s.unwantedSince) > c.cfg.UnwantedWindow || now.Before(s.unwantedSince) {
			s.unwanted, s.unwantedSince = 0, now
		}
		s.unwanted++
		if s.unwanted >= c.cfg.UnwantedThreshold && !now.Before(s.tcpUntil) {
			s.tcpUntil = now.Add(c.cfg.PressureTCPFor)
			s.unwanted, s.unwantedSince = 0, now
			escalate = true
		}
	})
	if escalate {
		c.n.pressureEsc.Add(1)
		c.log.Warn("spoofing pressure: unwanted replies past the threshold, asking the server over TCP",
			zap.Stringer("server", q.Server), zap.String("name", q.Name),
			zap.Int("threshold", c.cfg.UnwantedThreshold), zap.Duration("for", c.cfg.PressureTCPFor))
	}
}

// underPressure says whether q.Server is to be asked over TCP because of
// spoofing pressure.
func (c *Client) underPressure(info serverInfo, now time.Time) bool {
	return now.Before(info.tcpUntil)
}
