package ndproxy

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

// routeProtocol marks the /128 routes this service installs
// (rtm_protocol), so that a restart after a crash finds and removes its
// predecessor's routes and nobody else's. services/wan uses 0x67.
const routeProtocol netlink.RouteProtocol = 0x6e

// kernel does the proxying the Linux way: proxy_ndp on the uplink, one
// proxy neighbour entry (NTF_PROXY) per LAN host address, which makes the
// kernel answer the upstream's NS for it, and a /128 route via the LAN, so
// that what the upstream then sends is forwarded to the host.
type kernel struct {
	wan, lan       string
	wanIdx, lanIdx int
	procSys        string
}

func openKernel(wan, lan, procSys string) (*kernel, error) {
	w, err := net.InterfaceByName(wan)
	if err != nil {
		return nil, fmt.Errorf("ndproxy: WAN %s: %w", wan, err)
	}
	l, err := net.InterfaceByName(lan)
	if err != nil {
		return nil, fmt.Errorf("ndproxy: LAN %s: %w", lan, err)
	}
	return &kernel{wan: wan, lan: lan, wanIdx: w.Index, lanIdx: l.Index, procSys: procSys}, nil
}

// enableProxyNDP turns proxy_ndp on for the uplink and for "all", and
// returns a function that puts the old values back. The kernel checks the
// uplink's (or all's) setting for multicast NS (ndisc_recv_ns), but only
// all's for a unicast NS to a proxied address, which it would otherwise
// forward to the host with a decremented hop limit (ip6_forward), so that
// the upstream's NUD probes (RFC 4861 §7.3.1) would fail.
func (k *kernel) enableProxyNDP() (restore func() error, err error) {
	paths := []string{
		filepath.Join(k.procSys, "net/ipv6/conf/all/proxy_ndp"),
		filepath.Join(k.procSys, "net/ipv6/conf", k.wan, "proxy_ndp"),
	}
	var old []string
	restore = func() error {
		var errs []error
		for i, v := range old {
			if v == "1" {
				continue
			}
			if err := os.WriteFile(paths[i], []byte(v), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("ndproxy: restore %s: %w", paths[i], err))
			}
		}
		return errors.Join(errs...)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return restore, fmt.Errorf("ndproxy: sysctl: %w", err)
		}
		old = append(old, strings.TrimSpace(string(b)))
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
			return restore, fmt.Errorf("ndproxy: sysctl %s: %w", p, err)
		}
	}
	return restore, nil
}

func ip(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

func (k *kernel) hostRoute(a netip.Addr) *netlink.Route {
	return &netlink.Route{
		LinkIndex: k.lanIdx, Dst: &net.IPNet{IP: ip(a), Mask: net.CIDRMask(128, 128)},
		Protocol: routeProtocol, Table: unix.RT_TABLE_MAIN, Scope: netlink.SCOPE_UNIVERSE,
	}
}

// add proxies a: the kernel answers NS for it on the uplink and routes it
// to the LAN.
func (k *kernel) add(a netip.Addr) error {
	if err := netlink.RouteReplace(k.hostRoute(a)); err != nil {
		return fmt.Errorf("ndproxy: route %s via %s: %w", a, k.lan, err)
	}
	n := &netlink.Neigh{LinkIndex: k.wanIdx, Family: netlink.FAMILY_V6, Flags: netlink.NTF_PROXY, IP: ip(a)}
	if err := netlink.NeighSet(n); err != nil {
		return fmt.Errorf("ndproxy: proxy entry %s on %s: %w", a, k.wan, err)
	}
	return nil
}

// remove undoes add; what is already gone is no error.
func (k *kernel) remove(a netip.Addr) error {
	var errs []error
	n := &netlink.Neigh{LinkIndex: k.wanIdx, Family: netlink.FAMILY_V6, Flags: netlink.NTF_PROXY, IP: ip(a)}
	if err := netlink.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("ndproxy: delete proxy entry %s: %w", a, err))
	}
	if err := netlink.RouteDel(k.hostRoute(a)); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("ndproxy: delete route %s: %w", a, err))
	}
	return errors.Join(errs...)
}

// flush removes every proxy entry on the uplink and every route of this
// service on the LAN: a crashed predecessor's, or all of them on exit. The
// gizmo owns its uplink; no one else proxies there.
func (k *kernel) flush() error {
	var errs []error
	proxies, err := netlink.NeighProxyList(k.wanIdx, netlink.FAMILY_V6)
	if err != nil {
		errs = append(errs, fmt.Errorf("ndproxy: list proxy entries: %w", err))
	}
	for _, n := range proxies {
		if err := netlink.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("ndproxy: delete proxy entry %s: %w", n.IP, err))
		}
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V6,
		&netlink.Route{LinkIndex: k.lanIdx, Protocol: routeProtocol, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		errs = append(errs, fmt.Errorf("ndproxy: list routes: %w", err))
	}
	for _, r := range routes {
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("ndproxy: delete route %s: %w", r.Dst, err))
		}
	}
	return errors.Join(errs...)
}

// neighbours returns the IPv6 neighbour entries (not proxies) of an
// interface by address.
func neighbours(ifindex int) (map[netip.Addr]int, error) {
	list, err := netlink.NeighList(ifindex, netlink.FAMILY_V6)
	if err != nil {
		return nil, fmt.Errorf("ndproxy: list neighbours: %w", err)
	}
	out := make(map[netip.Addr]int, len(list))
	for _, n := range list {
		if n.Flags&netlink.NTF_PROXY != 0 {
			continue
		}
		if a, ok := netip.AddrFromSlice(n.IP); ok {
			out[a.Unmap()] = n.State
		}
	}
	return out, nil
}

// present are the states in which an entry shows a neighbour answered
// recently (RFC 4861 §7.3.2), or was configured.
const present = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT

// probe asks the kernel to verify that a LAN host still answers for a
// (NTF_USE: the entry is created if need be and resolved, RFC 4861 §7.3.3),
// so that a gone host ends in FAILED, which the service watches for.
func (k *kernel) probe(a netip.Addr) error {
	n := &netlink.Neigh{LinkIndex: k.lanIdx, Family: netlink.FAMILY_V6, Flags: netlink.NTF_USE, IP: ip(a)}
	if err := netlink.NeighSet(n); err != nil {
		return fmt.Errorf("ndproxy: probe %s on %s: %w", a, k.lan, err)
	}
	return nil
}
