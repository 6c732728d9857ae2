package plan

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dhcp4"
)

// DHCP4 is the plan for the LAN's DHCPv4 server: the legacy network around
// the gizmo's own address, with the gizmo as router, (through its legacy
// listening address) DNS server and, when its time service serves there
// (timeServed, TimeServed), NTP server (option 42, RFC 2132 §8.3), and the
// owner's per-host choices. Without a legacy IPv4 network the plan is
// disabled.
func DHCP4(st *state.State, v6OnlyWait time.Duration, timeServed []netip.Addr) dhcp4.Plan {
	own := st.LAN.Legacy4
	if !own.IsValid() || !own.Addr().Is4() || own.Bits() > 30 {
		return dhcp4.Plan{}
	}
	sub := own.Masked()
	first := sub.Addr().Next() // after the network address
	last := dhcp4.Broadcast(sub).Prev()
	// The gizmo's own address is never leased; when it sits at an end of
	// the range, the range simply shrinks (the server also skips it inside).
	if own.Addr() == first {
		first = first.Next()
	}
	if own.Addr() == last {
		last = last.Prev()
	}
	// A legacy network larger than a /16 gets a /16's worth of pool.
	if last = dhcp4.CapPool(first, last); last == own.Addr() {
		last = last.Prev()
	}
	p := dhcp4.Plan{
		Server:                 own,
		PoolStart:              first,
		PoolEnd:                last,
		Router:                 own.Addr(),
		Domain:                 LocalDomain,
		LeaseTime:              dhcp4.DefaultLeaseTime,
		V6OnlyWait:             v6OnlyWait,
		DefaultV6OnlyPreferred: state.DefaultHostPolicy().V6OnlyPreferred,
	}
	// RFC 8925: on a line without any IPv4 (state.LineIPv6Only) a legacy
	// lease leads nowhere, so every host that can do without one is told
	// to, whatever its policy says.
	noIPv4 := st.Line == state.LineIPv6Only
	if noIPv4 {
		p.DefaultV6OnlyPreferred = true
	}
	if d := st.LAN.DNS.DHCPv4; d.IsValid() && d.Is4() {
		p.DNS = []netip.Addr{d}
	}
	// Only the gizmo's own address: a legacy host reaches no other.
	if slices.Contains(timeServed, own.Addr()) {
		p.NTP = []netip.Addr{own.Addr()}
	}
	if len(st.Hosts) > 0 {
		p.Hosts = make(map[string]dhcp4.HostPolicy, len(st.Hosts))
	}
	taken := map[netip.Addr]bool{own.Addr(): true}
	// Sorted, so that when two hosts claim the same reservation the same
	// one wins every time.
	for _, mac := range slices.Sorted(maps.Keys(st.Hosts)) {
		h := st.Hosts[mac]
		hp := dhcp4.HostPolicy{V6OnlyPreferred: h.Policy.V6OnlyPreferred || noIPv4}
		// A reservation outside the network (say, after the owner changed
		// -lan-ipv4) or on an address already claimed is left out rather
		// than invalidating the whole plan.
		if r := h.Policy.IPv4; r.IsValid() && r.Is4() && sub.Contains(r) &&
			r != sub.Addr() && r != dhcp4.Broadcast(sub) && !taken[r] {
			hp.Reserved = r
			taken[r] = true
		}
		p.Hosts[mac] = hp
	}
	return p
}
