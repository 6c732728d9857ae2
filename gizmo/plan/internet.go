package plan

import (
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// Internet is the overview's one-line answer to "does the internet work,
// and if not, what is wrong", derived from the state alone.
type Internet struct {
	// OK: the LAN reaches IPv6 and IPv4 destinations (IPv4 through a
	// NAT64, the gizmo's or the ISP's).
	OK bool
	// Key names the finding for scripts and tests: ok, no-wan, no-cable,
	// waiting, no-dns, no-ipv4, no-prefix, no-prefix-no-ipv4.
	Key string
	// Line is what the household reads, Hint what to do about it.
	Line, Hint string
}

// InternetOf looks at the state in the order a person would check the
// connection: a WAN port, its cable, an answer from the ISP, DNS, then
// which of IPv6 and IPv4 the ISP gives. On an existing network the gizmo
// is a guest, and that network's router is the one to hear.
func InternetOf(st *state.State, existingNetwork bool, now time.Time) Internet {
	n := NetworkOf(st, now)
	w := st.WAN
	router := w.Router.IsValid() && w.RouterLifetimeUntil.After(now)
	v6 := n.Delegated != nil || n.Shared != nil
	// RFC 6333: a DS-Lite softwire carries the NAT64's IPv4 as a lease would.
	v4 := n.IPv4 != nil || n.DSLite != nil
	upstreamNAT64 := st.Pref64Source.Upstream()
	switch {
	case existingNetwork && router:
		return Internet{OK: true, Key: "ok", Line: "OK: this network's router connects it; the gizmo adds IPv4 via NAT64"}
	case existingNetwork:
		return Internet{Key: "waiting", Line: "Waiting for this network's router",
			Hint: "The gizmo joined an existing network as a helper, and its router has not advertised itself yet."}
	case w.Interface == "":
		return Internet{Key: "no-wan", Line: "No port hears the ISP yet",
			Hint: "Plug the cable from the ISP's modem or router into any port: the gizmo finds the WAN by itself."}
	case !w.Up:
		return Internet{Key: "no-cable", Line: "No cable on the WAN port",
			Hint: "Check the cable from " + w.Interface + " to the ISP's modem or router, and that the modem is on."}
	case !router && !w.HasGlobalIPv6() && !v6 && !v4:
		return Internet{Key: "waiting", Line: "Waiting for the ISP's router",
			Hint: "The WAN cable is in, but nothing answered yet: no router advertisement, no DHCPv4. A modem that just started can take a few minutes."}
	case len(st.UpstreamDNS) == 0:
		return Internet{Key: "no-dns", Line: "No DNS server from the ISP: names do not resolve",
			Hint: "The ISP announced no resolver (RA RDNSS, DHCPv6 or DHCPv4); the gizmo's -dns-upstream flag sets one."}
	case v6 && upstreamNAT64:
		return Internet{OK: true, Key: "ok", Line: "OK: IPv6, and IPv4 via the ISP's NAT64"}
	case v6 && v4:
		return Internet{OK: true, Key: "ok", Line: "OK: IPv6 and IPv4 via NAT64"}
	case v6:
		return Internet{Key: "no-ipv4", Line: "No IPv4 from the ISP: IPv4-only sites unreachable",
			Hint: "IPv6 works. The NAT64 needs an IPv4 address on the WAN (DHCPv4) to reach the sites that are still IPv4-only."}
	case v4:
		return Internet{Key: "no-prefix", Line: "No IPv6 prefix from the ISP; the LAN uses ULA + NAT64",
			Hint: "Hosts reach IPv4 sites through the NAT64, but no IPv6-only site: the ISP delegates no prefix (DHCPv6-PD) and offers no /64 to share."}
	}
	return Internet{Key: "no-prefix-no-ipv4", Line: "No IPv6 prefix and no IPv4 from the ISP: the internet is unreachable",
		Hint: "The ISP's router answers, but gives neither a prefix (DHCPv6-PD) nor an IPv4 address (DHCPv4)."}
}
