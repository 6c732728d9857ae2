package plan

import (
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dhcp6info"
)

// dhcp6InfoRefresh is the Information Refresh Time sent to stateless
// DHCPv6 clients (RFC 8415 §21.23). The DNS addresses live in the stable ULA,
// so they rarely change; an hour bounds how long a change takes to reach
// hosts that only ask DHCPv6, well under IRT_DEFAULT's day.
const dhcp6InfoRefresh = time.Hour

// DHCP6Info computes the stateless DHCPv6 server's plan: the DNS service's
// DHCPv6 listening address, the home.arpa search list and, when the time
// service serves there (timeServed, TimeServed), the gizmo's ULA router
// address as NTP server (RFC 5908 §4). In the "existing network" mode the
// server stays silent: that LAN has its own DHCPv6 service, if any, and two
// servers answering differently would only confuse hosts.
func DHCP6Info(st *state.State, existingNetwork bool, timeServed []netip.Addr, now time.Time) dhcp6info.Plan {
	if existingNetwork {
		return dhcp6info.Plan{}
	}
	p := dhcp6info.Plan{
		Enabled:                true,
		DomainSearch:           []string{LocalDomain},
		InformationRefreshTime: dhcp6InfoRefresh,
	}
	n := NetworkOf(st, now)
	if a := n.DNS.DHCPv6; a.IsValid() {
		p.DNS = []netip.Addr{a}
	}
	// The ULA address, stable across renumbering, rather than one in the
	// delegation: a host keeps its NTP server until the next Information
	// Refresh Time.
	if a := n.RouterULA; a.IsValid() && slices.Contains(timeServed, a) {
		p.NTP = []netip.Addr{a}
	}
	return p
}
