package web

import (
	"time"

	"codeberg.org/monostack/gizmo/web/series"
	"github.com/prometheus/client_golang/prometheus"
)

// Insights are the services' counters in the dashboard's own terms. The
// daemon builds them from each service's Stats, so that web knows nothing
// of the services.
type Insights struct {
	DNS      DNSInsights             `json:"dns"`
	NAT64    NAT64Insights           `json:"nat64"`
	Firewall map[string]CounterValue `json:"firewall"`
	DHCPv4   map[string]uint64       `json:"dhcpv4"`
	// Hosts are per-host extras keyed by MAC address.
	Hosts map[string]HostInsights `json:"hosts"`
	// Limits are the bounds hit since the gizmo started, the most recent
	// first.
	Limits []LimitHit `json:"limits"`
	// Metrics are the services' own counters and gauges for /metrics,
	// each declared with its type by the daemon.
	Metrics []prometheus.Metric `json:"-"`
}

// DNSInsights summarise the DNS64 service.
type DNSInsights struct {
	Queries     uint64            `json:"queries"`
	Synthesized uint64            `json:"synthesized"`
	CacheHits   uint64            `json:"cache_hits"`
	CacheMisses uint64            `json:"cache_misses"`
	ByType      map[string]uint64 `json:"by_type"`
	BySource    map[string]uint64 `json:"by_source"`
	// TopLegacy are the names that most often needed synthesis: the sites
	// that are still IPv4-only.
	TopLegacy []NameCount `json:"top_legacy"`
}

// NameCount is one entry of a top-N list.
type NameCount struct {
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

// NAT64Insights summarise the NAT64 datapath.
type NAT64Insights struct {
	Running bool `json:"running"`
	// ToInternet and ToLAN say which pools run: to the internet, to the
	// LAN's own IPv4 devices (for IPv6-only hosts).
	ToInternet bool              `json:"to_internet"`
	ToLAN      bool              `json:"to_lan"`
	Sessions   int               `json:"sessions"`
	Capacity   int               `json:"capacity"`
	Translated uint64            `json:"translated"`
	Drops      map[string]uint64 `json:"drops"`
}

// CounterValue is one nftables counter.
type CounterValue struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// HostInsights are one host's extras.
type HostInsights struct {
	// DNSSources counts queries by the listening address used, i.e. by
	// how the host learned its resolver (rdnss, dhcpv6, dhcpv4).
	DNSSources  map[string]uint64 `json:"dns_sources"`
	DNSQueries  uint64            `json:"dns_queries"`
	Synthesized uint64            `json:"synthesized"`
	TopLegacy   []NameCount       `json:"top_legacy"`
	// CLAT is true when the host sends NAT64 traffic to IPv4 literals,
	// i.e. it runs a CLAT (464XLAT).
	CLAT         bool     `json:"clat"`
	ExposedPorts []string `json:"exposed_ports"`
	// Traffic is the host's cumulative traffic by category.
	Traffic series.Categories `json:"traffic"`
}

// LimitHit is one of the bounds the gizmo keeps against floods and full
// tables, and how often and when it last refused or shed something.
type LimitHit struct {
	// Key names the limit for scripts (nat64_tables, dns_fair_share, ...).
	Key string `json:"key"`
	// What says what happened, in the household's words.
	What string `json:"what"`
	// Count is how many packets, queries or requests the limit refused
	// since the gizmo started.
	Count uint64 `json:"count"`
	// Last is when the gizmo last saw the limit refuse something.
	Last time.Time `json:"last"`
}
