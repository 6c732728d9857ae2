package rollup

import (
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dhcp4"
	"codeberg.org/monostack/gizmo/services/dns64"
	"codeberg.org/monostack/gizmo/services/fastpath"
	"codeberg.org/monostack/gizmo/services/nat64"
	"codeberg.org/monostack/gizmo/services/ndproxy"
	"codeberg.org/monostack/gizmo/services/neighbors"
	"codeberg.org/monostack/gizmo/services/nsresponder"
	"codeberg.org/monostack/gizmo/services/ra"
	"codeberg.org/monostack/gizmo/services/upnp"
	"codeberg.org/monostack/gizmo/services/wan"
)

func TestWatchLimits(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	withNAT64 := func(inbound uint64) Stats {
		return Stats{NAT64: &nat64.Stats{Counters: map[string]uint64{"inbound_session_refused": inbound, "translated_6to4": 1e6}}}
	}
	r := New()

	t.Run("counters at zero and traffic that hits no bound: no limit hit", func(t *testing.T) {
		if got := r.WatchLimits(withNAT64(0), at(0)); len(got) != 0 {
			t.Errorf("hits %+v", got)
		}
		if got := r.LimitsHit(); len(got) != 0 {
			t.Errorf("LimitsHit %+v", got)
		}
	})
	t.Run("a counter that grew is a hit, with what it grew by", func(t *testing.T) {
		got := r.WatchLimits(withNAT64(92), at(1))
		if len(got) != 1 || got[0].Key != "nat64_inbound" || got[0].Count != 92 || !got[0].Last.Equal(at(1)) {
			t.Errorf("hits %+v, want nat64_inbound 92 at %v", got, at(1))
		}
	})
	t.Run("a counter that stayed is no new hit, and keeps its time", func(t *testing.T) {
		if got := r.WatchLimits(withNAT64(92), at(2)); len(got) != 0 {
			t.Errorf("hits %+v", got)
		}
		if got := r.LimitsHit(); len(got) != 1 || !got[0].Last.Equal(at(1)) || got[0].Count != 92 {
			t.Errorf("LimitsHit %+v, want nat64_inbound 92 at %v", got, at(1))
		}
	})
	t.Run("a restarted service counts from zero: its new counts add to the total", func(t *testing.T) {
		r.WatchLimits(withNAT64(8), at(3))
		got := r.LimitsHit()
		if len(got) != 1 || got[0].Count != 100 || !got[0].Last.Equal(at(3)) {
			t.Errorf("LimitsHit %+v, want 100 in all, last at %v", got, at(3))
		}
	})
	t.Run("the most recent hit comes first", func(t *testing.T) {
		s := withNAT64(8)
		s.DNS64 = &dns64.Stats{Fairness: dns64.FairnessDrops{UpstreamShare: 5}}
		r.WatchLimits(s, at(4))
		got := r.LimitsHit()
		if len(got) != 2 || got[0].Key != "dns_fair_share" || got[1].Key != "nat64_inbound" {
			t.Errorf("LimitsHit %+v, want dns_fair_share, then nat64_inbound", got)
		}
	})
}

// Each limit reads the counters of its bound, and only those.
func TestEachLimitItsCounters(t *testing.T) {
	nat := func(name string) Stats { return Stats{NAT64: &nat64.Stats{Counters: map[string]uint64{name: 1}}} }
	for _, tc := range []struct {
		key string
		s   Stats
	}{
		{"nat64_tables", nat("filter_table_full")},
		{"nat64_tables", nat("ports_exhausted")},
		{"nat64_host_share", nat("mac_limit_refused")},
		{"nat64_host_share", nat("prefix_limit_refused")},
		{"nat64_inbound", nat("inbound_session_refused")},
		{"nat64_icmp_errors", nat("icmp_error_suppressed")},
		{"dns_fair_share", Stats{DNS64: &dns64.Stats{Fairness: dns64.FairnessDrops{LongestQueue: 1}}}},
		{"dns_fair_share", Stats{DNS64: &dns64.Stats{Overloaded: 1}}},
		{"dhcp4_pool", Stats{DHCP4: &dhcp4.Stats{PoolExhausted: 1}}},
		{"router_solicitations", Stats{RA: &ra.Stats{RSQueueFull: 1}}},
		{"nd_proxy", Stats{NDProxy: &ndproxy.Stats{Dropped: 1}}},
		{"host_table", Stats{HostTable: &HostTable{HostTableStats: state.HostTableStats{Refused: 1}}}},
		{"host_table", Stats{HostTable: &HostTable{HostTableStats: state.HostTableStats{Evicted: 1}}}},
		{"lan_impersonation", Stats{Neighbors: &neighbors.Stats{Ignored: map[string]uint64{neighbors.ReasonLLAddrMismatch: 1}}}},
		{"lan_impersonation", Stats{DHCP4: &dhcp4.Stats{SourceMismatch: 1}}},
		{"dhcp4_rate", Stats{DHCP4: &dhcp4.Stats{RateLimitedPort: 1}}},
		{"nd_proxy_claims", Stats{NDProxy: &ndproxy.Stats{UnprovenEvicted: 1}}},
		{"ns_responder", Stats{NSResponder: &nsresponder.Stats{Refused: map[string]uint64{nsresponder.ReasonRateSource: 1}}}},
		{"upstream_tables", Stats{WAN: &wan.Stats{UpstreamFull: map[string]uint64{"rdnss": 1}}}},
		{"fast_path", Stats{Fastpath: &fastpath.Stats{FlowFull: 1}}},
		{"upnp", Stats{UPnP: &UPnP{Stats: upnp.Stats{Refused: map[string]uint64{"host_full": 1}}}}},
	} {
		r := New()
		got := r.WatchLimits(tc.s, time.Unix(60, 0))
		if len(got) != 1 || got[0].Key != tc.key {
			t.Errorf("%+v: hits %+v, want %s alone", tc.s, got, tc.key)
		}
	}
	// Refusals that are no bound (malformed packets, a policy saying no)
	// hit none.
	r := New()
	if got := r.WatchLimits(Stats{
		NAT64:       &nat64.Stats{Counters: map[string]uint64{"malformed": 9, "destination_denied": 9}},
		NSResponder: &nsresponder.Stats{Refused: map[string]uint64{nsresponder.ReasonNotTarget: 9}},
		Neighbors:   &neighbors.Stats{Ignored: map[string]uint64{neighbors.ReasonMalformed: 9}},
		HostTable:   &HostTable{HostTableStats: state.HostTableStats{AddrsEvicted: 9}},
		UPnP:        &UPnP{Stats: upnp.Stats{Refused: map[string]uint64{"malformed": 9}}},
	}, time.Unix(60, 0)); len(got) != 0 {
		t.Errorf("hits %+v, want none", got)
	}
}
