package wan

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeProtocol marks the routes this service installs (rtm_protocol), so
// that a restart after a crash finds and replaces its own leftovers and
// leaves everyone else's routes alone. Values above RTPROT_STATIC (4) that
// the kernel and iproute2 do not use are free for daemons.
const routeProtocol netlink.RouteProtocol = 0x67

// syncUnreachable makes the set of unreachable routes this service owns in
// the main table equal to want (RFC 7084 WPD-5: the delegated prefix gets an
// unreachable route, so that traffic for its unused parts is dropped rather
// than sent back to the ISP by the default route; the LAN's /64s are more
// specific and win). It returns how many routes are installed.
func syncUnreachable(want []netip.Prefix) (int, error) {
	have, err := netlink.RouteListFiltered(unix.AF_INET6, &netlink.Route{
		Table: unix.RT_TABLE_MAIN, Protocol: routeProtocol, Type: unix.RTN_UNREACHABLE,
	}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TYPE)
	if err != nil {
		return 0, fmt.Errorf("wan: list unreachable routes: %w", err)
	}
	wanted := map[netip.Prefix]bool{}
	for _, p := range want {
		if p.IsValid() && p.Addr().Is6() && !p.Addr().Is4In6() {
			wanted[p.Masked()] = true
		}
	}
	var errs []error
	for _, r := range have {
		if r.Dst != nil {
			if p, ok := prefixOf(r.Dst); ok && wanted[p] {
				continue
			}
		}
		if err := netlink.RouteDel(&r); err != nil {
			errs = append(errs, fmt.Errorf("wan: remove unreachable %v: %w", r.Dst, err))
		}
	}
	n := 0
	for p := range wanted {
		r := unreachableRoute(p)
		if err := netlink.RouteReplace(&r); err != nil {
			errs = append(errs, fmt.Errorf("wan: install unreachable %v: %w", p, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func unreachableRoute(p netip.Prefix) netlink.Route {
	return netlink.Route{
		Dst:      &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)},
		Type:     unix.RTN_UNREACHABLE,
		Table:    unix.RT_TABLE_MAIN,
		Protocol: routeProtocol,
		Family:   unix.AF_INET6,
	}
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a, bits).Masked(), true
}
