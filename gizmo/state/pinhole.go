package state

import (
	"net/netip"
	"time"
)

// Pinhole is an inbound IPv6 pinhole that an app on a LAN host opened
// through UPnP IGD:2 (WANIPv6FirewallControl:1): Port of protocol Proto on
// the host's address Client is reachable from the internet until Expires.
//
// Pinholes are not persisted. They are leases of at most a day that the
// apps renew while they run; after a restart the host has to be seen
// again before any of its addresses is known, and an app whose renewal
// finds its pinhole gone adds it again.
type Pinhole struct {
	// ID is the UniqueID the app holds, unique among the gizmo's pinholes.
	ID uint16
	// Client is the host's own address the pinhole opens (InternalClient):
	// the address the app asked from.
	Client netip.Addr
	// Proto is the IP protocol number, 6 (TCP) or 17 (UDP); Port the
	// host's port (InternalPort).
	Proto uint8
	Port  uint16
	// RemoteHost and RemotePort are what the app asked to let in (invalid
	// and 0: anyone). The firewall opens the port to every remote; these
	// are kept to show the owner what the app asked for.
	RemoteHost netip.Addr
	RemotePort uint16
	// Created is when the pinhole was opened, Expires when its lease ends.
	Created, Expires time.Time
}
