package main

import (
	"net"
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/derive"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/clat"
	"codeberg.org/monostack/gizmo/services/dhcp4"
	"codeberg.org/monostack/gizmo/services/dhcp6pd"
	"codeberg.org/monostack/gizmo/services/wan"
)

// wanObserved copies the WAN service's view of the uplink into the state,
// converting its types to the state's, and notes when the link came up. It
// leaves the fields other sources own (IPv4, DHCPv6DNS).
func wanObserved(w *state.WAN, u wan.Upstream, now time.Time) {
	switch {
	case !u.Up:
		w.LinkUpSince = time.Time{}
	case !w.Up:
		w.LinkUpSince = now
	}
	w.Interface = u.Interface
	w.Up = u.Up
	w.MTU = u.MTU
	w.Addrs = slices.Clone(u.Addrs)
	w.Router = u.Router
	w.RouterLifetimeUntil = u.RouterLifetimeUntil
	w.RDNSS = slices.Clone(u.RDNSS)
	w.UpstreamPref64 = u.Pref64
	w.Routes = make([]state.Route, 0, len(u.Routes))
	for _, r := range u.Routes {
		w.Routes = append(w.Routes, state.Route{Prefix: r.Prefix, Preference: r.Preference, ValidUntil: r.ValidUntil})
	}
	w.Prefixes = make([]state.UpstreamPrefix, 0, len(u.Prefixes))
	for _, p := range u.Prefixes {
		w.Prefixes = append(w.Prefixes, state.UpstreamPrefix{Prefix: p.Prefix, OnLink: p.OnLink, Autonomous: p.Autonomous, PreferredUntil: p.PreferredUntil, ValidUntil: p.ValidUntil})
	}
}

// ipv4Observed is the WAN's DHCPv4 lease in the state's terms; nil: lost.
func ipv4Observed(l *wan.IPv4Lease) *state.IPv4Lease {
	if l == nil {
		return nil
	}
	return &state.IPv4Lease{Addr: l.Addr, Router: l.Router, DNS: slices.Clone(l.DNS), NTP: slices.Clone(l.NTP), Expires: l.Expires, Acquired: l.Acquired}
}

// delegationObserved records a DHCPv6-PD lease: the delegated prefix with
// its deadlines, and the DNS and NTP servers and the DS-Lite AFTR's name
// (RFC 6334) of the same Reply. The deadlines are the client's, on the
// monotonic clock (they come from time.Now in dhcp6pd), so that a step of
// the wall clock moves none of them.
func delegationObserved(st *state.State, l dhcp6pd.Lease, now time.Time) {
	derive.NewDelegation(st, state.DelegatedPrefix{Prefix: l.Prefix, PreferredUntil: l.PreferredUntil, ValidUntil: l.ValidUntil, Acquired: l.Acquired}, now)
	st.WAN.DHCPv6DNS = slices.Clone(l.DNS)
	st.WAN.DHCPv6NTP = slices.Clone(l.NTP)
	st.WAN.DHCPv6NTPNames = slices.Clone(l.NTPNames)
	if l.AFTRName != st.WAN.AFTRName {
		// A new AFTR (or none): its address is resolved anew.
		st.WAN.AFTRName, st.WAN.AFTR = l.AFTRName, netip.Addr{}
	}
}

// discoveryObserved records an answer of RFC 7050 discovery. A round
// without an answer changes nothing: the last answer stands until its TTL
// runs out (state.DNS64Discovery.Found).
func discoveryObserved(d *state.DNS64Discovery, r clat.Discovered) {
	switch {
	case r.Err != nil:
	case r.None:
		*d = state.DNS64Discovery{None: true, At: r.At}
	default:
		*d = state.DNS64Discovery{Prefix: r.Prefix, ValidUntil: r.ValidUntil, At: r.At}
	}
}

// leased records what the DHCPv4 server told a host. The server only
// answers a client whose chaddr is the Ethernet source of its frames, so
// the lease (or the option 108 reply) is the MAC's own word.
func (d *daemon) leased(l dhcp4.Lease, active bool) {
	mac, err := net.ParseMAC(l.MAC)
	if err != nil {
		return
	}
	now := time.Now()
	d.observe(func(st *state.State) {
		// observe holds d.mu
		if derive.IsOwnMAC(st, mac.String()) {
			return
		}
		h := st.Hosts[mac.String()]
		if h == nil {
			if !active {
				return // a lease ended for a host the table does not hold
			}
			// A lease is a claim to a place; an option 108 reply is not
			// (it costs the client nothing, not even an address).
			standing := derive.StandingActive
			if l.IP.IsValid() {
				standing = derive.StandingLeased
			}
			if h, _ = derive.AddHost(st, mac.String(), standing, now); h == nil {
				return
			}
		}
		d.namedHostLocked(h, l.Hostname, now)
		h.GotV6OnlyPreferred = l.V6OnlyPreferred
		switch {
		case active && l.IP.IsValid():
			h.IPv4Lease = l.IP
			h.Addrs[l.IP] = now
			h.LastSeen = now
		case !active && h.IPv4Lease == l.IP:
			h.IPv4Lease = netip.Addr{}
		}
	})
}
