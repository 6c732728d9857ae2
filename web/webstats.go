package web

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"codeberg.org/monostack/gizmo/internal/boundedhttp"
)

// webStats are the web server's own counters: every bound it keeps and
// every request it refuses, for /metrics.
type webStats struct {
	http, https boundedhttp.Counters

	plainWritesRefused atomic.Uint64 // writes over plain HTTP (403)
	crossOrigin        atomic.Uint64 // writes refused by the CSRF check
	bodyTooLarge       atomic.Uint64 // write bodies over Limits.MaxBody
	logins             atomic.Uint64 // successful logins
	loginFailures      atomic.Uint64 // wrong passwords (form or basic auth)
	loginThrottled     atomic.Uint64 // attempts refused by the login limiter
	loginThrottledAt   atomic.Int64  // when the limiter last refused one (Unix ns)
	logouts            atomic.Uint64
}

func (w *webStats) listener(s scheme) *boundedhttp.Counters {
	if s == schemeHTTPS {
		return &w.https
	}
	return &w.http
}

// statsCollector exports webStats, the sessions and the login limiter.
type statsCollector struct{ s *Server }

func (statsCollector) Describe(chan<- *prometheus.Desc) {}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := &c.s.stats
	emit := func(kind prometheus.ValueType, name, help string, v float64, labels ...string) {
		var keys, vals []string
		for i := 0; i+1 < len(labels); i += 2 {
			keys, vals = append(keys, labels[i]), append(vals, labels[i+1])
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, keys, nil), kind, v, vals...)
	}
	for _, l := range []struct {
		name string
		s    *boundedhttp.Counters
	}{{"http", &st.http}, {"https", &st.https}} {
		emit(prometheus.GaugeValue, "gizmo_web_connections_open", "Open dashboard connections.", float64(l.s.Open.Load()), "listener", l.name)
		emit(prometheus.CounterValue, "gizmo_web_connections_accepted_total", "Dashboard connections accepted.", float64(l.s.Accepted.Load()), "listener", l.name)
		emit(prometheus.CounterValue, "gizmo_web_connections_limited_total", "Accepts that waited because the connection cap was reached.", float64(l.s.Limited.Load()), "listener", l.name)
		emit(prometheus.CounterValue, "gizmo_web_connection_timeouts_total", "Connections closed because a read deadline passed (slow handshake, header or body, idle).", float64(l.s.Timeouts.Load()), "listener", l.name)
	}
	emit(prometheus.CounterValue, "gizmo_web_plain_http_writes_refused_total", "Writes refused because they came over plain HTTP.", float64(st.plainWritesRefused.Load()))
	emit(prometheus.CounterValue, "gizmo_web_cross_origin_refused_total", "Writes refused by the cross-origin (CSRF) check.", float64(st.crossOrigin.Load()))
	emit(prometheus.CounterValue, "gizmo_web_body_too_large_total", "Write bodies cut at the size limit.", float64(st.bodyTooLarge.Load()))
	emit(prometheus.CounterValue, "gizmo_web_logins_total", "Successful logins.", float64(st.logins.Load()))
	emit(prometheus.CounterValue, "gizmo_web_logouts_total", "Logouts.", float64(st.logouts.Load()))
	emit(prometheus.CounterValue, "gizmo_web_login_failures_total", "Wrong passwords, by login form or basic auth.", float64(st.loginFailures.Load()))
	emit(prometheus.CounterValue, "gizmo_web_login_throttled_total", "Password attempts refused unchecked by the login rate limit.", float64(st.loginThrottled.Load()))
	n, evicted, expired := c.s.sessions.stats(c.s.now())
	emit(prometheus.GaugeValue, "gizmo_web_sessions", "Login sessions held.", float64(n))
	emit(prometheus.CounterValue, "gizmo_web_sessions_evicted_total", "Sessions dropped to make room for a new login (least recently used).", float64(evicted))
	emit(prometheus.CounterValue, "gizmo_web_sessions_expired_total", "Sessions ended by idle time or age.", float64(expired))
	tracked, forgotten := c.s.logins.stats()
	emit(prometheus.GaugeValue, "gizmo_web_login_clients_tracked", "Client networks the login limiter remembers.", float64(tracked))
	emit(prometheus.CounterValue, "gizmo_web_login_clients_evicted_total", "Client networks the login limiter forgot to stay in bounds.", float64(forgotten))
	hs := c.s.cfg.Backend.History().Stats()
	emit(prometheus.GaugeValue, "gizmo_web_history_host_entries", "Per-host entries the traffic history holds.", float64(hs.HostEntries))
	emit(prometheus.CounterValue, "gizmo_web_history_hosts_folded_total", "Host entries added up under \"other\" because a history bucket held its maximum of hosts.", float64(hs.HostsFolded))
	if l := c.s.cfg.Log; l != nil {
		held, dropped, truncated := l.Stats()
		emit(prometheus.GaugeValue, "gizmo_web_log_lines", "Log lines the dashboard's log page holds.", float64(held))
		emit(prometheus.CounterValue, "gizmo_web_log_lines_dropped_total", "Log lines the dashboard's log page let go for newer ones.", float64(dropped))
		emit(prometheus.CounterValue, "gizmo_web_log_lines_truncated_total", "Log lines cut at the log page's line length.", float64(truncated))
	}
}
