package plan

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dns64"
	"codeberg.org/monostack/gizmo/services/nat64"
)

// LANLegacy is how the LAN's IPv6-only hosts reach its own IPv4-only
// devices (a printer, an IoT gadget that leased an IPv4 address): the
// NAT64's LAN pool on the gizmo's LAN IPv4 address, and the devices'
// names with an AAAA record under LANLegacyPrefix. Zero when the LAN has
// no legacy IPv4 network, or no prefix to put the devices under. It does
// not depend on the WAN: a printer stays reachable while the internet is
// down.
//
// A device whose owner switched "reachable from IPv6-only hosts" off
// (state.HostPolicy.LANReachable) is refused: no AAAA, and the NAT64 drops
// what is sent to it, counted. More refused devices than the NAT64 holds
// turn the LAN pool off rather than let one through.
func LANLegacy(st *state.State, now time.Time) nat64.LANLegacy {
	n := NetworkOf(st, now)
	pref := LANLegacyPrefix(st, now)
	if !n.Legacy4.IsValid() || !n.Legacy4.Addr().Is4() || !pref.IsValid() {
		return nat64.LANLegacy{}
	}
	l := nat64.LANLegacy{Addr4: n.Legacy4, Prefix: pref, Refused: refusedDevices(st, n.Legacy4)}
	if len(l.Refused) > nat64.MaxLANRefused {
		return nat64.LANLegacy{}
	}
	return l
}

// LANLegacyPrefix is where the LAN's own IPv4 devices are embedded for the
// IPv6-only hosts (RFC 6052 §2.2):
//   - the PREF64, when it is a network-specific prefix of the gizmo's own
//     NAT64 (the -pref64 flag, as in the lab): RFC 6052 §3.1 keeps only
//     the well-known prefix from non-global IPv4 addresses, and a host's
//     CLAT (RFC 6877), which knows only the PREF64, then reaches the
//     devices' IPv4 literals too;
//   - else the gizmo's <ULA>:46::/96 (state.LANLegacyPrefix): under
//     64:ff9b::/96 the LAN's private addresses must never appear (RFC 6052
//     §3.1: translators drop them), and an upstream's PREF64 (RFC 8781)
//     leads to the upstream's NAT64, which cannot reach the LAN. The RA
//     routes the ULA /48 to the gizmo.
//
// Invalid without either.
func LANLegacyPrefix(st *state.State, now time.Time) netip.Prefix {
	pref := st.Pref64.Masked()
	if pref.IsValid() && pref != state.WellKnownPref64 && !st.Pref64Source.Upstream() {
		return pref
	}
	if n := NetworkOf(st, now); n.ULA.IsValid() {
		return state.LANLegacyPrefix(n.ULA)
	}
	return netip.Prefix{}
}

// refusedDevices are the IPv4 addresses of the LAN's devices that their
// owner keeps from IPv6-only hosts: their leases and reservations, of the
// hosts seen and the remembered ones, inside the LAN's network.
func refusedDevices(st *state.State, legacy netip.Prefix) []netip.Addr {
	set := map[netip.Addr]bool{}
	add := func(p state.HostPolicy, lease netip.Addr) {
		if p.LANReachable {
			return
		}
		for _, a := range []netip.Addr{lease, p.IPv4} {
			if a.IsValid() && legacy.Contains(a) {
				set[a] = true
			}
		}
	}
	for _, h := range st.Hosts {
		add(h.Policy, h.IPv4Lease)
	}
	for _, r := range st.Remembered {
		add(r.Policy, netip.Addr{})
	}
	return slices.SortedFunc(maps.Keys(set), netip.Addr.Compare)
}

// lanLegacyNames are the AAAA records that lead the IPv6-only hosts to the
// LAN's IPv4-only devices: for each local name without an IPv6 address
// (RFC 6147 §5.1.1: a name with an AAAA record of its own is never
// synthesized), its IPv4 addresses in the LAN's network under the LAN
// pool's prefix, but not a refused device's. clients say which host owns
// an address.
func lanLegacyNames(l nat64.LANLegacy, names map[string][]netip.Addr, clients map[netip.Addr]dns64.ClientPolicy, hosts map[string]*state.Host) map[string][]netip.Addr {
	if !l.Enabled() {
		return nil
	}
	out := map[string][]netip.Addr{}
	for name, addrs := range names {
		if slices.ContainsFunc(addrs, netip.Addr.Is6) {
			continue
		}
		var synth []netip.Addr
		for _, a := range addrs {
			if !l.Addr4.Contains(a) || a == l.Addr4.Addr() || slices.Contains(l.Refused, a) {
				continue
			}
			if h := hosts[clients[a].MAC]; h == nil || !h.Policy.LANReachable {
				continue
			}
			if v6, err := dns64.Embed(l.Prefix, a); err == nil {
				synth = append(synth, v6)
			}
		}
		if len(synth) > 0 {
			out[name] = synth
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
