package plan

import (
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/timesync"
)

// TimeSync is the time service's plan: where the gizmo gets its time and
// where it serves it to the LAN.
//   - Servers: the ISP's NTP servers by address, the DHCPv6 Reply's
//     (RFC 5908 §4, RFC 4075) first, then the DHCPv4 lease's option 42
//     (RFC 2132 §8.3) while the lease holds, without duplicates. The ISP's
//     own servers are the closest and the ones it expects its customers to
//     use.
//   - Names: the DHCPv6 Reply's NTP servers by FQDN (RFC 5908 §4.3).
//   - Neither: the public pool by name (timesync.DefaultPool).
//   - Serve: the gizmo's ULA router address and its legacy IPv4 address,
//     the ones the LAN hosts are told of (TimeServed); never a WAN address.
func TimeSync(st *state.State, now time.Time) timesync.Plan {
	n := NetworkOf(st, now)
	var p timesync.Plan
	add := func(as []netip.Addr) {
		for _, a := range as {
			if a = a.Unmap(); a.IsValid() && !slices.Contains(p.Servers, a) {
				p.Servers = append(p.Servers, a)
			}
		}
	}
	add(st.WAN.DHCPv6NTP)
	if n.IPv4 != nil {
		add(n.IPv4.NTP)
	}
	p.Names = slices.Clone(st.WAN.DHCPv6NTPNames)
	if len(p.Servers) == 0 && len(p.Names) == 0 {
		p.Names = []string{timesync.DefaultPool}
	}
	p.Serve = TimeServed(n)
	return p
}

// TimeServed are the addresses the gizmo answers NTP clients on: its ULA
// router address, stable across renumbering, and its legacy IPv4 address
// for hosts that only speak IPv4. DHCPv6 (option 56) and DHCPv4 (option
// 42) name these, so a host that asks gets the gizmo's time.
func TimeServed(n Network) []netip.Addr {
	var out []netip.Addr
	if n.RouterULA.IsValid() {
		out = append(out, n.RouterULA)
	}
	if a := n.Legacy4.Addr(); n.Legacy4.IsValid() && a.Is4() {
		out = append(out, a)
	}
	return out
}
