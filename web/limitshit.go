package web

import (
	"cmp"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/internal/boundedhttp"
)

// recentLimits is how far back the overview reports limits that were hit:
// a day, so that a flood in the night is still there in the morning.
const recentLimits = 24 * time.Hour

// webLimits are the web server's own bounds that were hit, from its
// counters: the connection cap of each listener and the login limiter.
func (s *Server) webLimits() []LimitHit {
	var out []LimitHit
	at := func(ns int64) time.Time { return time.Unix(0, ns) }
	for _, l := range []struct {
		name  string
		stats *boundedhttp.Counters
	}{{"http", &s.stats.http}, {"https", &s.stats.https}} {
		if n := l.stats.Limited.Load(); n > 0 {
			out = append(out, LimitHit{Key: "web_connections_" + l.name,
				What:  "More browsers or scripts connected to the dashboard (" + l.name + ") at once than it serves: the rest waited for a free slot.",
				Count: n, Last: at(l.stats.LimitedAt.Load())})
		}
	}
	if n := s.stats.loginThrottled.Load(); n > 0 {
		out = append(out, LimitHit{Key: "web_login_attempts",
			What:  "Someone tried passwords faster than the login allows: those attempts were refused unchecked.",
			Count: n, Last: at(s.stats.loginThrottledAt.Load())})
	}
	return out
}

// limitsHitSince are the services' and the web server's limits hit since
// a time, the most recent first.
func (s *Server) limitsHitSince(services []LimitHit, since time.Time) []LimitHit {
	var out []LimitHit
	for _, h := range slices.Concat(services, s.webLimits()) {
		if h.Last.After(since) {
			out = append(out, h)
		}
	}
	slices.SortStableFunc(out, func(a, b LimitHit) int { return cmp.Compare(b.Last.UnixNano(), a.Last.UnixNano()) })
	return out
}
