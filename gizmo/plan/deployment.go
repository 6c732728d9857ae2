package plan

import (
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// Deployment names the situation the gizmo found itself in without being
// told (docs/deployments.md), for the dashboard's status and the log.
type Deployment string

const (
	// DeploymentRouter: an upstream delegates a prefix (DHCPv6-PD); the
	// gizmo routes it to the LAN and translates to IPv4 itself.
	DeploymentRouter Deployment = "router"
	// DeploymentUpstreamNAT64: the upstream advertises its own PREF64
	// (RFC 8781) or its DNS64 synthesizes into one (RFC 7050): it runs the
	// NAT64, the gizmo passes the prefix on (and translates its legacy
	// hosts' IPv4 with its CLAT on an IPv6-only line, services/clat).
	DeploymentUpstreamNAT64 Deployment = "upstream-nat64"
	// DeploymentShared64: the upstream delegates nothing but has an
	// on-link /64 on the WAN with a SLAAC address of the gizmo's in it, as
	// behind another home router or on a mobile link. The gizmo shares that
	// /64 with the LAN through its ND proxy (RFC 7278 §4.3,
	// services/ndproxy) next to the ULA, and translates to IPv4 itself.
	DeploymentShared64 Deployment = "shared-64"
	// DeploymentNoDelegation: the upstream has IPv6 (a router or an
	// address on the WAN) but delegates nothing and offers no /64 to
	// share. The LAN runs on the ULA and reaches IPv4 through the NAT64.
	DeploymentNoDelegation Deployment = "no-delegation"
	// DeploymentIPv4OnlyUpstream: no IPv6 upstream at all, only an IPv4
	// lease; the LAN is IPv6-only on the ULA behind DNS64 + NAT64.
	DeploymentIPv4OnlyUpstream Deployment = "ipv4-only-upstream"
	// DeploymentExistingNetwork: one port on a network that has its own
	// router; the gizmo adds NAT64 + DNS64 in an on-link /64, with RIO,
	// PREF64 and RDNSS.
	DeploymentExistingNetwork Deployment = "existing-network"
	// DeploymentNoUpstream: nothing heard on the WAN (yet).
	DeploymentNoUpstream Deployment = "no-upstream"
)

// DeploymentOf classifies the state. The order matters: the mode chosen at
// start (existing network) wins, then an upstream NAT64 (the gizmo does not
// translate whatever else is there), then what the WAN offers.
func DeploymentOf(st *state.State, existingNetwork bool, now time.Time) Deployment {
	n := NetworkOf(st, now)
	w := st.WAN
	hasV6 := (w.Router.IsValid() && w.RouterLifetimeUntil.After(now)) || w.HasGlobalIPv6()
	switch {
	case existingNetwork:
		return DeploymentExistingNetwork
	case st.Pref64Source.Upstream():
		return DeploymentUpstreamNAT64
	case n.Delegated != nil:
		return DeploymentRouter
	case n.Shared != nil:
		return DeploymentShared64
	case hasV6:
		return DeploymentNoDelegation
	case n.IPv4 != nil:
		return DeploymentIPv4OnlyUpstream
	}
	return DeploymentNoUpstream
}
