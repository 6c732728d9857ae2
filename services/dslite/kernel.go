package dslite

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The kernel's side of the softwire: the B4's 192.0.0.2/29 on the WAN
// interface and the IPv4 default route via the AFTR's 192.0.0.1, with the
// softwire's MTU (MTU4). Nothing answers ARP for 192.0.0.1, so a permanent
// neighbour entry gives it a made-up MAC address: the kernel then emits
// the IPv4 packet on the WAN at once, and dslite_out, on the interface's
// egress, replaces the Ethernet header with the one towards the AFTR's
// IPv6 next hop. The route's MTU makes the kernel answer an IPv4 packet
// with DF that does not fit with Fragmentation Needed (RFC 1191), and
// fragment the others, before they reach the program; its source makes
// the NAT44 masquerade to 192.0.0.2.

// fakeNextHopMAC is the permanent neighbour entry's address for 192.0.0.1;
// locally administered (RFC 7042 §2.1), and replaced by dslite_out before
// any frame leaves.
var fakeNextHopMAC = net.HardwareAddr{0x02, 0x00, 0xc0, 0x00, 0x00, 0x01}

// routeProtocol marks the default route as the softwire's, so that removal
// touches no other (RTPROT_STATIC: set by an administrator, here the
// daemon).
const routeProtocol = unix.RTPROT_STATIC

func b4Addr() *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: B44.AsSlice(), Mask: net.CIDRMask(Prefix4.Bits(), 32)}}
}

func defaultRoute(ifindex, mtu int) *netlink.Route {
	return &netlink.Route{
		LinkIndex: ifindex,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        AFTR4.AsSlice(),
		Src:       B44.AsSlice(),
		MTU:       mtu,
		Protocol:  routeProtocol,
		Family:    unix.AF_INET,
		Table:     unix.RT_TABLE_MAIN,
	}
}

// installKernel sets up the address, the neighbour entry and the route.
func installKernel(s Softwire) error {
	l, err := netlink.LinkByIndex(s.Ifindex)
	if err != nil {
		return fmt.Errorf("dslite: WAN ifindex %d: %w", s.Ifindex, err)
	}
	if err := netlink.AddrReplace(l, b4Addr()); err != nil {
		return fmt.Errorf("dslite: add %s to %s: %w", B44, s.Interface, err)
	}
	n := &netlink.Neigh{LinkIndex: s.Ifindex, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: AFTR4.AsSlice(), HardwareAddr: fakeNextHopMAC}
	if err := netlink.NeighSet(n); err != nil {
		return fmt.Errorf("dslite: neighbour %s on %s: %w", AFTR4, s.Interface, err)
	}
	if err := netlink.RouteReplace(defaultRoute(s.Ifindex, s.MTU4())); err != nil {
		return fmt.Errorf("dslite: default route via %s: %w", AFTR4, err)
	}
	return nil
}

// removeKernel takes away what installKernel set up on ifindex; what is
// gone already (the interface with it) is no error.
func removeKernel(ifindex int) error {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil
		}
		return fmt.Errorf("dslite: WAN ifindex %d: %w", ifindex, err)
	}
	var errs []error
	if err := netlink.RouteDel(defaultRoute(ifindex, 0)); err != nil && !gone(err) {
		errs = append(errs, fmt.Errorf("dslite: remove default route: %w", err))
	}
	n := &netlink.Neigh{LinkIndex: ifindex, Family: unix.AF_INET, IP: AFTR4.AsSlice()}
	if err := netlink.NeighDel(n); err != nil && !gone(err) {
		errs = append(errs, fmt.Errorf("dslite: remove neighbour %s: %w", AFTR4, err))
	}
	if err := netlink.AddrDel(l, b4Addr()); err != nil && !gone(err) {
		errs = append(errs, fmt.Errorf("dslite: remove %s: %w", B44, err))
	}
	return errors.Join(errs...)
}

func gone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV)
}
