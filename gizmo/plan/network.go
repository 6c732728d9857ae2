package plan

import (
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// Network is the one view of the LAN's addressing at one moment: which
// prefixes the LAN has, the gizmo's own addresses in them, and whether the
// WAN's IPv4 lease holds. Every plan reads the LAN's prefixes and the IPv4
// lease from here (NetworkOf), so the same rules hold for all of them.
type Network struct {
	// Delegated is the current delegation if it is usable, else nil.
	Delegated *Delegation
	// Retired are earlier delegations that are still valid, in the
	// state's order; none has the current LAN /64 or an earlier one's.
	Retired []Delegation
	// Shared is the upstream /64 the ND proxy shares with the LAN
	// (RFC 7278 §4.3); SharedRetired one that is no longer shared but still
	// valid. Nil when there is none.
	Shared, SharedRetired *state.UpstreamPrefix
	// ULA is the gizmo's /48 (RFC 4193), Management its /64 on the LAN and
	// RouterULA the gizmo's address there; all invalid without a ULA.
	ULA, Management netip.Prefix
	RouterULA       netip.Addr
	// DNS are the DNS service's listening addresses, one per information
	// source.
	DNS state.DNSAddrs
	// Legacy4 is the LAN's legacy IPv4 network (the gizmo's address and
	// length).
	Legacy4 netip.Prefix
	// IPv4 is the WAN's IPv4 lease while it is valid, else nil.
	IPv4 *state.IPv4Lease
	// DSLite is the softwire to the ISP's AFTR (RFC 6333) when the line
	// has no IPv4 of its own, else nil.
	DSLite *DSLite
}

// Delegation is one delegated prefix as the LAN uses it.
type Delegation struct {
	// Prefix is the delegation as the ISP gave it; LAN its /64 on the LAN
	// (state.LANPrefix); Router the gizmo's address in LAN.
	Prefix, LAN netip.Prefix
	Router      netip.Addr
	// PreferredUntil and ValidUntil are the delegation's deadlines; a
	// retired one is preferred until the moment it was retired.
	PreferredUntil, ValidUntil time.Time
}

// NetworkOf computes the view at now. The rules:
//   - a delegation is usable only if it is global unicast IPv6 and not a
//     ULA (RFC 4193), /32 to /64 (room for a /64, which SLAAC needs: RFC
//     4862 §5.5.3 d with RFC 4291's 64-bit interface identifiers; no
//     shorter than an ISP's allocation, RFC 6177) and has not passed its
//     ValidUntil (RFC 8415 §18.2.10.1);
//   - a retired delegation or shared /64 stays until its ValidUntil: hosts
//     may use addresses in it until then (RFC 9096 §3);
//   - the current delegation wins over a retired entry with the same LAN
//     /64, so that it is never deprecated by its own history;
//   - the WAN's IPv4 lease is valid only while it has not expired (a zero
//     expiry never does).
func NetworkOf(st *state.State, now time.Time) Network {
	n := Network{DNS: st.LAN.DNS, Legacy4: st.LAN.Legacy4}
	if d := st.Delegated; d != nil && state.UsableDelegation(d.Prefix) && d.ValidUntil.After(now) {
		dd := delegationOf(*d)
		n.Delegated = &dd
	}
	for _, r := range st.Retired {
		if !state.UsableDelegation(r.Prefix) || !r.ValidUntil.After(now) {
			continue
		}
		rd := delegationOf(r)
		if n.Delegated != nil && n.Delegated.LAN == rd.LAN {
			continue
		}
		if slices.ContainsFunc(n.Retired, func(x Delegation) bool { return x.LAN == rd.LAN }) {
			continue
		}
		n.Retired = append(n.Retired, rd)
	}
	if sp := st.Shared; sp != nil && sp.ValidUntil.After(now) {
		s := *sp
		s.Prefix = s.Prefix.Masked()
		n.Shared = &s
	}
	if r := st.SharedRetired; r != nil && r.ValidUntil.After(now) &&
		(n.Shared == nil || n.Shared.Prefix != r.Prefix.Masked()) {
		s := *r
		s.Prefix = s.Prefix.Masked()
		n.SharedRetired = &s
	}
	if st.ULA.IsValid() && st.ULA.Bits() <= 64 {
		n.ULA = st.ULA.Masked()
		n.Management = state.ManagementPrefix(st.ULA)
		n.RouterULA = state.RouterULA(st.ULA)
	}
	if validIPv4(st.WAN.IPv4, now) {
		v4 := *st.WAN.IPv4
		n.IPv4 = &v4
	}
	n.DSLite = dsliteOf(st, n)
	return n
}

// validIPv4 reports whether the WAN's IPv4 lease holds at now.
func validIPv4(l *state.IPv4Lease, now time.Time) bool { return l.ValidAt(now) }

func delegationOf(d state.DelegatedPrefix) Delegation {
	lan := state.LANPrefix(d.Prefix)
	return Delegation{
		Prefix: d.Prefix.Masked(), LAN: lan, Router: state.WithIID(lan, state.RouterIID),
		PreferredUntil: d.PreferredUntil, ValidUntil: d.ValidUntil,
	}
}

// DelegatedLANs are the LAN's /64s from delegations: the current one
// first, then the retired ones.
func (n Network) DelegatedLANs() []netip.Prefix {
	return n.eachDelegation(func(d Delegation) netip.Prefix { return d.LAN })
}

// SharedLANs are the shared /64 and a retired one, as LAN prefixes.
func (n Network) SharedLANs() []netip.Prefix {
	var out []netip.Prefix
	if n.Shared != nil {
		out = append(out, n.Shared.Prefix)
	}
	if n.SharedRetired != nil {
		out = append(out, n.SharedRetired.Prefix)
	}
	return out
}

// Delegations are the current delegation and the retired ones, as
// delegated.
func (n Network) Delegations() []netip.Prefix {
	return n.eachDelegation(func(d Delegation) netip.Prefix { return d.Prefix })
}

// eachDelegation is f of the current delegation, then of each retired one.
func (n Network) eachDelegation(f func(Delegation) netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	if n.Delegated != nil {
		out = append(out, f(*n.Delegated))
	}
	for _, r := range n.Retired {
		out = append(out, f(r))
	}
	return out
}

// delegatedAddr reports whether a is in the current or a retired
// delegation.
func (n Network) delegatedAddr(a netip.Addr) bool {
	return slices.ContainsFunc(n.Delegations(), func(p netip.Prefix) bool { return p.Contains(a) })
}
