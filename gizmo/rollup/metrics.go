package rollup

import (
	"net/netip"

	"codeberg.org/monostack/gizmo/gizmo/state"
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
	"codeberg.org/monostack/gizmo/services/upnp"
	"codeberg.org/monostack/gizmo/services/vlan"
	"codeberg.org/monostack/gizmo/services/wan"
)

// Stats are the running services' counters at one moment. A service that
// does not run in this mode (or could not be read) is nil.
type Stats struct {
	WAN       *wan.Stats
	DHCP6PD   *dhcp6pd.Stats
	RA        *ra.Stats
	NDProxy   *ndproxy.Stats
	DHCP6Info *dhcp6info.Stats
	LANIf     *lanif.Stats
	DNS64     *dns64.Stats
	DHCP4     *dhcp4.Stats
	NAT64     *nat64.Stats
	// NAT64Capacity is the NAT64's session table size.
	NAT64Capacity int
	DSLite        *dslite.Stats
	CLAT          *clat.Stats
	Discovery     *clat.DiscoveryStats
	Firewall      *firewall.Stats
	// FirewallCounters are the ruleset's named counters (nil: unreadable).
	FirewallCounters map[string]firewall.Counter
	Fastpath         *fastpath.Stats
	Accounting       *accounting.Stats
	Timesync         *timesync.Stats
	// VLAN is the uplink's tagger's, while it is on a VLAN.
	VLAN *vlan.Stats
	// NativeIPv6 and NAT44 are the accounting table's per-address bytes
	// (nil: unreadable, e.g. before the table is installed).
	NativeIPv6, NAT44 map[netip.Addr]accounting.Bytes

	// Neighbors is the LAN's neighbour watch; HostTable the daemon's own
	// host table (nil: not read).
	Neighbors *neighbors.Stats
	HostTable *HostTable
	// NSResponder runs in the existing-network mode only.
	NSResponder *nsresponder.Stats
	UPnP        *UPnP
}

// HostTable is the daemon's host table at one moment: its size and
// bounds, and what the bounds did (state.HostTableStats).
type HostTable struct {
	// Hosts are the hosts of this run, at most Capacity; Records the
	// records kept across a reboot.
	Hosts, Capacity, Records int
	// NameTaken is how many hosts asked for a name another host holds.
	NameTaken int
	state.HostTableStats
}

// UPnP is the UPnP IGD's counters with the pinholes in force, which live
// in the daemon's state rather than in the service.
type UPnP struct {
	upnp.Stats
	Pinholes int
}

// The services' Stats in the rollup's, nil while the service does not
// run: what each family reads.
func ofWAN(s Stats) *wan.Stats                 { return s.WAN }
func ofDHCP6PD(s Stats) *dhcp6pd.Stats         { return s.DHCP6PD }
func ofRA(s Stats) *ra.Stats                   { return s.RA }
func ofNDProxy(s Stats) *ndproxy.Stats         { return s.NDProxy }
func ofNSResponder(s Stats) *nsresponder.Stats { return s.NSResponder }
func ofDHCP6Info(s Stats) *dhcp6info.Stats     { return s.DHCP6Info }
func ofLANIf(s Stats) *lanif.Stats             { return s.LANIf }
func ofDNS64(s Stats) *dns64.Stats             { return s.DNS64 }
func ofDHCP4(s Stats) *dhcp4.Stats             { return s.DHCP4 }
func ofNAT64(s Stats) *nat64.Stats             { return s.NAT64 }
func ofDSLite(s Stats) *dslite.Stats           { return s.DSLite }
func ofCLAT(s Stats) *clat.Stats               { return s.CLAT }
func ofDiscovery(s Stats) *clat.DiscoveryStats { return s.Discovery }
func ofFirewall(s Stats) *firewall.Stats       { return s.Firewall }
func ofFastpath(s Stats) *fastpath.Stats       { return s.Fastpath }
func ofAccounting(s Stats) *accounting.Stats   { return s.Accounting }
func ofNeighbors(s Stats) *neighbors.Stats     { return s.Neighbors }
func ofHostTable(s Stats) *HostTable           { return s.HostTable }
func ofUPnP(s Stats) *UPnP                     { return s.UPnP }
func ofTimesync(s Stats) *timesync.Stats       { return s.Timesync }
func ofVLAN(s Stats) *vlan.Stats               { return s.VLAN }

// families are the /metrics families of every service, in the order
// Metrics gives them.
var families = []family{
	counter(ofWAN, "gizmo_wan_router_advertisements_total", "Router Advertisements accepted on the WAN.", func(s wan.Stats) uint64 { return s.RAs }),
	counter(ofWAN, "gizmo_wan_router_solicitations_total", "Router Solicitations sent on the WAN.", func(s wan.Stats) uint64 { return s.RouterSolicits }),
	counterBy(ofWAN, "gizmo_wan_invalid_router_advertisements_total", "Router Advertisements dropped and options skipped on the WAN (RFC 4861 §6.1.2), by reason.", "reason", func(s wan.Stats) map[string]uint64 { return s.InvalidRAs }),
	counter(ofWAN, "gizmo_wan_link_ups_total", "Times the WAN link came up.", func(s wan.Stats) uint64 { return s.LinkUps }),
	counter(ofWAN, "gizmo_wan_link_downs_total", "Times the WAN link went down.", func(s wan.Stats) uint64 { return s.LinkDowns }),
	counter(ofWAN, "gizmo_wan_address_changes_total", "Changes of the WAN's addresses.", func(s wan.Stats) uint64 { return s.AddrChanges }),
	counter(ofWAN, "gizmo_wan_netlink_dropped_total", "Link and address notifications the netlink library dropped (malformed, or not from the kernel).", func(s wan.Stats) uint64 { return s.NetlinkDropped }),
	counter(ofWAN, "gizmo_wan_address_resyncs_total", "Times WAN address notifications were lost (the netlink buffer overflowed) and the addresses were read again.", func(s wan.Stats) uint64 { return s.AddrResyncs }),
	counterBy(ofWAN, "gizmo_wan_upstream_table_full_total", "Upstream RA entries evicted or refused because their table was full, by table.", "table", func(s wan.Stats) map[string]uint64 { return s.UpstreamFull }),
	counterBy(ofWAN, "gizmo_wan_lifetimes_clamped_total", "Upstream RA option lifetimes (infinity included) cut to the longest the gizmo keeps, by table.", "table", func(s wan.Stats) map[string]uint64 { return s.LifetimesClamped }),
	gaugeBy(ofWAN, "gizmo_wan_upstream_entries", "Entries in the upstream RA tables, by table.", "table", func(s wan.Stats) map[string]float64 { return floats(s.UpstreamEntries) }),
	gauge(ofWAN, "gizmo_wan_unreachable_routes", "Unreachable routes for delegated prefixes (RFC 7084 WPD-5).", func(s wan.Stats) float64 { return float64(s.UnreachableRoutes) }),
	counter(ofWAN, "gizmo_wan_route_errors_total", "Failed changes of the unreachable routes.", func(s wan.Stats) uint64 { return s.RouteErrors }),
	counter(ofWAN, "gizmo_wan_dhcpv4_discovers_total", "DHCPDISCOVERs sent on the WAN.", func(s wan.Stats) uint64 { return s.DHCPv4Discovers }),
	counter(ofWAN, "gizmo_wan_dhcpv4_acks_total", "DHCPACKs accepted on the WAN.", func(s wan.Stats) uint64 { return s.DHCPv4Acks }),
	counter(ofWAN, "gizmo_wan_dhcpv4_naks_total", "DHCPNAKs received on the WAN.", func(s wan.Stats) uint64 { return s.DHCPv4Naks }),
	counter(ofWAN, "gizmo_wan_dhcpv4_renews_total", "Unicast DHCPREQUESTs renewing the WAN lease.", func(s wan.Stats) uint64 { return s.DHCPv4Renews }),
	counter(ofWAN, "gizmo_wan_dhcpv4_rebinds_total", "Broadcast DHCPREQUESTs for the current WAN lease (REBINDING, INIT-REBOOT).", func(s wan.Stats) uint64 { return s.DHCPv4Rebinds }),
	counter(ofWAN, "gizmo_wan_dhcpv4_failures_total", "Failed DHCPv4 exchanges on the WAN.", func(s wan.Stats) uint64 { return s.DHCPv4Failures }),
	counterBy(ofWAN, "gizmo_wan_dhcpv4_invalid_leases_total", "WAN DHCPv4 leases rejected, by reason.", "reason", func(s wan.Stats) map[string]uint64 { return s.InvalidDHCPv4 }),

	counter(ofDHCP6PD, "gizmo_dhcp6pd_solicits_total", "DHCPv6 Solicits sent.", func(s dhcp6pd.Stats) uint64 { return s.Solicits }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_advertises_total", "DHCPv6 Advertises received.", func(s dhcp6pd.Stats) uint64 { return s.Advertises }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_requests_total", "DHCPv6 Requests sent.", func(s dhcp6pd.Stats) uint64 { return s.Requests }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_replies_total", "DHCPv6 Replies received.", func(s dhcp6pd.Stats) uint64 { return s.Replies }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_renews_total", "DHCPv6 Renews sent.", func(s dhcp6pd.Stats) uint64 { return s.Renews }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_rebinds_total", "DHCPv6 Rebinds sent.", func(s dhcp6pd.Stats) uint64 { return s.Rebinds }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_leases_total", "Replies accepted as a delegation.", func(s dhcp6pd.Stats) uint64 { return s.Leases }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_lost_total", "Delegated prefixes given up.", func(s dhcp6pd.Stats) uint64 { return s.Lost }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_no_prefix_avail_total", "NoPrefixAvail statuses received.", func(s dhcp6pd.Stats) uint64 { return s.NoPrefixAvail }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_no_binding_total", "NoBinding statuses received.", func(s dhcp6pd.Stats) uint64 { return s.NoBinding }),
	counterBy(ofDHCP6PD, "gizmo_dhcp6pd_invalid_leases_total", "Delegations rejected, by reason.", "reason", func(s dhcp6pd.Stats) map[string]uint64 { return s.InvalidLeases }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_malformed_total", "DHCPv6 packets that did not parse.", func(s dhcp6pd.Stats) uint64 { return s.Malformed }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_ignored_total", "DHCPv6 packets for another client or transaction.", func(s dhcp6pd.Stats) uint64 { return s.Ignored }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_reconfigure_accepted_total", "Reconfigure messages accepted (RFC 8415 §18.2.11).", func(s dhcp6pd.Stats) uint64 { return s.ReconfigureAccepted }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_reconfigure_dropped_total", "Reconfigure messages dropped.", func(s dhcp6pd.Stats) uint64 { return s.ReconfigureDropped }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_send_errors_total", "DHCPv6 messages that could not be sent.", func(s dhcp6pd.Stats) uint64 { return s.SendErrors }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_unconfirmed_dropped_total", "Stored delegations dropped before use: not confirmed by the server, or expired by the synchronised clock.", func(s dhcp6pd.Stats) uint64 { return s.UnconfirmedDropped }),
	counter(ofDHCP6PD, "gizmo_dhcp6pd_malformed_time_options_total", "NTP and SNTP server options (RFC 5908, RFC 4075) ignored because they did not parse.", func(s dhcp6pd.Stats) uint64 { return s.MalformedTimeOptions }),

	counter(ofRA, "gizmo_ra_rs_received_total", "Router Solicitations received on the LAN.", func(s ra.Stats) uint64 { return s.RSReceived }),
	counterBy(ofRA, "gizmo_ra_rs_invalid_total", "Router Solicitations dropped (RFC 4861 §6.1.1), by reason.", "reason", func(s ra.Stats) map[string]uint64 { return s.RSInvalid }),
	counter(ofRA, "gizmo_ra_rs_queue_full_total", "Valid Router Solicitations dropped because the sender could not keep up.", func(s ra.Stats) uint64 { return s.RSQueueFull }),
	counter(ofRA, "gizmo_ra_unsolicited_total", "Unsolicited multicast Router Advertisements sent.", func(s ra.Stats) uint64 { return s.RAUnsolicited }),
	counter(ofRA, "gizmo_ra_solicited_multicast_total", "Solicited Router Advertisements sent to all nodes.", func(s ra.Stats) uint64 { return s.RASolicitedMulticast }),
	counter(ofRA, "gizmo_ra_solicited_unicast_total", "Solicited Router Advertisements sent to the soliciting host.", func(s ra.Stats) uint64 { return s.RASolicitedUnicast }),
	counter(ofRA, "gizmo_ra_final_total", "Final Router Advertisements (router lifetime 0) sent at shutdown.", func(s ra.Stats) uint64 { return s.RAFinal }),
	counter(ofRA, "gizmo_ra_send_errors_total", "Router Advertisements that could not be sent.", func(s ra.Stats) uint64 { return s.SendErrors }),
	counter(ofRA, "gizmo_ra_plan_errors_total", "Plans that could not be encoded; the previous one stayed.", func(s ra.Stats) uint64 { return s.PlanErrors }),

	gauge(ofNDProxy, "gizmo_ndproxy_proxied_addresses", "LAN host addresses proxied now (RFC 7278 §4.3).", func(s ndproxy.Stats) float64 { return float64(s.Proxying) }),
	counter(ofNDProxy, "gizmo_ndproxy_learned_total", "Addresses that became known.", func(s ndproxy.Stats) uint64 { return s.Learned }),
	counter(ofNDProxy, "gizmo_ndproxy_dad_seen_total", "DAD probes heard on the LAN.", func(s ndproxy.Stats) uint64 { return s.DADSeen }),
	counter(ofNDProxy, "gizmo_ndproxy_added_total", "Proxy entries installed.", func(s ndproxy.Stats) uint64 { return s.Added }),
	counter(ofNDProxy, "gizmo_ndproxy_removed_total", "Proxy entries withdrawn.", func(s ndproxy.Stats) uint64 { return s.Removed }),
	counter(ofNDProxy, "gizmo_ndproxy_failed_total", "Addresses withdrawn because the LAN host stopped answering.", func(s ndproxy.Stats) uint64 { return s.Failed }),
	counter(ofNDProxy, "gizmo_ndproxy_expired_total", "Addresses withdrawn without evidence for their maximum age.", func(s ndproxy.Stats) uint64 { return s.Expired }),
	counter(ofNDProxy, "gizmo_ndproxy_conflicts_total", "Addresses not proxied because a WAN-side neighbour holds them.", func(s ndproxy.Stats) uint64 { return s.Conflicts }),
	counter(ofNDProxy, "gizmo_ndproxy_lookups_total", "LAN probes for addresses the upstream solicited (RFC 4389 §4.1.3.1).", func(s ndproxy.Stats) uint64 { return s.Lookups }),
	counter(ofNDProxy, "gizmo_ndproxy_ns_answered_total", "Upstream Neighbor Solicitations for a proxied address.", func(s ndproxy.Stats) uint64 { return s.NSAnswered }),
	counter(ofNDProxy, "gizmo_ndproxy_ns_ignored_total", "Upstream Neighbor Solicitations for other addresses in the shared /64.", func(s ndproxy.Stats) uint64 { return s.NSIgnored }),
	counter(ofNDProxy, "gizmo_ndproxy_dad_defended_total", "Upstream DAD probes for a proxied address.", func(s ndproxy.Stats) uint64 { return s.DADDefended }),
	counter(ofNDProxy, "gizmo_ndproxy_malformed_total", "ND packets that failed the RFC 4861 §7.1 checks.", func(s ndproxy.Stats) uint64 { return s.Malformed }),
	counter(ofNDProxy, "gizmo_ndproxy_dropped_total", "Evidence dropped for lack of room or time.", func(s ndproxy.Stats) uint64 { return s.Dropped }),
	counter(ofNDProxy, "gizmo_ndproxy_errors_total", "Failed kernel operations.", func(s ndproxy.Stats) uint64 { return s.Errors }),

	counter(ofNSResponder, "gizmo_nsresponder_received_total", "Neighbor Solicitations for the on-link NAT64 prefix received.", func(s nsresponder.Stats) uint64 { return s.Received }),
	counter(ofNSResponder, "gizmo_nsresponder_answered_total", "Neighbor Advertisements sent for addresses of the on-link NAT64 prefix (RFC 4861 §7.2.4).", func(s nsresponder.Stats) uint64 { return s.Answered }),
	counter(ofNSResponder, "gizmo_nsresponder_dad_answered_total", "DAD probes for addresses of the on-link NAT64 prefix answered (RFC 4862 §5.4.3).", func(s nsresponder.Stats) uint64 { return s.DADAnswered }),
	counterBy(ofNSResponder, "gizmo_nsresponder_refused_total", "Neighbor Solicitations not answered (RFC 4861 §7.1.1 checks, rate limits), by reason.", "reason", func(s nsresponder.Stats) map[string]uint64 { return s.Refused }),
	gauge(ofNSResponder, "gizmo_nsresponder_sources", "Sources the rate limit of the NS responder tracks now.", func(s nsresponder.Stats) float64 { return float64(s.Sources) }),
	counter(ofNSResponder, "gizmo_nsresponder_send_errors_total", "Neighbor Advertisements that could not be sent.", func(s nsresponder.Stats) uint64 { return s.SendErrors }),
	counter(ofNSResponder, "gizmo_nsresponder_plan_errors_total", "Plans of the NS responder refused; the previous one stayed.", func(s nsresponder.Stats) uint64 { return s.PlanErrors }),

	counter(ofDHCP6Info, "gizmo_dhcp6info_received_total", "Stateless DHCPv6 messages received.", func(s dhcp6info.Stats) uint64 { return s.Received }),
	counter(ofDHCP6Info, "gizmo_dhcp6info_replies_total", "Replies to Information-requests.", func(s dhcp6info.Stats) uint64 { return s.Replies }),
	counter(ofDHCP6Info, "gizmo_dhcp6info_advertises_total", "NoAddrsAvail Advertises to Solicits.", func(s dhcp6info.Stats) uint64 { return s.Advertises }),
	counterBy(ofDHCP6Info, "gizmo_dhcp6info_dropped_total", "Messages left unanswered, by reason.", "reason", func(s dhcp6info.Stats) map[string]uint64 { return s.Dropped }),
	counter(ofDHCP6Info, "gizmo_dhcp6info_send_errors_total", "Replies that could not be sent.", func(s dhcp6info.Stats) uint64 { return s.SendErrors }),

	counter(ofLANIf, "gizmo_lanif_applied_total", "LAN address plans applied.", func(s lanif.Stats) uint64 { return uint64(max(s.Applied, 0)) }),
	counter(ofLANIf, "gizmo_lanif_errors_total", "Failed LAN address changes.", func(s lanif.Stats) uint64 { return uint64(max(s.Errors, 0)) }),

	counter(ofDNS64, "gizmo_dns64_queries_total", "DNS queries handled (after the fair queue).", func(s dns64.Stats) uint64 { return s.Queries }),
	counterBy(ofDNS64, "gizmo_dns64_fairness_drops_total", "DNS queries and TCP connections dropped to keep each client to its fair share, by reason.", "reason", func(s dns64.Stats) map[string]uint64 {
		f := s.Fairness
		return map[string]uint64{"longest_queue": f.LongestQueue, "upstream_share": f.UpstreamShare, "tcp_refused": f.TCPRefused}
	}),
	counter(ofDNS64, "gizmo_dns64_steered_total", "Times a flooding source was steered to a socket of its own.", func(s dns64.Stats) uint64 { return s.Fairness.Steered }),
	counter(ofDNS64, "gizmo_dns64_overloaded_total", "DNS queries dropped because too many waited for upstreams.", func(s dns64.Stats) uint64 { return s.Overloaded }),
	counter(ofDNS64, "gizmo_dns64_malformed_total", "FORMERR, NOTIMP and BADVERS answers.", func(s dns64.Stats) uint64 { return s.Malformed }),
	counter(ofDNS64, "gizmo_dns64_refused_total", "Refused queries (unsupported classes, zone transfers).", func(s dns64.Stats) uint64 { return s.Refused }),
	counter(ofDNS64, "gizmo_dns64_servfail_total", "SERVFAIL answers.", func(s dns64.Stats) uint64 { return s.ServFail }),
	counter(ofDNS64, "gizmo_dns64_nxdomain_total", "NXDOMAIN answers.", func(s dns64.Stats) uint64 { return s.NXDomain }),
	counter(ofDNS64, "gizmo_dns64_synthesized_total", "AAAA answers synthesized (RFC 6147).", func(s dns64.Stats) uint64 { return s.Synthesized }),
	counter(ofDNS64, "gizmo_dns64_excluded_total", "AAAA records dropped as excluded (RFC 6147 §5.1.4).", func(s dns64.Stats) uint64 { return s.Excluded }),
	counter(ofDNS64, "gizmo_dns64_local_total", "Queries answered from local data.", func(s dns64.Stats) uint64 { return s.Local }),
	counter(ofDNS64, "gizmo_dns64_truncated_total", "UDP answers sent with TC.", func(s dns64.Stats) uint64 { return s.Truncated }),
	counter(ofDNS64, "gizmo_dns64_cache_hits_total", "Answers from the cache.", func(s dns64.Stats) uint64 { return s.CacheHits }),
	counter(ofDNS64, "gizmo_dns64_cache_misses_total", "Questions the cache could not answer.", func(s dns64.Stats) uint64 { return s.CacheMisses }),
	gauge(ofDNS64, "gizmo_dns64_cache_entries", "Entries in the cache.", func(s dns64.Stats) float64 { return float64(s.CacheEntries) }),
	gauge(ofDNS64, "gizmo_dns64_cache_bytes", "Bytes the cache holds.", func(s dns64.Stats) float64 { return float64(s.CacheBytes) }),
	gauge(ofDNS64, "gizmo_dns64_cache_max_bytes", "The cache's size limit in bytes.", func(s dns64.Stats) float64 { return float64(s.CacheMaxBytes) }),
	gauge(ofDNS64, "gizmo_dns64_memo_entries", "Packed answers remembered for repeated questions.", func(s dns64.Stats) float64 { return float64(s.MemoEntries) }),

	counter(ofDHCP4, "gizmo_dhcp4_offers_total", "DHCPOFFERs sent.", func(s dhcp4.Stats) uint64 { return s.Offers }),
	counter(ofDHCP4, "gizmo_dhcp4_acks_total", "DHCPACKs sent.", func(s dhcp4.Stats) uint64 { return s.Acks }),
	counter(ofDHCP4, "gizmo_dhcp4_naks_total", "DHCPNAKs sent.", func(s dhcp4.Stats) uint64 { return s.Naks }),
	counter(ofDHCP4, "gizmo_dhcp4_declines_total", "DHCPDECLINEs received.", func(s dhcp4.Stats) uint64 { return s.Declines }),
	counter(ofDHCP4, "gizmo_dhcp4_releases_total", "DHCPRELEASEs received.", func(s dhcp4.Stats) uint64 { return s.Releases }),
	counter(ofDHCP4, "gizmo_dhcp4_informs_total", "DHCPINFORMs answered.", func(s dhcp4.Stats) uint64 { return s.Informs }),
	counter(ofDHCP4, "gizmo_dhcp4_pool_exhausted_total", "DHCPDISCOVERs without an offer because no address was free.", func(s dhcp4.Stats) uint64 { return s.PoolExhausted }),
	counter(ofDHCP4, "gizmo_dhcp4_malformed_total", "Packets that did not parse or were not an Ethernet client's request.", func(s dhcp4.Stats) uint64 { return s.Malformed }),
	counter(ofDHCP4, "gizmo_dhcp4_ignored_total", "Well-formed packets that needed no answer.", func(s dhcp4.Stats) uint64 { return s.Ignored }),
	counter(ofDHCP4, "gizmo_dhcp4_v6only_sent_total", "Replies that carried option 108 (RFC 8925).", func(s dhcp4.Stats) uint64 { return s.V6OnlySent }),
	counter(ofDHCP4, "gizmo_dhcp4_persist_errors_total", "Failed writes of the lease file.", func(s dhcp4.Stats) uint64 { return s.PersistErrors }),
	counter(ofDHCP4, "gizmo_dhcp4_clock_steps_total", "Steps of the wall clock that moved this run's lease expiries (RFC 2131 §3.3: leases keep their remaining time).", func(s dhcp4.Stats) uint64 { return s.ClockSteps }),
	gauge(ofDHCP4, "gizmo_dhcp4_leases", "Current DHCPv4 leases.", func(s dhcp4.Stats) float64 { return float64(s.Leases) }),

	// The NAT64's sessions, translations and drops are in the dashboard's
	// terms already (web: gizmo_nat64_sessions, gizmo_nat64_*_packets_total).
	gauge(ofNAT64, "gizmo_nat64_enabled", "1 while the NAT64 translates.", func(s nat64.Stats) float64 { return boolGauge(s.Enabled) }),
	gauge(ofNAT64, "gizmo_nat64_bindings", "Address and port bindings at the last reaper pass.", func(s nat64.Stats) float64 { return float64(s.Bindings) }),

	// The B4's softwire (RFC 6333): packets each way and what it dropped.
	gauge(ofDSLite, "gizmo_dslite_running", "1 while the softwire to the AFTR runs.", func(s dslite.Stats) float64 { return boolGauge(s.Running) }),
	counter(ofDSLite, "gizmo_dslite_aftr_lookups_total", "Lookups of the AFTR's name (RFC 6334 §4).", func(s dslite.Stats) uint64 { return s.Lookups }),
	counter(ofDSLite, "gizmo_dslite_aftr_lookup_failures_total", "Lookups of the AFTR's name that failed.", func(s dslite.Stats) uint64 { return s.LookupFailures }),
	counterBy(ofDSLite, "gizmo_dslite_packets_total", "The softwire's datapath counters: packets and bytes each way, MSS clamps, drops by reason.", "counter",
		func(s dslite.Stats) map[string]uint64 { return s.Counters }),

	gauge(ofCLAT, "gizmo_clat_running", "1 while the CLAT translates the legacy hosts' IPv4 (RFC 6877).", func(s clat.Stats) float64 { return boolGauge(s.Running) }),
	counterBy(ofCLAT, "gizmo_clat_packets_total", "Packets the CLAT program handled, by outcome (translated_out, translated_in, the drops).", "outcome", func(s clat.Stats) map[string]uint64 { return s.Counters }),
	counter(ofCLAT, "gizmo_clat_plan_errors_total", "CLAT plans that could not be applied.", func(s clat.Stats) uint64 { return uint64(max(s.Errors, 0)) }),

	counterBy(ofDiscovery, "gizmo_clat_discovery_rounds_total", "RFC 7050 discovery rounds, by outcome: a NAT64 prefix found, none (no DNS64), failed (no answer).", "outcome", func(s clat.DiscoveryStats) map[string]uint64 {
		return map[string]uint64{"found": s.Found, "none": s.None, "failed": s.Failed}
	}),

	counter(ofFirewall, "gizmo_firewall_applied_total", "Rulesets swapped in.", func(s firewall.Stats) uint64 { return s.Applied }),
	counter(ofFirewall, "gizmo_firewall_failed_total", "Plans refused or failed to apply.", func(s firewall.Stats) uint64 { return s.Failed }),
	gauge(ofFirewall, "gizmo_firewall_rules", "Rules in the running ruleset.", func(s firewall.Stats) float64 { return float64(s.Rules) }),
	gauge(ofFirewall, "gizmo_firewall_set_elements", "Set elements in the running ruleset.", func(s firewall.Stats) float64 { return float64(s.Elements) }),
	counter(ofFirewall, "gizmo_firewall_flows_ended_total", "Established flows ended because the inbound rule or exposed port that let them in was removed.", func(s firewall.Stats) uint64 { return s.FlowsEnded }),
	counter(ofFirewall, "gizmo_firewall_flow_end_errors_total", "Failed attempts to end the flows of removed inbound rules.", func(s firewall.Stats) uint64 { return s.FlowEndErrors }),

	gauge(ofFastpath, "gizmo_fastpath_active", "1 while the fast path is attached with LAN prefixes.", func(s fastpath.Stats) float64 { return boolGauge(s.Active) }),
	gauge(ofFastpath, "gizmo_fastpath_flows", "Flows in the table at the last reap.", func(s fastpath.Stats) float64 { return float64(s.Flows) }),
	gauge(ofFastpath, "gizmo_fastpath_offloaded_flows", "Flows established both ways at the last reap.", func(s fastpath.Stats) float64 { return float64(s.Offloaded) }),
	counter(ofFastpath, "gizmo_fastpath_packets_total", "Packets forwarded on the fast path.", func(s fastpath.Stats) uint64 { return s.Packets }),
	counter(ofFastpath, "gizmo_fastpath_bytes_total", "Bytes forwarded on the fast path.", func(s fastpath.Stats) uint64 { return s.Bytes }),
	counter(ofFastpath, "gizmo_fastpath_learned_total", "Flow directions learned from the firewall's accepts.", func(s fastpath.Stats) uint64 { return s.Learned }),
	counter(ofFastpath, "gizmo_fastpath_flow_table_full_total", "Flows not learned because the table was full.", func(s fastpath.Stats) uint64 { return s.FlowFull }),
	counter(ofFastpath, "gizmo_fastpath_host_table_full_total", "Packets not counted per host because the host table was full.", func(s fastpath.Stats) uint64 { return s.HostFull }),
	counterBy(ofFastpath, "gizmo_fastpath_to_stack_total", "Packets handed to the kernel, by reason.", "reason", func(s fastpath.Stats) map[string]uint64 { return s.ToStack }),

	counter(ofAccounting, "gizmo_accounting_errors_total", "Failed installs of the accounting table.", func(s accounting.Stats) uint64 { return uint64(max(s.Errors, 0)) }),

	// The ND proxy's claims and their proof (RFC 4389 §4.1: which side holds
	// an address).
	gauge(ofNDProxy, "gizmo_ndproxy_unproven_addresses", "Addresses proxied on a claim alone, not yet proven by the host answering the gizmo.", func(s ndproxy.Stats) float64 { return float64(s.Unproven) }),
	counter(ofNDProxy, "gizmo_ndproxy_proven_total", "Addresses whose host answered the gizmo's Neighbor Solicitation.", func(s ndproxy.Stats) uint64 { return s.Proven }),
	counter(ofNDProxy, "gizmo_ndproxy_unproven_expired_total", "Claimed addresses withdrawn without proof.", func(s ndproxy.Stats) uint64 { return s.UnprovenExpired }),
	counter(ofNDProxy, "gizmo_ndproxy_unproven_evicted_total", "Claimed addresses forgotten to make room in a full table.", func(s ndproxy.Stats) uint64 { return s.UnprovenEvicted }),
	counter(ofNDProxy, "gizmo_ndproxy_resyncs_total", "Re-subscriptions to the kernel's neighbour changes after their queue overflowed.", func(s ndproxy.Stats) uint64 { return s.Resyncs }),

	// The DHCPv4 server's checks of the LAN's frames (services/dhcp4/admit.go).
	counter(ofDHCP4, "gizmo_dhcp4_source_mismatch_total", "Unrelayed messages whose chaddr is not their frame's Ethernet source (dropped).", func(s dhcp4.Stats) uint64 { return s.SourceMismatch }),
	counter(ofDHCP4, "gizmo_dhcp4_unverified_total", "Unrelayed messages on a socket that shows no Ethernet source (dropped).", func(s dhcp4.Stats) uint64 { return s.Unverified }),
	counterBy(ofDHCP4, "gizmo_dhcp4_rate_limited_total", "Messages dropped by a rate limit: per client, or per port for clients without a lease.", "reason", func(s dhcp4.Stats) map[string]uint64 {
		return map[string]uint64{dhcp4.LimitClient: s.RateLimitedClient, dhcp4.LimitPort: s.RateLimitedPort}
	}),
	counter(ofDHCP4, "gizmo_dhcp4_socket_drops_total", "Frames the kernel dropped because the server's sockets were full.", func(s dhcp4.Stats) uint64 { return s.SocketDrops }),

	counter(ofNeighbors, "gizmo_neighbors_frames_total", "ND and ARP frames read on the LAN.", func(s neighbors.Stats) uint64 { return s.Frames }),
	counter(ofNeighbors, "gizmo_neighbors_frame_sightings_total", "Frames that showed which MAC uses which address.", func(s neighbors.Stats) uint64 { return s.FrameSightings }),
	counterBy(ofNeighbors, "gizmo_neighbors_ignored_frames_total", "Frames that showed none, by reason (lladdr_mismatch: an option or ARP sender naming another MAC than the frame's source).", "reason", func(s neighbors.Stats) map[string]uint64 { return s.Ignored }),
	counter(ofNeighbors, "gizmo_neighbors_table_sightings_total", "Kernel neighbour entries reported (they only refresh what frames showed).", func(s neighbors.Stats) uint64 { return s.NeighbourSightings }),
	counter(ofNeighbors, "gizmo_neighbors_probes_total", "Neighbour entries the kernel was asked to confirm because no frame had.", func(s neighbors.Stats) uint64 { return s.Probes }),
	counter(ofNeighbors, "gizmo_neighbors_untracked_total", "Neighbour entries neither tracked nor probed because the bookkeeping was full.", func(s neighbors.Stats) uint64 { return s.Untracked }),
	counter(ofNeighbors, "gizmo_neighbors_errors_total", "Failed probes and socket errors.", func(s neighbors.Stats) uint64 { return s.Errors }),
	counter(ofNeighbors, "gizmo_neighbors_socket_drops_total", "Frames the kernel dropped because the watch's sockets were full.", func(s neighbors.Stats) uint64 { return s.SocketDrops }),

	// The daemon's host table (gizmo/derive): the dashboard's "host table
	// full" and what the bounds did. gizmo_hosts (its size) is the web's.
	gauge(ofHostTable, "gizmo_hosts_capacity", "Hosts the table holds at most.", func(s HostTable) float64 { return float64(s.Capacity) }),
	gauge(ofHostTable, "gizmo_hosts_records", "Hosts kept across a reboot (named or configured).", func(s HostTable) float64 { return float64(s.Records) }),
	gauge(ofHostTable, "gizmo_hosts_name_taken", "Hosts that asked for a name another host holds, and have none.", func(s HostTable) float64 { return float64(s.NameTaken) }),
	counter(ofHostTable, "gizmo_hosts_evicted_total", "Hosts dropped from the table for a newcomer of higher standing.", func(s HostTable) uint64 { return s.Evicted }),
	counter(ofHostTable, "gizmo_hosts_refused_total", "Newcomers refused because the table was full of hosts of equal or higher standing.", func(s HostTable) uint64 { return s.Refused }),
	counter(ofHostTable, "gizmo_hosts_addresses_evicted_total", "Addresses a host lost to its newer ones when it had too many.", func(s HostTable) uint64 { return s.AddrsEvicted }),
	counter(ofHostTable, "gizmo_hosts_unproven_sightings_total", "Neighbour entries that would have attached a new address to a MAC without a frame from it.", func(s HostTable) uint64 { return s.Unproven }),
	counter(ofHostTable, "gizmo_hosts_records_dropped_total", "Remembered hosts forgotten to keep the persisted records bounded.", func(s HostTable) uint64 { return s.RecordsDropped }),

	counterBy2(ofUPnP, "gizmo_upnp_requests_total", "UPnP control requests, by action and result (ok, or the UPnP error code answered).", "action", "result", func(s UPnP) map[[2]string]uint64 {
		out := make(map[[2]string]uint64, len(s.Requests))
		for k, n := range s.Requests {
			out[[2]string{k.Action, k.Result}] = n
		}
		return out
	}),
	counterBy(ofUPnP, "gizmo_upnp_refused_total", "UPnP requests refused, by reason (the pinhole rules' and the service's bounds).", "reason", func(s UPnP) map[string]uint64 { return s.Refused }),
	gauge(ofUPnP, "gizmo_upnp_pinholes", "Pinholes apps opened that are in force.", func(s UPnP) float64 { return float64(s.Pinholes) }),
	counter(ofUPnP, "gizmo_upnp_ssdp_searches_total", "SSDP M-SEARCHes answered.", func(s UPnP) uint64 { return s.Searches }),
	counter(ofUPnP, "gizmo_upnp_ssdp_replies_total", "SSDP answers sent.", func(s UPnP) uint64 { return s.Replies }),
	counter(ofUPnP, "gizmo_upnp_ssdp_notifies_total", "SSDP announcements sent.", func(s UPnP) uint64 { return s.Notifies }),
	counterBy(ofUPnP, "gizmo_upnp_ssdp_dropped_total", "SSDP datagrams left unanswered, by reason.", "reason", func(s UPnP) map[string]uint64 { return s.SSDPDropped }),
	counter(ofUPnP, "gizmo_upnp_connections_limited_total", "UPnP HTTP connections that waited for a free slot.", func(s UPnP) uint64 { return s.ConnsLimited }),
	counter(ofUPnP, "gizmo_upnp_connection_timeouts_total", "UPnP HTTP connections a header, read or idle timeout ended.", func(s UPnP) uint64 { return s.ConnTimeouts }),
	counter(ofUPnP, "gizmo_upnp_clients_evicted_total", "Clients the UPnP rate limiters forgot to make room.", func(s UPnP) uint64 { return s.ClientsEvicted }),
	counter(ofUPnP, "gizmo_upnp_send_errors_total", "SSDP datagrams that could not be sent.", func(s UPnP) uint64 { return s.SendErrors }),

	gauge(ofTimesync, "gizmo_timesync_synced", "1 once the clock was synchronised with NTP in this run.", func(s timesync.Stats) float64 { return boolGauge(s.Synced) }),
	gauge(ofTimesync, "gizmo_timesync_last_sync_timestamp_seconds", "Unix time of the last accepted NTP sample (0: none yet).", func(s timesync.Stats) float64 {
		if s.LastSync.IsZero() {
			return 0
		}
		return float64(s.LastSync.UnixNano()) / 1e9
	}),
	gauge(ofTimesync, "gizmo_timesync_offset_seconds", "Clock offset of the last accepted NTP sample.", func(s timesync.Stats) float64 { return s.Offset.Seconds() }),
	gauge(ofTimesync, "gizmo_timesync_stratum", "Stratum the gizmo serves to the LAN (16: unsynchronised).", func(s timesync.Stats) float64 { return float64(s.Stratum) }),
	gauge(ofTimesync, "gizmo_timesync_poll_seconds", "Interval to the next NTP poll.", func(s timesync.Stats) float64 { return s.Poll.Seconds() }),
	gauge(ofTimesync, "gizmo_timesync_restored_seconds", "How far the clock was stepped forward to the saved time at start.", func(s timesync.Stats) float64 { return s.Restored.Seconds() }),
	counter(ofTimesync, "gizmo_timesync_steps_total", "Clock steps.", func(s timesync.Stats) uint64 { return s.Steps }),
	counter(ofTimesync, "gizmo_timesync_slews_total", "Clock slews.", func(s timesync.Stats) uint64 { return s.Slews }),
	counter(ofTimesync, "gizmo_timesync_ignored_total", "Accepted samples within the noise, left alone.", func(s timesync.Stats) uint64 { return s.Ignored }),
	counter(ofTimesync, "gizmo_timesync_queries_total", "NTP queries sent.", func(s timesync.Stats) uint64 { return s.Queries }),
	counter(ofTimesync, "gizmo_timesync_query_errors_total", "NTP queries without an answer.", func(s timesync.Stats) uint64 { return s.QueryErrors }),
	counterBy(ofTimesync, "gizmo_timesync_rejected_total", "NTP answers rejected (RFC 5905 §8), by reason.", "reason", func(s timesync.Stats) map[string]uint64 { return s.Rejected }),
	counter(ofTimesync, "gizmo_timesync_skipped_total", "Candidate NTP servers beyond the per-round bounds.", func(s timesync.Stats) uint64 { return s.Skipped }),
	counter(ofTimesync, "gizmo_timesync_resolve_errors_total", "NTP server names that did not resolve.", func(s timesync.Stats) uint64 { return s.ResolveErrors }),
	counter(ofTimesync, "gizmo_timesync_clock_errors_total", "Failed attempts to set the clock.", func(s timesync.Stats) uint64 { return s.ClockErrors }),
	counter(ofTimesync, "gizmo_timesync_save_errors_total", "Failed writes of the saved time.", func(s timesync.Stats) uint64 { return s.SaveErrors }),
	gauge(ofTimesync, "gizmo_timesync_server_listening", "Addresses the NTP server answers on.", func(s timesync.Stats) float64 { return float64(len(s.Server.Listening)) }),
	counter(ofTimesync, "gizmo_timesync_server_requests_total", "NTP requests received from the LAN.", func(s timesync.Stats) uint64 { return s.Server.Requests }),
	counter(ofTimesync, "gizmo_timesync_server_replies_total", "NTP replies sent to the LAN.", func(s timesync.Stats) uint64 { return s.Server.Replies }),
	counterBy(ofTimesync, "gizmo_timesync_server_dropped_total", "NTP requests left unanswered, by reason.", "reason", func(s timesync.Stats) map[string]uint64 { return s.Server.Dropped }),
	counter(ofTimesync, "gizmo_timesync_server_listen_errors_total", "Failed binds of the NTP server's sockets.", func(s timesync.Stats) uint64 { return s.Server.ListenErrors }),

	// The uplink's 802.1Q tagger's (services/vlan), present while the
	// uplink is on a VLAN. The drops are frames a VLAN device would never
	// have seen: untagged, or of another VLAN on the same wire.
	counter(ofVLAN, "gizmo_wan_vlan_received_total", "Frames of the WAN's VLAN received and untagged.", func(s vlan.Stats) uint64 { return s.Received }),
	counter(ofVLAN, "gizmo_wan_vlan_sent_total", "Frames tagged with the WAN's VLAN on their way out.", func(s vlan.Stats) uint64 { return s.Sent }),
	counterBy(ofVLAN, "gizmo_wan_vlan_dropped_total", "Frames the WAN's VLAN dropped, by reason.", "reason", func(s vlan.Stats) map[string]uint64 {
		return map[string]uint64{"untagged": s.DroppedUntagged, "other-vlan": s.DroppedOtherVLAN, "already-tagged": s.DroppedTagged, "helper-failed": s.Failed}
	}),
}
