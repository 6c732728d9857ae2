package plan

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// RuleMatch is what one inbound rule lets in at the moment: the addresses
// or prefixes it opens and the hosts' addresses among them, for the owner
// to see next to the rule.
type RuleMatch struct {
	// Opens are the destinations the firewall accepts for the rule: for a
	// token rule the token in each of the LAN's global /64s (as /128s),
	// for a subnet rule the subnet of the delegation.
	Opens []netip.Prefix
	// Hosts are the LAN hosts' current addresses inside Opens.
	Hosts []HostAddr
	// Waiting says why a well-formed rule opens nothing now, e.g. a subnet
	// rule before the ISP delegates a prefix; Problem is a rule the
	// firewall leaves out (ValidateInboundRule's error).
	Waiting, Problem string
}

// HostAddr is one of a host's addresses.
type HostAddr struct {
	MAC, Name string
	Addr      netip.Addr
}

// InboundMatches resolves each of the owner's inbound rules, in order, as
// the firewall plan does (Firewall): token rules apply in the LAN's global
// /64s, delegated and shared; subnet rules inside the current delegation.
// A host address counts as long as the firewall keeps its exposed ports
// open (HostAddrMaxAge).
func InboundMatches(st *state.State, now time.Time) []RuleMatch {
	n := NetworkOf(st, now)
	var delegated netip.Prefix
	if n.Delegated != nil {
		delegated = n.Delegated.Prefix
	}
	lans := append(n.DelegatedLANs(), n.SharedLANs()...)
	addrs := currentHostAddrs(st, now)
	out := make([]RuleMatch, 0, len(st.InboundRules))
	for _, r := range st.InboundRules {
		var m RuleMatch
		tok, pfx, _, err := resolveRule(delegated, r)
		switch {
		case err != nil:
			m.Problem = err.Error()
		case tok.IsValid():
			if len(lans) == 0 {
				m.Waiting = "the LAN has no global IPv6 prefix yet"
			}
			iid := tok.As16()
			for _, l := range lans {
				a := l.Masked().Addr().As16()
				copy(a[8:], iid[8:])
				m.Opens = append(m.Opens, netip.PrefixFrom(netip.AddrFrom16(a), 128))
			}
			for _, h := range addrs {
				if b := h.Addr.As16(); [8]byte(b[8:]) == [8]byte(iid[8:]) && slices.ContainsFunc(lans, func(l netip.Prefix) bool { return l.Contains(h.Addr) }) {
					m.Hosts = append(m.Hosts, h)
				}
			}
		case pfx.IsValid():
			m.Opens = []netip.Prefix{pfx}
			for _, h := range addrs {
				if pfx.Contains(h.Addr) {
					m.Hosts = append(m.Hosts, h)
				}
			}
		default:
			m.Waiting = "applies once the ISP delegates a prefix"
		}
		out = append(out, m)
	}
	return out
}

// currentHostAddrs are the hosts' global IPv6 addresses seen within
// HostAddrMaxAge, sorted by address.
func currentHostAddrs(st *state.State, now time.Time) []HostAddr {
	var out []HostAddr
	for _, mac := range slices.Sorted(maps.Keys(st.Hosts)) {
		h := st.Hosts[mac]
		name := cmp.Or(h.Policy.Hostname, h.Hostname)
		for a, seen := range h.Addrs {
			if now.Sub(seen) > HostAddrMaxAge || !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() {
				continue
			}
			out = append(out, HostAddr{MAC: mac, Name: name, Addr: a.WithZone("")})
		}
	}
	slices.SortFunc(out, func(a, b HostAddr) int { return a.Addr.Compare(b.Addr) })
	return out
}
