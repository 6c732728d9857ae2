package main

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/lanif"
)

// Deployment names the situation the gizmo found itself in without being
// told (issue 9, docs/deployments.md), for the dashboard's status.
type Deployment string

const (
	// DeploymentRouter: an upstream delegates a prefix (DHCPv6-PD); the
	// gizmo routes it to the LAN and translates to IPv4 itself.
	DeploymentRouter Deployment = "router"
	// DeploymentUpstreamNAT64: the upstream advertises its own PREF64
	// (RFC 8781): it runs the NAT64, the gizmo only passes the prefix on.
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
	// router; the gizmo adds NAT64 + DNS64 by RIO, PREF64 and RDNSS.
	DeploymentExistingNetwork Deployment = "existing-network"
	// DeploymentNoUpstream: nothing heard on the WAN (yet).
	DeploymentNoUpstream Deployment = "no-upstream"
)

// deploymentOf classifies the state. The order matters: the mode chosen at
// start (existing network) wins, then an upstream NAT64 (the gizmo does not
// translate whatever else is there), then what the WAN offers.
func deploymentOf(st *state.State, existingNetwork bool, now time.Time) Deployment {
	w := st.WAN
	hasV6 := (w.Router.IsValid() && w.RouterLifetimeUntil.After(now)) || hasGlobal(w.Addrs)
	shared := st.Shared != nil && st.Shared.ValidUntil.After(now)
	hasV4 := w.IPv4 != nil && w.IPv4.Addr.IsValid() && (w.IPv4.Expires.IsZero() || w.IPv4.Expires.After(now))
	switch {
	case existingNetwork:
		return DeploymentExistingNetwork
	case st.Pref64Source == state.Pref64Upstream:
		return DeploymentUpstreamNAT64
	case st.Delegated != nil && st.Delegated.ValidUntil.After(now):
		return DeploymentRouter
	case shared:
		return DeploymentShared64
	case hasV6:
		return DeploymentNoDelegation
	case hasV4:
		return DeploymentIPv4OnlyUpstream
	}
	return DeploymentNoUpstream
}

func hasGlobal(addrs []netip.Prefix) bool {
	for _, a := range addrs {
		if ip := a.Addr(); ip.IsGlobalUnicast() && !ip.IsPrivate() {
			return true
		}
	}
	return false
}

// deploymentWatch logs each change of the detected deployment, so that the
// log says why the LAN looks the way it does. It has no goroutine of its
// own: observe runs with the state locked and only compares and logs.
type deploymentWatch struct {
	log      *slog.Logger
	existing bool

	mu   sync.Mutex
	last Deployment
}

// Run only waits: the watch works in observe.
func (w *deploymentWatch) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (w *deploymentWatch) observe(st *state.State, now time.Time) {
	d := deploymentOf(st, w.existing, now)
	w.mu.Lock()
	defer w.mu.Unlock()
	if d == w.last {
		return
	}
	w.log.Info("deployment detected", "deployment", string(d), "previous", string(w.last))
	w.last = d
}

// Current is the last deployment observed ("" before the first plan).
func (w *deploymentWatch) Current() Deployment {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// existingNetworkLAN adapts the LAN address plan to the existing-network
// mode, where the one port is the WAN too. lanif removes every address that
// is not in its plan, so the port's upstream addresses (SLAAC from the
// network's router, the DHCPv4 lease) are added to the plan: without them
// the gizmo cannot reach an upstream resolver or translate to IPv4. The
// delegated prefix's address is dropped: the network's router routes the
// delegation to nobody here, and the RA advertises no prefix in this mode.
func existingNetworkLAN(p lanif.Plan, st *state.State, now time.Time) lanif.Plan {
	delegated := func(a netip.Addr) bool {
		if st.Delegated != nil && st.Delegated.Prefix.Contains(a) {
			return true
		}
		for _, r := range st.Retired {
			if r.Prefix.Contains(a) {
				return true
			}
		}
		return false
	}
	out := lanif.Plan{}
	for _, a := range p.Addrs {
		if !delegated(a.Prefix.Addr()) {
			out.Addrs = append(out.Addrs, a)
		}
	}
	for _, a := range st.WAN.Addrs {
		if a.Addr().Is6() && !a.Addr().IsLinkLocalUnicast() && !delegated(a.Addr()) && !slices.ContainsFunc(out.Addrs, func(x lanif.Addr) bool { return x.Prefix == a }) {
			out.Addrs = append(out.Addrs, lanif.Addr{Prefix: a})
		}
	}
	if v4 := st.WAN.IPv4; v4 != nil && v4.Addr.IsValid() && (v4.Expires.IsZero() || v4.Expires.After(now)) {
		out.Addrs = append(out.Addrs, lanif.Addr{Prefix: v4.Addr, ValidUntil: v4.Expires})
	}
	return out
}

// existingNetworkPrefixes are the on-link /64s of the network the one-port
// gizmo joined (its SLAAC addresses' prefixes): in the existing-network mode
// the hosts there are the NAT64's clients, not only the ULA's.
func existingNetworkPrefixes(st *state.State) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range st.WAN.Addrs {
		ip := a.Addr()
		if !ip.Is6() || !ip.IsGlobalUnicast() || ip.IsPrivate() {
			continue
		}
		if st.Delegated != nil && st.Delegated.Prefix.Contains(ip) {
			continue
		}
		if p := a.Masked(); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
