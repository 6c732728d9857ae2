package rollup

import (
	"codeberg.org/monostack/gizmo/services/accounting"
	"codeberg.org/monostack/gizmo/services/dhcp4"
	"codeberg.org/monostack/gizmo/services/dhcp6info"
	"codeberg.org/monostack/gizmo/services/dhcp6pd"
	"codeberg.org/monostack/gizmo/services/dns64"
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
	"codeberg.org/monostack/gizmo/services/wan"
)

// everyService are Stats with every service running and one reason in
// each labelled counter.
func everyService() Stats {
	r := map[string]uint64{"some-reason": 1}
	return Stats{
		WAN:        &wan.Stats{InvalidRAs: r, InvalidDHCPv4: r},
		DHCP6PD:    &dhcp6pd.Stats{InvalidLeases: r},
		RA:         &ra.Stats{RSInvalid: r},
		NDProxy:    &ndproxy.Stats{},
		DHCP6Info:  &dhcp6info.Stats{Dropped: r},
		LANIf:      &lanif.Stats{},
		DNS64:      &dns64.Stats{},
		DHCP4:      &dhcp4.Stats{},
		NAT64:      &nat64.Stats{},
		Firewall:   &firewall.Stats{},
		Fastpath:   &fastpath.Stats{ToStack: r},
		Accounting: &accounting.Stats{},
		Neighbors:  &neighbors.Stats{Ignored: r},
		HostTable:  &HostTable{},
		// The existing-network mode's.
		NSResponder: &nsresponder.Stats{Refused: r},
		UPnP: &UPnP{Stats: upnp.Stats{
			Requests: map[upnp.RequestKey]uint64{{Action: "AddPinhole", Result: "ok"}: 3, {Action: "AddPinhole", Result: "703"}: 1},
			Refused:  r, SSDPDropped: r,
		}, Pinholes: 2},
		Timesync: &timesync.Stats{Rejected: r, Server: timesync.ServerStats{Dropped: r}},
	}
}
