package derive

import (
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// NoIPv4HoldOff is how long an IPv6 line must have been up without an
// IPv4 lease, a NAT64 or an AFTR before the gizmo says it has no IPv4. The
// DHCPv4 lease, the RA's PREF64 and RFC 7050 discovery's answer arrive
// seconds after the link comes up, and the no-IPv4 rules (no DNS64
// synthesis, no PREF64 in the RA) must not come and go while they do.
const NoIPv4HoldOff = 30 * time.Second

// LineOf is what the ISP's line carries at now:
//   - IPv4 is a valid DHCPv4 lease; IPv6 an upstream router whose lifetime
//     runs, a global address on the WAN or a valid delegation;
//   - on an IPv6-only line, an AFTR (RFC 6333) makes it DS-Lite, the
//     ISP's NAT64 prefix from its RA (RFC 8781) or its DNS64 (RFC 7050)
//     IPv6-only with NAT64;
//   - with neither, it has no IPv4 at all once NoIPv4HoldOff has passed
//     since the link came up and discovery has answered that there is no
//     DNS64 (or there is no resolver to ask); until then it is unknown.
func LineOf(st *state.State, now time.Time) state.Line {
	w := st.WAN
	v4 := w.IPv4.ValidAt(now)
	v6 := w.Router.IsValid() && w.RouterLifetimeUntil.After(now) || w.HasGlobalIPv6() ||
		st.Delegated != nil && st.Delegated.ValidUntil.After(now)
	_, discovered := w.DNS64.Found(now)
	switch {
	case v4 && v6:
		return state.LineDualStack
	case v4:
		return state.LineIPv4Only
	case !v6:
		return state.LineUnknown
	case w.AFTR.IsValid():
		return state.LineDSLite
	case w.UpstreamPref64.IsValid() || discovered:
		return state.LineIPv6OnlyNAT64
	case noIPv4(st, now):
		return state.LineIPv6Only
	}
	return state.LineUnknown
}

// noIPv4 reports whether an IPv6 line has shown no way to IPv4 for long
// enough: up since NoIPv4HoldOff, no AFTR named, and RFC 7050 discovery has answered "no
// DNS64" since the link came up, or there is no resolver to ask.
func noIPv4(st *state.State, now time.Time) bool {
	w := st.WAN
	if !w.Up || w.LinkUpSince.IsZero() || now.Sub(w.LinkUpSince) < NoIPv4HoldOff {
		return false
	}
	// An AFTR named in DHCPv6 (RFC 6334) but not resolved yet is a way
	// to IPv4 still to come.
	if w.AFTRName != "" {
		return false
	}
	if len(st.UpstreamDNS) == 0 {
		return true
	}
	return w.DNS64.None && !w.DNS64.At.Before(w.LinkUpSince)
}
