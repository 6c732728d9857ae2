package clat

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Interface is the CLAT's link: IPv4 to the internet is routed out of it,
// and clat_out on its egress translates what leaves. It is one end of a
// veth pair (gokrazy's kernels build veth but not dummy); nothing ever
// reaches the other end, Peer.
const (
	Interface = "clat0"
	Peer      = "clat0-peer"
)

// routeProtocol marks the routes this service installs (rtm_protocol), so
// that a restart after a crash finds its own leftovers and leaves
// everyone else's routes alone (see services/wan).
const routeProtocol netlink.RouteProtocol = 0x63

// routeMetric keeps the CLAT's default route behind one from a DHCPv4
// lease, should both exist for a moment while the line changes.
const routeMetric = 2048

// kernel holds the CLAT's link, addresses and routes.
type kernel struct {
	wan string
	// procSys is /proc/sys (tests may point elsewhere).
	procSys string
	// claimed is the address held on the WAN interface, if any.
	claimed netip.Addr
}

// setup makes clat0 exist with the plan's MTU, no ARP (nothing answers on
// the other end; the program writes the Ethernet header), no IPv6, the
// CLAT's IPv4 address, and returns its index. The routes come later
// (routes), once the program is attached.
func (k *kernel) setup(p Plan) (int, error) {
	l, err := netlink.LinkByName(Interface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return 0, fmt.Errorf("clat: %s: %w", Interface, err)
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: Interface, MTU: p.MTU()}, PeerName: Peer}
		if err := netlink.LinkAdd(veth); err != nil {
			return 0, fmt.Errorf("clat: create %s: %w", Interface, err)
		}
		if l, err = netlink.LinkByName(Interface); err != nil {
			return 0, fmt.Errorf("clat: %s: %w", Interface, err)
		}
	}
	peer, err := netlink.LinkByName(Peer)
	if err != nil {
		return 0, fmt.Errorf("clat: %s: %w", Peer, err)
	}
	for _, name := range []string{Interface, Peer} {
		// No link-local address, no DAD, no MLD: the link carries
		// only the IPv4 the program takes away.
		if err := k.sysctl("net/ipv6/conf/"+name+"/disable_ipv6", "1"); err != nil {
			return 0, err
		}
	}
	for _, x := range []netlink.Link{l, peer} {
		if x.Attrs().MTU != p.MTU() {
			if err := netlink.LinkSetMTU(x, p.MTU()); err != nil {
				return 0, fmt.Errorf("clat: MTU of %s: %w", x.Attrs().Name, err)
			}
		}
		if err := netlink.LinkSetARPOff(x); err != nil {
			return 0, fmt.Errorf("clat: ARP off on %s: %w", x.Attrs().Name, err)
		}
		if err := netlink.LinkSetUp(x); err != nil {
			return 0, fmt.Errorf("clat: bring up %s: %w", x.Attrs().Name, err)
		}
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: IPv4.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := netlink.AddrReplace(l, a); err != nil {
		return 0, fmt.Errorf("clat: address %s on %s: %w", IPv4, Interface, err)
	}
	// Translated replies come in on the WAN, which has no IPv4 address:
	// reverse path filtering, strict or loose, drops every one of them
	// then (the kernel's __fib_validate_source has no address to match
	// and takes its last resort). The kernel uses the larger of "all" and
	// the interface's value, so both must be 0. The firewall does the
	// BCP 38 checks itself (services/firewall).
	for _, c := range []string{"all", k.wan} {
		if err := k.sysctl("net/ipv4/conf/"+c+"/rp_filter", "0"); err != nil {
			return 0, err
		}
	}
	return l.Attrs().Index, nil
}

// routes makes the service's IPv4 routes: the default route out of clat0
// and unreachable routes for the plan's never-translated destinations.
func (k *kernel) routes(p Plan, clat0 int) error {
	want := []netlink.Route{{
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		LinkIndex: clat0, Scope: netlink.SCOPE_LINK, Src: IPv4.AsSlice(), Priority: routeMetric,
		Table: unix.RT_TABLE_MAIN, Protocol: routeProtocol, Family: unix.AF_INET,
	}}
	for _, u := range p.Unreachable {
		u = u.Masked()
		want = append(want, netlink.Route{
			Dst:  &net.IPNet{IP: u.Addr().AsSlice(), Mask: net.CIDRMask(u.Bits(), 32)},
			Type: unix.RTN_UNREACHABLE, Table: unix.RT_TABLE_MAIN, Protocol: routeProtocol, Family: unix.AF_INET,
		})
	}
	return syncRoutes(want)
}

// syncRoutes makes the IPv4 routes marked routeProtocol equal want.
func syncRoutes(want []netlink.Route) error {
	have, err := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: routeProtocol},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("clat: list routes: %w", err)
	}
	var errs []error
	for _, r := range have {
		if !routeWanted(want, r) {
			if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("clat: remove route %v: %w", r.Dst, err))
			}
		}
	}
	for _, r := range want {
		if err := netlink.RouteReplace(&r); err != nil {
			errs = append(errs, fmt.Errorf("clat: route %v: %w", r.Dst, err))
		}
	}
	return errors.Join(errs...)
}

// routeWanted reports whether the kernel's route r is one of want. The
// kernel lists a default route with no destination or with 0.0.0.0/0.
func routeWanted(want []netlink.Route, r netlink.Route) bool {
	dst := "0.0.0.0/0"
	if r.Dst != nil {
		dst = r.Dst.String()
	}
	for _, w := range want {
		if w.Dst.String() == dst && w.Type == r.Type && w.LinkIndex == r.LinkIndex {
			return true
		}
	}
	return false
}

// claim holds a on the WAN interface, deprecated (RFC 6724 rule 3: the
// gizmo's own connections never pick it as source) and without a prefix
// route: the kernel then answers the ISP router's neighbour solicitations
// for it. Invalid a drops the claim.
func (k *kernel) claim(a netip.Addr) error {
	if a == k.claimed {
		return nil
	}
	l, err := netlink.LinkByName(k.wan)
	if err != nil {
		return fmt.Errorf("clat: %s: %w", k.wan, err)
	}
	if k.claimed.IsValid() {
		old := &netlink.Addr{IPNet: &net.IPNet{IP: k.claimed.AsSlice(), Mask: net.CIDRMask(128, 128)}}
		if err := netlink.AddrDel(l, old); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("clat: release %s on %s: %w", k.claimed, k.wan, err)
		}
		k.claimed = netip.Addr{}
	}
	if !a.IsValid() {
		return nil
	}
	na := &netlink.Addr{
		IPNet:       &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(128, 128)},
		Flags:       unix.IFA_F_NOPREFIXROUTE,
		PreferedLft: 0,
		ValidLft:    0xffffffff,
	}
	if err := netlink.AddrReplace(l, na); err != nil {
		return fmt.Errorf("clat: claim %s on %s: %w", a, k.wan, err)
	}
	k.claimed = a
	return nil
}

// teardown removes what setup, routes and claim made. Deleting clat0
// deletes its peer, its address and its routes.
func (k *kernel) teardown() error {
	var errs []error
	if err := syncRoutes(nil); err != nil {
		errs = append(errs, err)
	}
	if l, err := netlink.LinkByName(Interface); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("clat: delete %s: %w", Interface, err))
		}
	}
	if err := k.claim(netip.Addr{}); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (k *kernel) sysctl(path, value string) error {
	root := k.procSys
	if root == "" {
		root = "/proc/sys"
	}
	p := filepath.Join(root, path)
	cur, err := os.ReadFile(p)
	if err == nil && strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("clat: sysctl %s: %w", path, err)
	}
	return nil
}

// linkIndex is the interface's index, 0 when it does not exist.
func linkIndex(name string) int {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0
	}
	return l.Attrs().Index
}
