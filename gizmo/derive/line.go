package derive

import (
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// LineOf is what the ISP's line carries at now:
//   - IPv4 is a valid DHCPv4 lease; IPv6 an upstream router whose lifetime
//     runs, a global address on the WAN or a valid delegation;
//   - on an IPv6-only line, an AFTR (RFC 6333, named in DHCPv6 by RFC
//     6334 and resolved) makes it DS-Lite, the ISP's NAT64 prefix in its
//     RA (RFC 8781) IPv6-only with NAT64;
//   - anything else is not known (yet).
func LineOf(st *state.State, now time.Time) state.Line {
	w := st.WAN
	v4 := w.IPv4 != nil && w.IPv4.Addr.IsValid() && w.IPv4.Addr.Addr().Is4() && (w.IPv4.Expires.IsZero() || w.IPv4.Expires.After(now))
	v6 := w.Router.IsValid() && w.RouterLifetimeUntil.After(now) || hasGlobalIPv6(w) ||
		st.Delegated != nil && st.Delegated.ValidUntil.After(now)
	switch {
	case v4 && v6:
		return state.LineDualStack
	case v4:
		return state.LineIPv4Only
	case !v6:
		return state.LineUnknown
	case w.AFTRName != "" && w.AFTR.IsValid():
		return state.LineDSLite
	case w.UpstreamPref64.IsValid():
		return state.LineIPv6OnlyNAT64
	}
	return state.LineUnknown
}

// hasGlobalIPv6 reports whether one of the WAN's addresses is global IPv6
// addressing (a ULA is not an IPv6 upstream).
func hasGlobalIPv6(w state.WAN) bool {
	for _, a := range w.Addrs {
		if ip := a.Addr(); ip.Is6() && ip.IsGlobalUnicast() && !ip.IsPrivate() {
			return true
		}
	}
	return false
}
