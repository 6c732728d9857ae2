package web

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// collector turns a snapshot of the state and the insights into gizmo_*
// metrics at scrape time, so nothing is kept twice. The per-host series
// are for a logged-in scraper only.
type collector struct {
	s       *Server
	perHost bool
}

// Describe sends nothing: the collector is "unchecked", because which
// services run (and so which metrics exist) is only known at scrape time.
func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.cfg.Backend.Snapshot()
	ins := c.s.cfg.Backend.Insights()
	gauge := func(name, help string, v float64, labels ...string) {
		var keys, vals []string
		for i := 0; i+1 < len(labels); i += 2 {
			keys, vals = append(keys, labels[i]), append(vals, labels[i+1])
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, keys, nil), prometheus.GaugeValue, v, vals...)
	}
	counter := func(name, help string, v float64, labels ...string) {
		var keys, vals []string
		for i := 0; i+1 < len(labels); i += 2 {
			keys, vals = append(keys, labels[i]), append(vals, labels[i+1])
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, keys, nil), prometheus.CounterValue, v, vals...)
	}

	gauge("gizmo_hosts", "LAN hosts known.", float64(len(st.Hosts)))
	if st.Delegated != nil {
		p, v := st.Delegated.Remaining(time.Now())
		gauge("gizmo_delegated_prefix_preferred_seconds", "Preferred lifetime left of the delegated prefix.", p.Seconds(), "prefix", st.Delegated.Prefix.String())
		gauge("gizmo_delegated_prefix_valid_seconds", "Valid lifetime left of the delegated prefix.", v.Seconds(), "prefix", st.Delegated.Prefix.String())
	}
	gauge("gizmo_retired_prefixes", "Prefixes being phased out (RFC 9096).", float64(len(st.Retired)))
	gauge("gizmo_pref64_info", "The active NAT64 prefix.", 1, "prefix", st.Pref64.String(), "source", string(st.Pref64Source))

	if !c.perHost {
		ins.Hosts = nil
	}
	for mac, h := range ins.Hosts {
		for _, cat := range categories {
			counter("gizmo_host_traffic_bytes_total", "Bytes a host exchanged, by category.", float64(cat.value(h.Traffic)), "mac", mac, "category", cat.Key)
		}
		for src, n := range h.DNSSources {
			counter("gizmo_host_dns_queries_total", "DNS queries a host sent, by the listening address (information source) used.", float64(n), "mac", mac, "source", src)
		}
	}
	counter("gizmo_dns_queries_total", "DNS queries answered.", float64(ins.DNS.Queries))
	counter("gizmo_dns_synthesized_total", "AAAA answers synthesized (RFC 6147).", float64(ins.DNS.Synthesized))
	for t, n := range ins.DNS.ByType {
		counter("gizmo_dns_queries_by_type_total", "DNS queries by type.", float64(n), "type", t)
	}
	for src, n := range ins.DNS.BySource {
		counter("gizmo_dns_queries_by_source_total", "DNS queries by information source.", float64(n), "source", src)
	}
	if ins.NAT64.Running {
		gauge("gizmo_nat64_sessions", "Active NAT64 sessions.", float64(ins.NAT64.Sessions))
		gauge("gizmo_nat64_session_capacity", "Size of the NAT64 session table.", float64(ins.NAT64.Capacity))
		counter("gizmo_nat64_translated_packets_total", "Packets translated by the NAT64.", float64(ins.NAT64.Translated))
		for reason, n := range ins.NAT64.Drops {
			counter("gizmo_nat64_dropped_packets_total", "Packets the NAT64 dropped or passed on, by reason.", float64(n), "reason", reason)
		}
	}
	for name, v := range ins.Firewall {
		counter("gizmo_firewall_packets_total", "Packets counted by the firewall's named counters.", float64(v.Packets), "counter", name)
		counter("gizmo_firewall_bytes_total", "Bytes counted by the firewall's named counters.", float64(v.Bytes), "counter", name)
	}
	for _, m := range ins.Metrics {
		ch <- m
	}
}

// metricsHandler serves /metrics: everything to a logged-in scraper (basic
// auth over HTTPS), the aggregates to anyone.
func (s *Server) metricsHandler() http.Handler {
	public, full := prometheus.NewRegistry(), prometheus.NewRegistry()
	public.MustRegister(collector{s, false}, statsCollector{s})
	full.MustRegister(collector{s, true}, statsCollector{s})
	opts := promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}
	publicH, fullH := promhttp.HandlerFor(public, opts), promhttp.HandlerFor(full, opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		details, ok := s.viewer(w, r)
		switch {
		case !ok:
		case details:
			fullH.ServeHTTP(w, r)
		default:
			publicH.ServeHTTP(w, r)
		}
	})
}
