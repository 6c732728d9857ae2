package rollup

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/accounting"
	"codeberg.org/monostack/gizmo/services/dhcp4"
	"codeberg.org/monostack/gizmo/services/dns64"
	"codeberg.org/monostack/gizmo/services/fastpath"
	"codeberg.org/monostack/gizmo/services/firewall"
	"codeberg.org/monostack/gizmo/services/nat64"
	"codeberg.org/monostack/gizmo/services/ra"
	"codeberg.org/monostack/gizmo/services/timesync"
	"codeberg.org/monostack/gizmo/web/series"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const hostMAC = "02:00:00:00:00:30"

var (
	hostAddr = netip.MustParseAddr("2001:db8:1000::10")   // the host's own SLAAC address
	clatAddr = netip.MustParseAddr("2001:db8:1000::c1a7") // its CLAT's dedicated address
	stranger = netip.MustParseAddr("2001:db8:1000::99")   // no MAC known yet
)

func hosts() map[string]*state.Host {
	return map[string]*state.Host{hostMAC: {
		MAC:    hostMAC,
		Addrs:  map[netip.Addr]time.Time{hostAddr: {}, clatAddr: {}},
		Policy: state.HostPolicy{ExposedPorts: []string{"tcp/22"}},
	}}
}

// RFC 6877 §6.3: a CLAT translates from an address of its own that
// carries nothing else; an address that also resolved names through the
// DNS64 or carried native IPv6 is the host's own stack.
func TestNAT64TrafficSplitsDNS64AndCLAT(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stats Stats
	}{
		{"an address that queried the DNS64 is the host's own stack", Stats{
			DNS64: &dns64.Stats{Hosts: map[string]dns64.HostStats{hostMAC: {LastAddr: hostAddr}}},
		}},
		{"an address that carried native IPv6 is the host's own stack", Stats{
			NativeIPv6: map[netip.Addr]accounting.Bytes{hostAddr: {}},
		}},
		{"an address the fast path forwarded native IPv6 for is the host's own stack", Stats{
			Fastpath: &fastpath.Stats{Hosts: map[netip.Addr]fastpath.HostStats{hostAddr: {}}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New()
			// An earlier entry of the host's address was retired by the
			// datapath: its bytes still count.
			r.RetireNAT64Host(nat64.HostStats{Addr: hostAddr, BytesOut: 100, BytesIn: 1000})
			s := tc.stats
			s.NAT64 = &nat64.Stats{Hosts: []nat64.HostStats{
				{Addr: hostAddr, BytesOut: 10, BytesIn: 20},
				{Addr: clatAddr, BytesOut: 5, BytesIn: 50},
				{Addr: stranger, BytesOut: 1, BytesIn: 1},
			}}
			got := r.Traffic(s, OwnersOf(hosts()))
			if h := got[hostMAC]; h.NAT64DNS64 != 1130 || h.NAT64CLAT != 55 {
				t.Errorf("host traffic = %+v, want 1130 bytes via DNS64 (own stack, retired included) and 55 from the CLAT", h)
			}
			if got[stranger.String()].NAT64CLAT != 2 {
				t.Errorf("an address without a known MAC is kept under the address: %+v", got)
			}
		})
	}
}

func TestTrafficCategories(t *testing.T) {
	s := Stats{
		NativeIPv6: map[netip.Addr]accounting.Bytes{hostAddr: {Out: 1, In: 2}},
		NAT44:      map[netip.Addr]accounting.Bytes{netip.MustParseAddr("203.0.113.140"): {Out: 3, In: 4}},
		Fastpath:   &fastpath.Stats{Hosts: map[netip.Addr]fastpath.HostStats{hostAddr: {OutBytes: 10, InBytes: 20}}},
	}
	got := New().Traffic(s, OwnersOf(hosts()))
	want := map[string]series.Categories{
		hostMAC:         {NativeIPv6: 33}, // the fast path's bytes never met the accounting table
		"203.0.113.140": {NAT44: 7},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Traffic (-want +got):\n%s", d)
	}
}

func TestInsights(t *testing.T) {
	s := Stats{
		FirewallCounters: map[string]firewall.Counter{firewall.CounterIPv6Forwarded: {Packets: 5, Bytes: 500}},
		Fastpath:         &fastpath.Stats{Packets: 7, Bytes: 700},
		DHCP4:            &dhcp4.Stats{Offers: 3, Leases: 2},
		NAT64: &nat64.Stats{Enabled: true, ToLAN: true, Sessions: 12, Counters: map[string]uint64{
			"translated_6to4": 10, "translated_4to6": 20, "hairpinned": 1, "table_full": 4,
		}, Hosts: []nat64.HostStats{{Addr: clatAddr, BytesIn: 9}}},
		NAT64Capacity: nat64.DefaultMaxSessions,
		DNS64: &dns64.Stats{Queries: 9, Synthesized: 2, Hosts: map[string]dns64.HostStats{
			// Counted under an address before the MAC was known.
			hostAddr.String(): {Queries: 4, BySource: map[dns64.Source]uint64{dns64.SourceRDNSS: 4}, TopSynthesized: []dns64.NameCount{{Name: "v4only.example.test.", Count: 2}}},
		}},
	}
	ins := New().Insights(s, hosts())
	if c := ins.Firewall[firewall.CounterIPv6Forwarded]; c.Packets != 12 || c.Bytes != 1200 {
		t.Errorf("native IPv6 forwarded = %+v, want the ruleset's and the fast path's packets together", c)
	}
	if ins.DHCPv4["Offers"] != 3 || ins.DHCPv4["Leases"] != 2 {
		t.Errorf("DHCPv4 = %v", ins.DHCPv4)
	}
	want := struct{ translated, full uint64 }{31, 4}
	if ins.NAT64.Translated != want.translated || ins.NAT64.Drops["table_full"] != want.full || ins.NAT64.Capacity != nat64.DefaultMaxSessions || !ins.NAT64.Running ||
		ins.NAT64.ToInternet || !ins.NAT64.ToLAN {
		t.Errorf("NAT64 = %+v", ins.NAT64)
	}
	h := ins.Hosts[hostMAC]
	if h.DNSQueries != 4 || h.DNSSources["rdnss"] != 4 || len(h.TopLegacy) != 1 {
		t.Errorf("a host's queries counted under its address were not added to it: %+v", h)
	}
	if !h.CLAT || h.Traffic.NAT64CLAT != 9 || len(h.ExposedPorts) != 1 {
		t.Errorf("host insights = %+v", h)
	}
	if len(ins.DNS.TopLegacy) != 1 || ins.DNS.TopLegacy[0].Name != "v4only.example.test." {
		t.Errorf("top legacy names = %v", ins.DNS.TopLegacy)
	}
}

// The LAN pool's bytes (to and from the LAN's own IPv4-only devices) are
// LAN legacy whichever address carried them, the retired entries'
// included; they neither make an address a CLAT nor count as NAT64 to
// the internet.
func TestNAT64TrafficLANPoolIsLANLegacy(t *testing.T) {
	r := New()
	r.RetireNAT64Host(nat64.HostStats{Addr: hostAddr, LANBytesOut: 300, LANBytesIn: 3000})
	s := Stats{
		DNS64: &dns64.Stats{Hosts: map[string]dns64.HostStats{hostMAC: {LastAddr: hostAddr}}},
		NAT64: &nat64.Stats{Hosts: []nat64.HostStats{
			{Addr: hostAddr, BytesOut: 10, BytesIn: 20, LANBytesOut: 7, LANBytesIn: 70},
			{Addr: clatAddr, LANBytesOut: 1, LANBytesIn: 2},
		}},
	}
	got := r.Traffic(s, OwnersOf(hosts()))
	want := series.Categories{NAT64DNS64: 30, LANLegacy: 3380}
	if diff := cmp.Diff(want, got[hostMAC]); diff != "" {
		t.Errorf("host traffic (-want +got):\n%s", diff)
	}
	if ins := r.Insights(s, hosts()); ins.Hosts[hostMAC].CLAT {
		t.Errorf("LAN pool bytes alone made the host a CLAT user: %+v", ins.Hosts[hostMAC])
	}
}

// Counters are TYPE counter and end in _total; gauges are gauges. A
// service that does not run has no metrics.
func TestMetricsAreTyped(t *testing.T) {
	s := Stats{
		RA:    &ra.Stats{RSReceived: 3, RSInvalid: map[string]uint64{"hop-limit": 2}},
		DHCP4: &dhcp4.Stats{Offers: 1, Leases: 4},
	}
	wantExposed(t, s,
		"# TYPE gizmo_dhcp4_leases gauge\ngizmo_dhcp4_leases 4\n",
		"# TYPE gizmo_dhcp4_offers_total counter\ngizmo_dhcp4_offers_total 1\n",
		"# TYPE gizmo_ra_rs_invalid_total counter\ngizmo_ra_rs_invalid_total{reason=\"hop-limit\"} 2\n",
		"# TYPE gizmo_ra_rs_received_total counter\ngizmo_ra_rs_received_total 3\n",
	)
	for key := range gather(t, s) {
		if strings.HasPrefix(key, "gizmo_nat64") || strings.HasPrefix(key, "gizmo_wan") {
			t.Errorf("%s of a service that does not run", key)
		}
	}
}

// Every declared family is well-formed and unique: a registry that checks
// gathers all of them at once without complaint.
func TestMetricsAllServices(t *testing.T) {
	names := map[string]bool{}
	for key := range gather(t, everyService()) {
		name, _, _ := strings.Cut(key, ",")
		names[name] = true
	}
	if len(names) < 90 {
		t.Errorf("%d metric families, want every service's", len(names))
	}
}

// Every counter reads a field of its own: with each number in the Stats a
// value of its own, no two unlabelled counters agree, as two would if one
// family read another's field.
func TestMetricsReadTheirOwnFields(t *testing.T) {
	seen := map[float64]string{}
	for key, v := range gather(t, everyService()) {
		if !strings.HasSuffix(key, "_total") {
			continue // a gauge, or a labelled counter's sample
		}
		if other, ok := seen[v]; ok {
			t.Errorf("%s and %s both count %v", key, other, v)
		}
		seen[v] = key
	}
	if len(seen) < 100 {
		t.Errorf("%d unlabelled counters, want every service's", len(seen))
	}
}

// gather is Metrics(s) through a registry that checks every family, by
// name and labels ("name,label=value"), and checks that counters, and only
// they, end in _total.
func gather(t *testing.T, s Stats) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(constCollector(Metrics(s)))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		counter := mf.GetType().String() == "COUNTER"
		if counter != strings.HasSuffix(mf.GetName(), "_total") {
			t.Errorf("%s is a %s: counters, and only they, end in _total", mf.GetName(), mf.GetType())
		}
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return got
}

// wantExposed checks that /metrics of Metrics(s) holds each of want.
func wantExposed(t *testing.T, s Stats, want ...string) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(constCollector(Metrics(s)))
	w := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, x := range want {
		if !strings.Contains(w.Body.String(), x) {
			t.Errorf("/metrics lacks\n%s\ngot:\n%s", x, w.Body)
		}
	}
}

// constCollector hands out fixed metrics and describes them, so that a
// pedantic registry checks them.
type constCollector []prometheus.Metric

func (c constCollector) Describe(ch chan<- *prometheus.Desc) {
	seen := map[*prometheus.Desc]bool{}
	for _, m := range c {
		if d := m.Desc(); !seen[d] {
			seen[d] = true
			ch <- d
		}
	}
}

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}

// The UPnP IGD's requests are counted by action and result, its refusals
// by reason, and the pinholes in force are a gauge.
func TestUPnPMetrics(t *testing.T) {
	got := gather(t, everyService())
	for key, want := range map[string]float64{
		"gizmo_upnp_requests_total,action=AddPinhole,result=ok":  3,
		"gizmo_upnp_requests_total,action=AddPinhole,result=703": 1,
		"gizmo_upnp_refused_total,reason=some-reason":            1,
		"gizmo_upnp_ssdp_dropped_total,reason=some-reason":       1,
		"gizmo_upnp_pinholes":                                    2,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}

// The time service's state and counters, typed: whether the clock is
// synchronised and when last, as gauges; its work, as counters.
func TestTimesyncMetrics(t *testing.T) {
	last := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	wantExposed(t, Stats{Timesync: &timesync.Stats{
		Synced: true, LastSync: last, Stratum: 9, Offset: -1500 * time.Millisecond, Steps: 1, Queries: 4,
		Rejected: map[string]uint64{timesync.RejectUnsynced: 2},
		Server:   timesync.ServerStats{Requests: 7, Replies: 6, Dropped: map[string]uint64{timesync.DropRate: 1}},
	}},
		"# TYPE gizmo_timesync_synced gauge\ngizmo_timesync_synced 1\n",
		"# TYPE gizmo_timesync_last_sync_timestamp_seconds gauge\ngizmo_timesync_last_sync_timestamp_seconds 1.773500966e+09\n",
		"# TYPE gizmo_timesync_stratum gauge\ngizmo_timesync_stratum 9\n",
		"# TYPE gizmo_timesync_offset_seconds gauge\ngizmo_timesync_offset_seconds -1.5\n",
		"# TYPE gizmo_timesync_steps_total counter\ngizmo_timesync_steps_total 1\n",
		"# TYPE gizmo_timesync_rejected_total counter\ngizmo_timesync_rejected_total{reason=\"unsynchronized\"} 2\n",
		"# TYPE gizmo_timesync_server_replies_total counter\ngizmo_timesync_server_replies_total 6\n",
		"# TYPE gizmo_timesync_server_dropped_total counter\ngizmo_timesync_server_dropped_total{reason=\"rate-limit\"} 1\n",
	)
}
