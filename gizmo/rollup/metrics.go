package rollup

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"codeberg.org/monostack/gizmo/services/accounting"
	"codeberg.org/monostack/gizmo/services/clat"
	"codeberg.org/monostack/gizmo/services/dhcp4"
	"codeberg.org/monostack/gizmo/services/dhcp6info"
	"codeberg.org/monostack/gizmo/services/dhcp6pd"
	"codeberg.org/monostack/gizmo/services/dns64"
	"codeberg.org/monostack/gizmo/services/dslite"
	"codeberg.org/monostack/gizmo/services/fastpath"
	"codeberg.org/monostack/gizmo/services/firewall"
	"codeberg.org/monostack/gizmo/services/lanif"
	"codeberg.org/monostack/gizmo/services/nat64"
	"codeberg.org/monostack/gizmo/services/ndproxy"
	"codeberg.org/monostack/gizmo/services/neighbors"
	"codeberg.org/monostack/gizmo/services/nsresponder"
	"codeberg.org/monostack/gizmo/services/ra"
	"codeberg.org/monostack/gizmo/services/timesync"
	"codeberg.org/monostack/gizmo/services/wan"
	"github.com/prometheus/client_golang/prometheus"
)

// A family is one declared metric of a service's Stats S: a counter
// (the name ends in _total) or a gauge, optionally split by one label.
type family[S any] struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(S) float64
	// byLabel (counters) or byGauge (gauges), when set, gives one sample
	// per label value instead; byLabels one per pair of values of two
	// labels.
	byLabel  func(S) map[string]uint64
	byGauge  func(S) map[string]float64
	byLabels func(S) map[[2]string]uint64
}

func counter[S any](name, help string, f func(S) uint64) family[S] {
	return family[S]{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.CounterValue, value: func(s S) float64 { return float64(f(s)) }}
}

func gauge[S any](name, help string, f func(S) float64) family[S] {
	return family[S]{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.GaugeValue, value: f}
}

func counterBy[S any](name, help, label string, f func(S) map[string]uint64) family[S] {
	return family[S]{desc: prometheus.NewDesc(name, help, []string{label}, nil), kind: prometheus.CounterValue, byLabel: f}
}

func gaugeBy[S any](name, help, label string, f func(S) map[string]float64) family[S] {
	return family[S]{desc: prometheus.NewDesc(name, help, []string{label}, nil), kind: prometheus.GaugeValue, byGauge: f}
}

func floats[N int | uint64](m map[string]N) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

func counterBy2[S any](name, help, label1, label2 string, f func(S) map[[2]string]uint64) family[S] {
	return family[S]{desc: prometheus.NewDesc(name, help, []string{label1, label2}, nil), kind: prometheus.CounterValue, byLabels: f}
}

func emit[S any](out []prometheus.Metric, s *S, fams []family[S]) []prometheus.Metric {
	if s == nil {
		return out
	}
	for _, f := range fams {
		if f.byLabels != nil {
			m := f.byLabels(*s)
			for _, l := range slices.SortedFunc(maps.Keys(m), func(a, b [2]string) int {
				return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
			}) {
				out = append(out, prometheus.MustNewConstMetric(f.desc, f.kind, float64(m[l]), l[0], l[1]))
			}
			continue
		}
		var m map[string]float64
		switch {
		case f.byLabel != nil:
			m = floats(f.byLabel(*s))
		case f.byGauge != nil:
			m = f.byGauge(*s)
		default:
			out = append(out, prometheus.MustNewConstMetric(f.desc, f.kind, f.value(*s)))
			continue
		}
		for _, l := range slices.Sorted(maps.Keys(m)) {
			out = append(out, prometheus.MustNewConstMetric(f.desc, f.kind, m[l], l))
		}
	}
	return out
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Metrics are every running service's counters and gauges, each declared
// below with its type.
func Metrics(s Stats) []prometheus.Metric {
	var out []prometheus.Metric
	out = emit(out, s.WAN, wanMetrics)
	out = emit(out, s.DHCP6PD, dhcp6pdMetrics)
	out = emit(out, s.RA, raMetrics)
	out = emit(out, s.NDProxy, ndproxyMetrics)
	out = emit(out, s.NSResponder, nsresponderMetrics)
	out = emit(out, s.DHCP6Info, dhcp6infoMetrics)
	out = emit(out, s.LANIf, lanifMetrics)
	out = emit(out, s.DNS64, dns64Metrics)
	out = emit(out, s.DHCP4, dhcp4Metrics)
	out = emit(out, s.NAT64, nat64Metrics)
	out = emit(out, s.DSLite, dsliteMetrics)
	out = emit(out, s.CLAT, clatMetrics)
	out = emit(out, s.Discovery, discoveryMetrics)
	out = emit(out, s.Firewall, firewallMetrics)
	out = emit(out, s.Fastpath, fastpathMetrics)
	out = emit(out, s.Accounting, accountingMetrics)
	out = emit(out, s.NDProxy, ndproxyClaimMetrics)
	out = emit(out, s.DHCP4, dhcp4LANMetrics)
	out = emit(out, s.Neighbors, neighborsMetrics)
	out = emit(out, s.HostTable, hostTableMetrics)
	out = emit(out, s.UPnP, upnpMetrics)
	out = emit(out, s.Timesync, timesyncMetrics)
	out = emit(out, s.VLAN, vlanMetrics)
	return out
}

var wanMetrics = []family[wan.Stats]{
	counter("gizmo_wan_router_advertisements_total", "Router Advertisements accepted on the WAN.", func(s wan.Stats) uint64 { return s.RAs }),
	counter("gizmo_wan_router_solicitations_total", "Router Solicitations sent on the WAN.", func(s wan.Stats) uint64 { return s.RouterSolicits }),
	counterBy("gizmo_wan_invalid_router_advertisements_total", "Router Advertisements dropped and options skipped on the WAN (RFC 4861 §6.1.2), by reason.", "reason", func(s wan.Stats) map[string]uint64 { return s.InvalidRAs }),
	counter("gizmo_wan_link_ups_total", "Times the WAN link came up.", func(s wan.Stats) uint64 { return s.LinkUps }),
	counter("gizmo_wan_link_downs_total", "Times the WAN link went down.", func(s wan.Stats) uint64 { return s.LinkDowns }),
	counter("gizmo_wan_address_changes_total", "Changes of the WAN's addresses.", func(s wan.Stats) uint64 { return s.AddrChanges }),
	counter("gizmo_wan_netlink_dropped_total", "Link and address notifications the netlink library dropped (malformed, or not from the kernel).", func(s wan.Stats) uint64 { return s.NetlinkDropped }),
	counterBy("gizmo_wan_upstream_table_full_total", "Upstream RA entries evicted or refused because their table was full, by table.", "table", func(s wan.Stats) map[string]uint64 { return s.UpstreamFull }),
	counterBy("gizmo_wan_lifetimes_clamped_total", "Upstream RA option lifetimes (infinity included) cut to the longest the gizmo keeps, by table.", "table", func(s wan.Stats) map[string]uint64 { return s.LifetimesClamped }),
	gaugeBy("gizmo_wan_upstream_entries", "Entries in the upstream RA tables, by table.", "table", func(s wan.Stats) map[string]float64 { return floats(s.UpstreamEntries) }),
	gauge("gizmo_wan_unreachable_routes", "Unreachable routes for delegated prefixes (RFC 7084 WPD-5).", func(s wan.Stats) float64 { return float64(s.UnreachableRoutes) }),
	counter("gizmo_wan_route_errors_total", "Failed changes of the unreachable routes.", func(s wan.Stats) uint64 { return s.RouteErrors }),
	counter("gizmo_wan_dhcpv4_discovers_total", "DHCPDISCOVERs sent on the WAN.", func(s wan.Stats) uint64 { return s.DHCPv4Discovers }),
	counter("gizmo_wan_dhcpv4_acks_total", "DHCPACKs accepted on the WAN.", func(s wan.Stats) uint64 { return s.DHCPv4Acks }),
	counter("gizmo_wan_dhcpv4_naks_total", "DHCPNAKs received on the WAN.", func(s wan.Stats) uint64 { return s.DHCPv4Naks }),
	counter("gizmo_wan_dhcpv4_renews_total", "Unicast DHCPREQUESTs renewing the WAN lease.", func(s wan.Stats) uint64 { return s.DHCPv4Renews }),
	counter("gizmo_wan_dhcpv4_rebinds_total", "Broadcast DHCPREQUESTs for the current WAN lease (REBINDING, INIT-REBOOT).", func(s wan.Stats) uint64 { return s.DHCPv4Rebinds }),
	counter("gizmo_wan_dhcpv4_failures_total", "Failed DHCPv4 exchanges on the WAN.", func(s wan.Stats) uint64 { return s.DHCPv4Failures }),
	counterBy("gizmo_wan_dhcpv4_invalid_leases_total", "WAN DHCPv4 leases rejected, by reason.", "reason", func(s wan.Stats) map[string]uint64 { return s.InvalidDHCPv4 }),
}

var dhcp6pdMetrics = []family[dhcp6pd.Stats]{
	counter("gizmo_dhcp6pd_solicits_total", "DHCPv6 Solicits sent.", func(s dhcp6pd.Stats) uint64 { return s.Solicits }),
	counter("gizmo_dhcp6pd_advertises_total", "DHCPv6 Advertises received.", func(s dhcp6pd.Stats) uint64 { return s.Advertises }),
	counter("gizmo_dhcp6pd_requests_total", "DHCPv6 Requests sent.", func(s dhcp6pd.Stats) uint64 { return s.Requests }),
	counter("gizmo_dhcp6pd_replies_total", "DHCPv6 Replies received.", func(s dhcp6pd.Stats) uint64 { return s.Replies }),
	counter("gizmo_dhcp6pd_renews_total", "DHCPv6 Renews sent.", func(s dhcp6pd.Stats) uint64 { return s.Renews }),
	counter("gizmo_dhcp6pd_rebinds_total", "DHCPv6 Rebinds sent.", func(s dhcp6pd.Stats) uint64 { return s.Rebinds }),
	counter("gizmo_dhcp6pd_leases_total", "Replies accepted as a delegation.", func(s dhcp6pd.Stats) uint64 { return s.Leases }),
	counter("gizmo_dhcp6pd_lost_total", "Delegated prefixes given up.", func(s dhcp6pd.Stats) uint64 { return s.Lost }),
	counter("gizmo_dhcp6pd_no_prefix_avail_total", "NoPrefixAvail statuses received.", func(s dhcp6pd.Stats) uint64 { return s.NoPrefixAvail }),
	counter("gizmo_dhcp6pd_no_binding_total", "NoBinding statuses received.", func(s dhcp6pd.Stats) uint64 { return s.NoBinding }),
	counterBy("gizmo_dhcp6pd_invalid_leases_total", "Delegations rejected, by reason.", "reason", func(s dhcp6pd.Stats) map[string]uint64 { return s.InvalidLeases }),
	counter("gizmo_dhcp6pd_malformed_total", "DHCPv6 packets that did not parse.", func(s dhcp6pd.Stats) uint64 { return s.Malformed }),
	counter("gizmo_dhcp6pd_ignored_total", "DHCPv6 packets for another client or transaction.", func(s dhcp6pd.Stats) uint64 { return s.Ignored }),
	counter("gizmo_dhcp6pd_reconfigure_accepted_total", "Reconfigure messages accepted (RFC 8415 §18.2.11).", func(s dhcp6pd.Stats) uint64 { return s.ReconfigureAccepted }),
	counter("gizmo_dhcp6pd_reconfigure_dropped_total", "Reconfigure messages dropped.", func(s dhcp6pd.Stats) uint64 { return s.ReconfigureDropped }),
	counter("gizmo_dhcp6pd_send_errors_total", "DHCPv6 messages that could not be sent.", func(s dhcp6pd.Stats) uint64 { return s.SendErrors }),
	counter("gizmo_dhcp6pd_unconfirmed_dropped_total", "Stored delegations dropped before use: not confirmed by the server, or expired by the synchronised clock.", func(s dhcp6pd.Stats) uint64 { return s.UnconfirmedDropped }),
	counter("gizmo_dhcp6pd_malformed_time_options_total", "NTP and SNTP server options (RFC 5908, RFC 4075) ignored because they did not parse.", func(s dhcp6pd.Stats) uint64 { return s.MalformedTimeOptions }),
}

var raMetrics = []family[ra.Stats]{
	counter("gizmo_ra_rs_received_total", "Router Solicitations received on the LAN.", func(s ra.Stats) uint64 { return s.RSReceived }),
	counterBy("gizmo_ra_rs_invalid_total", "Router Solicitations dropped (RFC 4861 §6.1.1), by reason.", "reason", func(s ra.Stats) map[string]uint64 { return s.RSInvalid }),
	counter("gizmo_ra_rs_queue_full_total", "Valid Router Solicitations dropped because the sender could not keep up.", func(s ra.Stats) uint64 { return s.RSQueueFull }),
	counter("gizmo_ra_unsolicited_total", "Unsolicited multicast Router Advertisements sent.", func(s ra.Stats) uint64 { return s.RAUnsolicited }),
	counter("gizmo_ra_solicited_multicast_total", "Solicited Router Advertisements sent to all nodes.", func(s ra.Stats) uint64 { return s.RASolicitedMulticast }),
	counter("gizmo_ra_solicited_unicast_total", "Solicited Router Advertisements sent to the soliciting host.", func(s ra.Stats) uint64 { return s.RASolicitedUnicast }),
	counter("gizmo_ra_final_total", "Final Router Advertisements (router lifetime 0) sent at shutdown.", func(s ra.Stats) uint64 { return s.RAFinal }),
	counter("gizmo_ra_send_errors_total", "Router Advertisements that could not be sent.", func(s ra.Stats) uint64 { return s.SendErrors }),
	counter("gizmo_ra_plan_errors_total", "Plans that could not be encoded; the previous one stayed.", func(s ra.Stats) uint64 { return s.PlanErrors }),
}

var nsresponderMetrics = []family[nsresponder.Stats]{
	counter("gizmo_nsresponder_received_total", "Neighbor Solicitations for the on-link NAT64 prefix received.", func(s nsresponder.Stats) uint64 { return s.Received }),
	counter("gizmo_nsresponder_answered_total", "Neighbor Advertisements sent for addresses of the on-link NAT64 prefix (RFC 4861 §7.2.4).", func(s nsresponder.Stats) uint64 { return s.Answered }),
	counter("gizmo_nsresponder_dad_answered_total", "DAD probes for addresses of the on-link NAT64 prefix answered (RFC 4862 §5.4.3).", func(s nsresponder.Stats) uint64 { return s.DADAnswered }),
	counterBy("gizmo_nsresponder_refused_total", "Neighbor Solicitations not answered (RFC 4861 §7.1.1 checks, rate limits), by reason.", "reason", func(s nsresponder.Stats) map[string]uint64 { return s.Refused }),
	gauge("gizmo_nsresponder_sources", "Sources the rate limit of the NS responder tracks now.", func(s nsresponder.Stats) float64 { return float64(s.Sources) }),
	counter("gizmo_nsresponder_send_errors_total", "Neighbor Advertisements that could not be sent.", func(s nsresponder.Stats) uint64 { return s.SendErrors }),
	counter("gizmo_nsresponder_plan_errors_total", "Plans of the NS responder refused; the previous one stayed.", func(s nsresponder.Stats) uint64 { return s.PlanErrors }),
}

var ndproxyMetrics = []family[ndproxy.Stats]{
	gauge("gizmo_ndproxy_proxied_addresses", "LAN host addresses proxied now (RFC 7278 §4.3).", func(s ndproxy.Stats) float64 { return float64(s.Proxying) }),
	counter("gizmo_ndproxy_learned_total", "Addresses that became known.", func(s ndproxy.Stats) uint64 { return s.Learned }),
	counter("gizmo_ndproxy_dad_seen_total", "DAD probes heard on the LAN.", func(s ndproxy.Stats) uint64 { return s.DADSeen }),
	counter("gizmo_ndproxy_added_total", "Proxy entries installed.", func(s ndproxy.Stats) uint64 { return s.Added }),
	counter("gizmo_ndproxy_removed_total", "Proxy entries withdrawn.", func(s ndproxy.Stats) uint64 { return s.Removed }),
	counter("gizmo_ndproxy_failed_total", "Addresses withdrawn because the LAN host stopped answering.", func(s ndproxy.Stats) uint64 { return s.Failed }),
	counter("gizmo_ndproxy_expired_total", "Addresses withdrawn without evidence for their maximum age.", func(s ndproxy.Stats) uint64 { return s.Expired }),
	counter("gizmo_ndproxy_conflicts_total", "Addresses not proxied because a WAN-side neighbour holds them.", func(s ndproxy.Stats) uint64 { return s.Conflicts }),
	counter("gizmo_ndproxy_lookups_total", "LAN probes for addresses the upstream solicited (RFC 4389 §4.1.3.1).", func(s ndproxy.Stats) uint64 { return s.Lookups }),
	counter("gizmo_ndproxy_ns_answered_total", "Upstream Neighbor Solicitations for a proxied address.", func(s ndproxy.Stats) uint64 { return s.NSAnswered }),
	counter("gizmo_ndproxy_ns_ignored_total", "Upstream Neighbor Solicitations for other addresses in the shared /64.", func(s ndproxy.Stats) uint64 { return s.NSIgnored }),
	counter("gizmo_ndproxy_dad_defended_total", "Upstream DAD probes for a proxied address.", func(s ndproxy.Stats) uint64 { return s.DADDefended }),
	counter("gizmo_ndproxy_malformed_total", "ND packets that failed the RFC 4861 §7.1 checks.", func(s ndproxy.Stats) uint64 { return s.Malformed }),
	counter("gizmo_ndproxy_dropped_total", "Evidence dropped for lack of room or time.", func(s ndproxy.Stats) uint64 { return s.Dropped }),
	counter("gizmo_ndproxy_errors_total", "Failed kernel operations.", func(s ndproxy.Stats) uint64 { return s.Errors }),
}

var dhcp6infoMetrics = []family[dhcp6info.Stats]{
	counter("gizmo_dhcp6info_received_total", "Stateless DHCPv6 messages received.", func(s dhcp6info.Stats) uint64 { return s.Received }),
	counter("gizmo_dhcp6info_replies_total", "Replies to Information-requests.", func(s dhcp6info.Stats) uint64 { return s.Replies }),
	counter("gizmo_dhcp6info_advertises_total", "NoAddrsAvail Advertises to Solicits.", func(s dhcp6info.Stats) uint64 { return s.Advertises }),
	counterBy("gizmo_dhcp6info_dropped_total", "Messages left unanswered, by reason.", "reason", func(s dhcp6info.Stats) map[string]uint64 { return s.Dropped }),
	counter("gizmo_dhcp6info_send_errors_total", "Replies that could not be sent.", func(s dhcp6info.Stats) uint64 { return s.SendErrors }),
}

var lanifMetrics = []family[lanif.Stats]{
	counter("gizmo_lanif_applied_total", "LAN address plans applied.", func(s lanif.Stats) uint64 { return uint64(max(s.Applied, 0)) }),
	counter("gizmo_lanif_errors_total", "Failed LAN address changes.", func(s lanif.Stats) uint64 { return uint64(max(s.Errors, 0)) }),
}

var dns64Metrics = []family[dns64.Stats]{
	counter("gizmo_dns64_queries_total", "DNS queries handled (after the fair queue).", func(s dns64.Stats) uint64 { return s.Queries }),
	counterBy("gizmo_dns64_fairness_drops_total", "DNS queries and TCP connections dropped to keep each client to its fair share, by reason.", "reason", func(s dns64.Stats) map[string]uint64 {
		f := s.Fairness
		return map[string]uint64{"longest_queue": f.LongestQueue, "upstream_share": f.UpstreamShare, "tcp_refused": f.TCPRefused}
	}),
	counter("gizmo_dns64_steered_total", "Times a flooding source was steered to a socket of its own.", func(s dns64.Stats) uint64 { return s.Fairness.Steered }),
	counter("gizmo_dns64_overloaded_total", "DNS queries dropped because too many waited for upstreams.", func(s dns64.Stats) uint64 { return s.Overloaded }),
	counter("gizmo_dns64_malformed_total", "FORMERR, NOTIMP and BADVERS answers.", func(s dns64.Stats) uint64 { return s.Malformed }),
	counter("gizmo_dns64_refused_total", "Refused queries (unsupported classes, zone transfers).", func(s dns64.Stats) uint64 { return s.Refused }),
	counter("gizmo_dns64_servfail_total", "SERVFAIL answers.", func(s dns64.Stats) uint64 { return s.ServFail }),
	counter("gizmo_dns64_nxdomain_total", "NXDOMAIN answers.", func(s dns64.Stats) uint64 { return s.NXDomain }),
	counter("gizmo_dns64_synthesized_total", "AAAA answers synthesized (RFC 6147).", func(s dns64.Stats) uint64 { return s.Synthesized }),
	counter("gizmo_dns64_excluded_total", "AAAA records dropped as excluded (RFC 6147 §5.1.4).", func(s dns64.Stats) uint64 { return s.Excluded }),
	counter("gizmo_dns64_local_total", "Queries answered from local data.", func(s dns64.Stats) uint64 { return s.Local }),
	counter("gizmo_dns64_truncated_total", "UDP answers sent with TC.", func(s dns64.Stats) uint64 { return s.Truncated }),
	counter("gizmo_dns64_cache_hits_total", "Answers from the cache.", func(s dns64.Stats) uint64 { return s.CacheHits }),
	counter("gizmo_dns64_cache_misses_total", "Questions the cache could not answer.", func(s dns64.Stats) uint64 { return s.CacheMisses }),
	gauge("gizmo_dns64_cache_entries", "Entries in the cache.", func(s dns64.Stats) float64 { return float64(s.CacheEntries) }),
	gauge("gizmo_dns64_cache_bytes", "Bytes the cache holds.", func(s dns64.Stats) float64 { return float64(s.CacheBytes) }),
	gauge("gizmo_dns64_cache_max_bytes", "The cache's size limit in bytes.", func(s dns64.Stats) float64 { return float64(s.CacheMaxBytes) }),
	gauge("gizmo_dns64_memo_entries", "Packed answers remembered for repeated questions.", func(s dns64.Stats) float64 { return float64(s.MemoEntries) }),
}

var dhcp4Metrics = []family[dhcp4.Stats]{
	counter("gizmo_dhcp4_offers_total", "DHCPOFFERs sent.", func(s dhcp4.Stats) uint64 { return s.Offers }),
	counter("gizmo_dhcp4_acks_total", "DHCPACKs sent.", func(s dhcp4.Stats) uint64 { return s.Acks }),
	counter("gizmo_dhcp4_naks_total", "DHCPNAKs sent.", func(s dhcp4.Stats) uint64 { return s.Naks }),
	counter("gizmo_dhcp4_declines_total", "DHCPDECLINEs received.", func(s dhcp4.Stats) uint64 { return s.Declines }),
	counter("gizmo_dhcp4_releases_total", "DHCPRELEASEs received.", func(s dhcp4.Stats) uint64 { return s.Releases }),
	counter("gizmo_dhcp4_informs_total", "DHCPINFORMs answered.", func(s dhcp4.Stats) uint64 { return s.Informs }),
	counter("gizmo_dhcp4_pool_exhausted_total", "DHCPDISCOVERs without an offer because no address was free.", func(s dhcp4.Stats) uint64 { return s.PoolExhausted }),
	counter("gizmo_dhcp4_malformed_total", "Packets that did not parse or were not an Ethernet client's request.", func(s dhcp4.Stats) uint64 { return s.Malformed }),
	counter("gizmo_dhcp4_ignored_total", "Well-formed packets that needed no answer.", func(s dhcp4.Stats) uint64 { return s.Ignored }),
	counter("gizmo_dhcp4_v6only_sent_total", "Replies that carried option 108 (RFC 8925).", func(s dhcp4.Stats) uint64 { return s.V6OnlySent }),
	counter("gizmo_dhcp4_persist_errors_total", "Failed writes of the lease file.", func(s dhcp4.Stats) uint64 { return s.PersistErrors }),
	counter("gizmo_dhcp4_clock_steps_total", "Steps of the wall clock that moved this run's lease expiries (RFC 2131 §3.3: leases keep their remaining time).", func(s dhcp4.Stats) uint64 { return s.ClockSteps }),
	gauge("gizmo_dhcp4_leases", "Current DHCPv4 leases.", func(s dhcp4.Stats) float64 { return float64(s.Leases) }),
}

// The NAT64's sessions, translations and drops are in the dashboard's
// terms already (web: gizmo_nat64_sessions, gizmo_nat64_*_packets_total).
var nat64Metrics = []family[nat64.Stats]{
	gauge("gizmo_nat64_enabled", "1 while the NAT64 translates.", func(s nat64.Stats) float64 { return boolGauge(s.Enabled) }),
	gauge("gizmo_nat64_bindings", "Address and port bindings at the last reaper pass.", func(s nat64.Stats) float64 { return float64(s.Bindings) }),
}

// The B4's softwire (RFC 6333): packets each way and what it dropped.
var dsliteMetrics = []family[dslite.Stats]{
	gauge("gizmo_dslite_running", "1 while the softwire to the AFTR runs.", func(s dslite.Stats) float64 { return boolGauge(s.Running) }),
	counter("gizmo_dslite_aftr_lookups_total", "Lookups of the AFTR's name (RFC 6334 §4).", func(s dslite.Stats) uint64 { return s.Lookups }),
	counter("gizmo_dslite_aftr_lookup_failures_total", "Lookups of the AFTR's name that failed.", func(s dslite.Stats) uint64 { return s.LookupFailures }),
	counterBy("gizmo_dslite_packets_total", "The softwire's datapath counters: packets and bytes each way, MSS clamps, drops by reason.", "counter",
		func(s dslite.Stats) map[string]uint64 { return s.Counters }),
}

var clatMetrics = []family[clat.Stats]{
	gauge("gizmo_clat_running", "1 while the CLAT translates the legacy hosts' IPv4 (RFC 6877).", func(s clat.Stats) float64 { return boolGauge(s.Running) }),
	counterBy("gizmo_clat_packets_total", "Packets the CLAT program handled, by outcome (translated_out, translated_in, the drops).", "outcome", func(s clat.Stats) map[string]uint64 { return s.Counters }),
	counter("gizmo_clat_plan_errors_total", "CLAT plans that could not be applied.", func(s clat.Stats) uint64 { return uint64(max(s.Errors, 0)) }),
}

var discoveryMetrics = []family[clat.DiscoveryStats]{
	counterBy("gizmo_clat_discovery_rounds_total", "RFC 7050 discovery rounds, by outcome: a NAT64 prefix found, none (no DNS64), failed (no answer).", "outcome", func(s clat.DiscoveryStats) map[string]uint64 {
		return map[string]uint64{"found": s.Found, "none": s.None, "failed": s.Failed}
	}),
}

var firewallMetrics = []family[firewall.Stats]{
	counter("gizmo_firewall_applied_total", "Rulesets swapped in.", func(s firewall.Stats) uint64 { return s.Applied }),
	counter("gizmo_firewall_failed_total", "Plans refused or failed to apply.", func(s firewall.Stats) uint64 { return s.Failed }),
	gauge("gizmo_firewall_rules", "Rules in the running ruleset.", func(s firewall.Stats) float64 { return float64(s.Rules) }),
	gauge("gizmo_firewall_set_elements", "Set elements in the running ruleset.", func(s firewall.Stats) float64 { return float64(s.Elements) }),
	counter("gizmo_firewall_flows_ended_total", "Established flows ended because the inbound rule or exposed port that let them in was removed.", func(s firewall.Stats) uint64 { return s.FlowsEnded }),
	counter("gizmo_firewall_flow_end_errors_total", "Failed attempts to end the flows of removed inbound rules.", func(s firewall.Stats) uint64 { return s.FlowEndErrors }),
}

var fastpathMetrics = []family[fastpath.Stats]{
	gauge("gizmo_fastpath_active", "1 while the fast path is attached with LAN prefixes.", func(s fastpath.Stats) float64 { return boolGauge(s.Active) }),
	gauge("gizmo_fastpath_flows", "Flows in the table at the last reap.", func(s fastpath.Stats) float64 { return float64(s.Flows) }),
	gauge("gizmo_fastpath_offloaded_flows", "Flows established both ways at the last reap.", func(s fastpath.Stats) float64 { return float64(s.Offloaded) }),
	counter("gizmo_fastpath_packets_total", "Packets forwarded on the fast path.", func(s fastpath.Stats) uint64 { return s.Packets }),
	counter("gizmo_fastpath_bytes_total", "Bytes forwarded on the fast path.", func(s fastpath.Stats) uint64 { return s.Bytes }),
	counter("gizmo_fastpath_learned_total", "Flow directions learned from the firewall's accepts.", func(s fastpath.Stats) uint64 { return s.Learned }),
	counter("gizmo_fastpath_flow_table_full_total", "Flows not learned because the table was full.", func(s fastpath.Stats) uint64 { return s.FlowFull }),
	counter("gizmo_fastpath_host_table_full_total", "Packets not counted per host because the host table was full.", func(s fastpath.Stats) uint64 { return s.HostFull }),
	counterBy("gizmo_fastpath_to_stack_total", "Packets handed to the kernel, by reason.", "reason", func(s fastpath.Stats) map[string]uint64 { return s.ToStack }),
}

var accountingMetrics = []family[accounting.Stats]{
	counter("gizmo_accounting_errors_total", "Failed installs of the accounting table.", func(s accounting.Stats) uint64 { return uint64(max(s.Errors, 0)) }),
}

// The ND proxy's claims and their proof (RFC 4389 §4.1: which side holds
// an address).
var ndproxyClaimMetrics = []family[ndproxy.Stats]{
	gauge("gizmo_ndproxy_unproven_addresses", "Addresses proxied on a claim alone, not yet proven by the host answering the gizmo.", func(s ndproxy.Stats) float64 { return float64(s.Unproven) }),
	counter("gizmo_ndproxy_proven_total", "Addresses whose host answered the gizmo's Neighbor Solicitation.", func(s ndproxy.Stats) uint64 { return s.Proven }),
	counter("gizmo_ndproxy_unproven_expired_total", "Claimed addresses withdrawn without proof.", func(s ndproxy.Stats) uint64 { return s.UnprovenExpired }),
	counter("gizmo_ndproxy_unproven_evicted_total", "Claimed addresses forgotten to make room in a full table.", func(s ndproxy.Stats) uint64 { return s.UnprovenEvicted }),
	counter("gizmo_ndproxy_resyncs_total", "Re-subscriptions to the kernel's neighbour changes after their queue overflowed.", func(s ndproxy.Stats) uint64 { return s.Resyncs }),
}

// The DHCPv4 server's checks of the LAN's frames (services/dhcp4/admit.go).
var dhcp4LANMetrics = []family[dhcp4.Stats]{
	counter("gizmo_dhcp4_source_mismatch_total", "Unrelayed messages whose chaddr is not their frame's Ethernet source (dropped).", func(s dhcp4.Stats) uint64 { return s.SourceMismatch }),
	counter("gizmo_dhcp4_unverified_total", "Unrelayed messages on a socket that shows no Ethernet source (dropped).", func(s dhcp4.Stats) uint64 { return s.Unverified }),
	counterBy("gizmo_dhcp4_rate_limited_total", "Messages dropped by a rate limit: per client, or per port for clients without a lease.", "reason", func(s dhcp4.Stats) map[string]uint64 {
		return map[string]uint64{dhcp4.LimitClient: s.RateLimitedClient, dhcp4.LimitPort: s.RateLimitedPort}
	}),
	counter("gizmo_dhcp4_socket_drops_total", "Frames the kernel dropped because the server's sockets were full.", func(s dhcp4.Stats) uint64 { return s.SocketDrops }),
}

var neighborsMetrics = []family[neighbors.Stats]{
	counter("gizmo_neighbors_frames_total", "ND and ARP frames read on the LAN.", func(s neighbors.Stats) uint64 { return s.Frames }),
	counter("gizmo_neighbors_frame_sightings_total", "Frames that showed which MAC uses which address.", func(s neighbors.Stats) uint64 { return s.FrameSightings }),
	counterBy("gizmo_neighbors_ignored_frames_total", "Frames that showed none, by reason (lladdr_mismatch: an option or ARP sender naming another MAC than the frame's source).", "reason", func(s neighbors.Stats) map[string]uint64 { return s.Ignored }),
	counter("gizmo_neighbors_table_sightings_total", "Kernel neighbour entries reported (they only refresh what frames showed).", func(s neighbors.Stats) uint64 { return s.NeighbourSightings }),
	counter("gizmo_neighbors_probes_total", "Neighbour entries the kernel was asked to confirm because no frame had.", func(s neighbors.Stats) uint64 { return s.Probes }),
	counter("gizmo_neighbors_untracked_total", "Neighbour entries neither tracked nor probed because the bookkeeping was full.", func(s neighbors.Stats) uint64 { return s.Untracked }),
	counter("gizmo_neighbors_errors_total", "Failed probes and socket errors.", func(s neighbors.Stats) uint64 { return s.Errors }),
	counter("gizmo_neighbors_socket_drops_total", "Frames the kernel dropped because the watch's sockets were full.", func(s neighbors.Stats) uint64 { return s.SocketDrops }),
}

// The daemon's host table (gizmo/derive): the dashboard's "host table
// full" and what the bounds did. gizmo_hosts (its size) is the web's.
var hostTableMetrics = []family[HostTable]{
	gauge("gizmo_hosts_capacity", "Hosts the table holds at most.", func(s HostTable) float64 { return float64(s.Capacity) }),
	gauge("gizmo_hosts_records", "Hosts kept across a reboot (named or configured).", func(s HostTable) float64 { return float64(s.Records) }),
	gauge("gizmo_hosts_name_taken", "Hosts that asked for a name another host holds, and have none.", func(s HostTable) float64 { return float64(s.NameTaken) }),
	counter("gizmo_hosts_evicted_total", "Hosts dropped from the table for a newcomer of higher standing.", func(s HostTable) uint64 { return s.Evicted }),
	counter("gizmo_hosts_refused_total", "Newcomers refused because the table was full of hosts of equal or higher standing.", func(s HostTable) uint64 { return s.Refused }),
	counter("gizmo_hosts_addresses_evicted_total", "Addresses a host lost to its newer ones when it had too many.", func(s HostTable) uint64 { return s.AddrsEvicted }),
	counter("gizmo_hosts_unproven_sightings_total", "Neighbour entries that would have attached a new address to a MAC without a frame from it.", func(s HostTable) uint64 { return s.Unproven }),
	counter("gizmo_hosts_records_dropped_total", "Remembered hosts forgotten to keep the persisted records bounded.", func(s HostTable) uint64 { return s.RecordsDropped }),
}

var upnpMetrics = []family[UPnP]{
	counterBy2("gizmo_upnp_requests_total", "UPnP control requests, by action and result (ok, or the UPnP error code answered).", "action", "result", func(s UPnP) map[[2]string]uint64 {
		out := make(map[[2]string]uint64, len(s.Requests))
		for k, n := range s.Requests {
			out[[2]string{k.Action, k.Result}] = n
		}
		return out
	}),
	counterBy("gizmo_upnp_refused_total", "UPnP requests refused, by reason (the pinhole rules' and the service's bounds).", "reason", func(s UPnP) map[string]uint64 { return s.Refused }),
	gauge("gizmo_upnp_pinholes", "Pinholes apps opened that are in force.", func(s UPnP) float64 { return float64(s.Pinholes) }),
	counter("gizmo_upnp_ssdp_searches_total", "SSDP M-SEARCHes answered.", func(s UPnP) uint64 { return s.Searches }),
	counter("gizmo_upnp_ssdp_replies_total", "SSDP answers sent.", func(s UPnP) uint64 { return s.Replies }),
	counter("gizmo_upnp_ssdp_notifies_total", "SSDP announcements sent.", func(s UPnP) uint64 { return s.Notifies }),
	counterBy("gizmo_upnp_ssdp_dropped_total", "SSDP datagrams left unanswered, by reason.", "reason", func(s UPnP) map[string]uint64 { return s.SSDPDropped }),
	counter("gizmo_upnp_connections_limited_total", "UPnP HTTP connections that waited for a free slot.", func(s UPnP) uint64 { return s.ConnsLimited }),
	counter("gizmo_upnp_connection_timeouts_total", "UPnP HTTP connections a header, read or idle timeout ended.", func(s UPnP) uint64 { return s.ConnTimeouts }),
	counter("gizmo_upnp_clients_evicted_total", "Clients the UPnP rate limiters forgot to make room.", func(s UPnP) uint64 { return s.ClientsEvicted }),
	counter("gizmo_upnp_send_errors_total", "SSDP datagrams that could not be sent.", func(s UPnP) uint64 { return s.SendErrors }),
}

var timesyncMetrics = []family[timesync.Stats]{
	gauge("gizmo_timesync_synced", "1 once the clock was synchronised with NTP in this run.", func(s timesync.Stats) float64 { return boolGauge(s.Synced) }),
	gauge("gizmo_timesync_last_sync_timestamp_seconds", "Unix time of the last accepted NTP sample (0: none yet).", func(s timesync.Stats) float64 {
		if s.LastSync.IsZero() {
			return 0
		}
		return float64(s.LastSync.UnixNano()) / 1e9
	}),
	gauge("gizmo_timesync_offset_seconds", "Clock offset of the last accepted NTP sample.", func(s timesync.Stats) float64 { return s.Offset.Seconds() }),
	gauge("gizmo_timesync_stratum", "Stratum the gizmo serves to the LAN (16: unsynchronised).", func(s timesync.Stats) float64 { return float64(s.Stratum) }),
	gauge("gizmo_timesync_poll_seconds", "Interval to the next NTP poll.", func(s timesync.Stats) float64 { return s.Poll.Seconds() }),
	gauge("gizmo_timesync_restored_seconds", "How far the clock was stepped forward to the saved time at start.", func(s timesync.Stats) float64 { return s.Restored.Seconds() }),
	counter("gizmo_timesync_steps_total", "Clock steps.", func(s timesync.Stats) uint64 { return s.Steps }),
	counter("gizmo_timesync_slews_total", "Clock slews.", func(s timesync.Stats) uint64 { return s.Slews }),
	counter("gizmo_timesync_ignored_total", "Accepted samples within the noise, left alone.", func(s timesync.Stats) uint64 { return s.Ignored }),
	counter("gizmo_timesync_queries_total", "NTP queries sent.", func(s timesync.Stats) uint64 { return s.Queries }),
	counter("gizmo_timesync_query_errors_total", "NTP queries without an answer.", func(s timesync.Stats) uint64 { return s.QueryErrors }),
	counterBy("gizmo_timesync_rejected_total", "NTP answers rejected (RFC 5905 §8), by reason.", "reason", func(s timesync.Stats) map[string]uint64 { return s.Rejected }),
	counter("gizmo_timesync_skipped_total", "Candidate NTP servers beyond the per-round bounds.", func(s timesync.Stats) uint64 { return s.Skipped }),
	counter("gizmo_timesync_resolve_errors_total", "NTP server names that did not resolve.", func(s timesync.Stats) uint64 { return s.ResolveErrors }),
	counter("gizmo_timesync_clock_errors_total", "Failed attempts to set the clock.", func(s timesync.Stats) uint64 { return s.ClockErrors }),
	counter("gizmo_timesync_save_errors_total", "Failed writes of the saved time.", func(s timesync.Stats) uint64 { return s.SaveErrors }),
	gauge("gizmo_timesync_server_listening", "Addresses the NTP server answers on.", func(s timesync.Stats) float64 { return float64(len(s.Server.Listening)) }),
	counter("gizmo_timesync_server_requests_total", "NTP requests received from the LAN.", func(s timesync.Stats) uint64 { return s.Server.Requests }),
	counter("gizmo_timesync_server_replies_total", "NTP replies sent to the LAN.", func(s timesync.Stats) uint64 { return s.Server.Replies }),
	counterBy("gizmo_timesync_server_dropped_total", "NTP requests left unanswered, by reason.", "reason", func(s timesync.Stats) map[string]uint64 { return s.Server.Dropped }),
	counter("gizmo_timesync_server_listen_errors_total", "Failed binds of the NTP server's sockets.", func(s timesync.Stats) uint64 { return s.Server.ListenErrors }),
}
