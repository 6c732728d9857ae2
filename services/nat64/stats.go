package nat64

import (
	"fmt"
	"net/netip"
	"sort"

	"codeberg.org/monostack/gizmo/internal/bpfobj"
)

// CounterNames are the global outcome counters in the order of enum
// counter in bpf/nat64.h; Stats.Counters is keyed by them.
var CounterNames = []string{
	"translated_6to4",
	"translated_4to6",
	"hairpinned",
	"no_session",
	"filtered",
	"table_full",
	"ports_exhausted",
	"host_limit_refused",
	"to_stack",
	"malformed",
	"source_not_lan",
	"destination_denied",
	"unsupported",
	"ttl_expired",
	"too_big",
	"fragment_without_state",
	"icmp_error_translated",
	"no_route",
	"needs_fragmentation",
	"host_table_full",
	"mss_clamped",
	"fragmented_4to6",
	"prefix_limit_refused",
	"inbound_session_refused",
	"icmp_error_suppressed",
	"icmp_error_not_allowed",
	"fragment_state_expired",
	"mac_limit_refused",
	"filter_table_full",
	"lan_legacy_refused",
}

// Stats is a snapshot for the dashboard and /metrics.
type Stats struct {
	Enabled bool
	// ToInternet: the WAN pool translates to the internet. ToLAN: the LAN
	// pool reaches the LAN's own IPv4 devices. Either may run alone.
	ToInternet, ToLAN bool
	Counters          map[string]uint64
	// Sessions and Bindings are the table sizes at the last reaper pass.
	Sessions, Bindings int
	Hosts              []HostStats
}

// HostStats are one LAN address's counters. The daemon rolls them up to
// the host's MAC address. A host's entry disappears after it has been
// idle for a while; Config.OnHostRetired gets its final values first.
type HostStats struct {
	Addr                 netip.Addr
	PacketsOut, BytesOut uint64 // IPv6 -> IPv4, through the WAN pool
	PacketsIn, BytesIn   uint64 // IPv4 -> IPv6, through the WAN pool
	// LANPacketsOut and the others count what went through the LAN pool:
	// to and from the LAN's own IPv4 devices.
	LANPacketsOut, LANBytesOut uint64
	LANPacketsIn, LANBytesIn   uint64
	// LiveSessions are the sessions the address opened that count
	// against its share (bpf/quota.h; an address sharing its hashed slot
	// would add its own).
	LiveSessions uint64
}

func (d *datapath) counters() (map[string]uint64, error) {
	out, err := bpfobj.Counters(d.objs.Nat64Counters, CounterNames)
	if err != nil {
		return nil, fmt.Errorf("nat64: %w", err)
	}
	return out, nil
}

func (d *datapath) hosts() ([]HostStats, error) {
	var k nat64Lpm6Key
	var per []nat64HostStats
	byAddr := map[[16]byte]*HostStats{}
	it := d.objs.Nat64Hstats.Iterate()
	for it.Next(&k, &per) {
		h := &HostStats{Addr: netip.AddrFrom16(k.Addr)}
		for _, p := range per {
			h.PacketsOut += p.PktsOut
			h.BytesOut += p.BytesOut
			h.PacketsIn += p.PktsIn
			h.BytesIn += p.BytesIn
			h.LANPacketsOut += p.LanPktsOut
			h.LANBytesOut += p.LanBytesOut
			h.LANPacketsIn += p.LanPktsIn
			h.LANBytesIn += p.LanBytesIn
		}
		byAddr[k.Addr] = h
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("nat64: host stats: %w", err)
	}
	for _, h := range byAddr {
		h.LiveSessions = d.quota.charged(d.seed, h.Addr.As16())
	}
	out := make([]HostStats, 0, len(byAddr))
	for _, h := range byAddr {
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out, nil
}

// retireHosts removes the entries of hosts without live sessions whose
// counters did not move since the previous call, and returns their final
// values. idle carries the previous totals between calls.
func (d *datapath) retireHosts(idle map[netip.Addr]uint64) ([]HostStats, error) {
	hs, err := d.hosts()
	if err != nil {
		return nil, err
	}
	var gone []HostStats
	seen := map[netip.Addr]bool{}
	for _, h := range hs {
		seen[h.Addr] = true
		total := h.PacketsIn + h.PacketsOut + h.LANPacketsIn + h.LANPacketsOut
		prev, ok := idle[h.Addr]
		idle[h.Addr] = total
		if h.LiveSessions != 0 || !ok || prev != total {
			continue
		}
		k := nat64Lpm6Key{Prefixlen: 128, Addr: h.Addr.As16()}
		_ = d.objs.Nat64Hstats.Delete(&k)
		delete(idle, h.Addr)
		gone = append(gone, h)
	}
	for a := range idle {
		if !seen[a] {
			delete(idle, a)
		}
	}
	return gone, nil
}
