// Package derive keeps the daemon's state consistent: it records what the
// services observe (a new or lost delegation) and fills the fields that
// follow from the others (the PREF64 in force, the upstream resolvers, the
// legacy network, the shared /64, the on-link /64 of the existing-network
// mode, the kind of line), and ages out what has expired. It only
// writes the state; the plans (gizmo/plan) only read it.
package derive

import (
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// Settings are the daemon's flags that the derived fields depend on.
type Settings struct {
	// Pref64 is -pref64; invalid when the flag was not given.
	Pref64 netip.Prefix
	// DNSUpstream is -dns-upstream; empty: learn the resolvers from the WAN.
	DNSUpstream []netip.AddrPort
	// LANIPv4 is the legacy LAN network; LANIPv4Set says it came from
	// -lan-ipv4 and is never moved off the WAN's subnet.
	LANIPv4    netip.Prefix
	LANIPv4Set bool
	// ExistingNetwork is the one-port mode on a network with its own
	// router: nothing of that network's is shared through the ND proxy,
	// and the NAT64 prefix and DNS64 address live in an on-link /64.
	ExistingNetwork bool
}

// HostAddrTTL is how long an address seen for a host is remembered after it
// was last seen: a day covers the RFC 8981 temporary address lifetimes.
const HostAddrTTL = 24 * time.Hour

// MaxRetiredValid bounds how long a retired prefix stays valid on the LAN:
// ND_VALID_LIMIT, 5400 s (RFC 9096 §3.3).
const MaxRetiredValid = 5400 * time.Second

// Derive fills the state fields that follow from the others and from the
// settings, and ages out what has expired at now.
func Derive(st *state.State, s Settings, now time.Time) {
	// A delegation past its valid lifetime is gone (RFC 8415 §18.2.10.1).
	if st.Delegated != nil && !st.Delegated.ValidUntil.After(now) {
		st.Delegated = nil
	}
	st.Retired = slices.DeleteFunc(st.Retired, func(r state.DelegatedPrefix) bool {
		return !r.ValidUntil.After(now)
	})

	deriveShared(st, s.ExistingNetwork, now)
	ProveWAN(st, now)
	deriveOnLink(st, s.ExistingNetwork, now)

	// PREF64: the flag, else what the upstream advertises (RFC 8781), else
	// in the existing-network mode the /96 in the on-link /64 (which hosts
	// reach without a route), else what the ISP's DNS64 synthesizes into
	// (RFC 7050) on a line without IPv4 (with an IPv4 lease the gizmo's
	// own NAT64 translates), else the well-known prefix (RFC 6052 §2.1).
	discovered, found := st.WAN.DNS64.Found(now)
	switch {
	case s.Pref64.IsValid():
		st.Pref64, st.Pref64Source = s.Pref64, state.Pref64Flag
	case st.WAN.UpstreamPref64.IsValid():
		st.Pref64, st.Pref64Source = st.WAN.UpstreamPref64, state.Pref64Upstream
	case st.OnLink.IsValid():
		st.Pref64, st.Pref64Source = state.NAT64In(st.OnLink), state.Pref64OnLink
	case found && !st.WAN.IPv4.ValidAt(now):
		st.Pref64, st.Pref64Source = discovered, state.Pref64Discovered
	default:
		st.Pref64, st.Pref64Source = state.WellKnownPref64, state.Pref64Default
	}
	st.UpstreamDNS = upstreamDNS(st.WAN, s.DNSUpstream)

	st.LAN.Legacy4 = LegacyNetwork(s.LANIPv4, s.LANIPv4Set, st.WAN.IPv4)
	if st.ULA.IsValid() {
		st.LAN.DNS = state.DNSAddrsIn(st.ULA, st.LAN.Legacy4)
	}
	// The RDNSS address the existing-network mode advertises sits in the
	// on-link /64, so that hosts that ignore RIOs (RFC 4191) reach it.
	if st.OnLink.IsValid() {
		st.LAN.DNS.RDNSS = state.OnLinkDNS(st.OnLink)
	}
	st.Line = LineOf(st, now)

	st.HostTable.Capacity = MaxHosts
	for _, h := range st.Hosts {
		for a, seen := range h.Addrs {
			if now.Sub(seen) > HostAddrTTL {
				delete(h.Addrs, a)
			}
		}
		dropPinholes(h, now)
	}
}

// dropPinholes removes a host's pinholes whose lease ended, all of them
// when the owner no longer allows app pinholes on the host, and those of
// an address the host no longer uses. The firewall's plan leaves them out
// already (plan.LivePinholes); here they also leave the state.
func dropPinholes(h *state.Host, now time.Time) {
	h.Pinholes = slices.DeleteFunc(h.Pinholes, func(p state.Pinhole) bool {
		_, used := h.Addrs[p.Client]
		return !h.Policy.AppPinholes || !p.Expires.After(now) || !used
	})
	if len(h.Pinholes) == 0 {
		h.Pinholes = nil
	}
}

// upstreamDNS are the resolvers the DNS service forwards to: the flag's,
// or else RA RDNSS, then DHCPv6, then the DHCPv4 lease's servers, without
// duplicates.
func upstreamDNS(w state.WAN, flag []netip.AddrPort) []netip.AddrPort {
	if len(flag) > 0 {
		return slices.Clone(flag)
	}
	var ups []netip.AddrPort
	add := func(as []netip.Addr) {
		for _, a := range as {
			ap := netip.AddrPortFrom(a, 53)
			if a.IsValid() && !slices.Contains(ups, ap) {
				ups = append(ups, ap)
			}
		}
	}
	add(w.RDNSS)
	add(w.DHCPv6DNS)
	if w.IPv4 != nil {
		add(w.IPv4.DNS)
	}
	return ups
}

// NewDelegation records a (possibly changed) delegated prefix. A different
// prefix retires the old one: it stays advertised as deprecated until its
// valid lifetime runs out, capped at ND_VALID_LIMIT (RFC 9096 §3.3), while
// hosts get the new one at once.
func NewDelegation(st *state.State, d state.DelegatedPrefix, now time.Time) {
	old := st.Delegated
	st.Delegated = &d
	// Coming back to a retired prefix takes it out of retirement.
	st.Retired = slices.DeleteFunc(st.Retired, func(r state.DelegatedPrefix) bool { return r.Prefix == d.Prefix })
	if old != nil && old.Prefix != d.Prefix {
		retire(st, *old, now)
	}
}

// LostDelegation records that the delegated prefix p went away (withdrawn
// or expired): it is retired like a replaced one. A loss of another prefix
// than the current one changes nothing.
func LostDelegation(st *state.State, p netip.Prefix, now time.Time) {
	if st.Delegated == nil || st.Delegated.Prefix != p {
		return
	}
	retire(st, *st.Delegated, now)
	st.Delegated = nil
}

func retire(st *state.State, old state.DelegatedPrefix, now time.Time) {
	old.PreferredUntil = now
	if old.ValidUntil.After(now.Add(MaxRetiredValid)) {
		old.ValidUntil = now.Add(MaxRetiredValid)
	}
	st.Retired = slices.DeleteFunc(st.Retired, func(r state.DelegatedPrefix) bool { return r.Prefix == old.Prefix })
	if old.ValidUntil.After(now) {
		st.Retired = append(st.Retired, old)
	}
}

// legacyFallbacks are the private networks the legacy LAN moves to, in
// order, when the default one overlaps the WAN's subnet (the gizmo behind
// another home router that uses 192.168.64.0/24 itself).
var legacyFallbacks = []netip.Prefix{
	netip.MustParsePrefix("192.168.64.1/24"),
	netip.MustParsePrefix("10.64.64.1/24"),
	netip.MustParsePrefix("172.30.64.1/24"),
}

// LegacyNetwork is the LAN's legacy IPv4 network: the flag's (set), or the
// first of def and the fallbacks that does not overlap the WAN's subnet, so
// that the route to the legacy LAN never hides the upstream.
func LegacyNetwork(def netip.Prefix, set bool, wan *state.IPv4Lease) netip.Prefix {
	if set || wan == nil || !wan.Addr.IsValid() {
		return def
	}
	for _, c := range append([]netip.Prefix{def}, legacyFallbacks...) {
		if !c.Masked().Overlaps(wan.Addr.Masked()) {
			return c
		}
	}
	return def
}

// RecordPinhole puts a pinhole the plan granted (plan.PinholeAdd,
// plan.PinholeRenew) on the host with this MAC: it replaces the one with
// the same ID, or is added and its ID becomes the last one handed out.
func RecordPinhole(st *state.State, mac string, p state.Pinhole) {
	h, ok := st.Hosts[mac]
	if !ok {
		return
	}
	if i := slices.IndexFunc(h.Pinholes, func(x state.Pinhole) bool { return x.ID == p.ID }); i >= 0 {
		h.Pinholes[i] = p
		return
	}
	h.Pinholes = append(h.Pinholes, p)
	st.LastPinholeID = p.ID
}

// RemovePinhole closes the pinhole id of the host with this MAC.
func RemovePinhole(st *state.State, mac string, id uint16) {
	if h, ok := st.Hosts[mac]; ok {
		h.Pinholes = slices.DeleteFunc(h.Pinholes, func(p state.Pinhole) bool { return p.ID == id })
	}
}
