package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv6"
)

// Ports lists the network ports that can take a role: Ethernet-like links
// that are not loopback, bridges, or the gizmo's own virtual devices. Ports
// already enslaved to lan0 are included: detection runs before they carry
// traffic.
func Ports() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("roles: list links: %w", err)
	}
	var out []string
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || len(a.HardwareAddr) != 6 {
			continue
		}
		switch l.Type() {
		case "device", "veth":
		default:
			continue // bridges, tunnels, tun/tap of a CLAT, dummy devices
		}
		out = append(out, a.Name)
	}
	slices.Sort(out)
	return out, nil
}

// Probe finds out what port hears within timeout: it brings the port up,
// solicits routers (RFC 4861 §6.3.7) and sends one DHCPv4 DISCOVER.
func Probe(ctx context.Context, port string, timeout time.Duration, log *slog.Logger) Evidence {
	ev := Evidence{Port: port}
	link, err := netlink.LinkByName(port)
	if err != nil {
		log.Debug("probe: no such port", "port", port, "err", err)
		return ev
	}
	if link.Attrs().MasterIndex != 0 {
		// Probe the port itself, not through the bridge.
		netlink.LinkSetNoMaster(link)
	}
	netlink.LinkSetUp(link)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !awaitCarrier(ctx, port) {
		return ev
	}
	ev.LinkUp = true
	var wg sync.WaitGroup
	wg.Go(func() { ev.AnyRouterAdvertisement, ev.RouterAdvertisement = solicitRouters(ctx, port, log) })
	wg.Go(func() { ev.DHCPv4Server = discoverDHCPv4(ctx, port, log) })
	wg.Wait()
	return ev
}

// WaitCarrier brings port up and reports whether it has carrier within
// timeout: a port whose cable leads somewhere.
func WaitCarrier(ctx context.Context, port string, timeout time.Duration) bool {
	link, err := netlink.LinkByName(port)
	if err != nil {
		return false
	}
	netlink.LinkSetUp(link)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return awaitCarrier(ctx, port)
}

// awaitCarrier polls port until it has carrier (true) or ctx is done
// (false).
func awaitCarrier(ctx context.Context, port string) bool {
	for !carrier(port) {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return true
}

func carrier(port string) bool {
	l, err := netlink.LinkByName(port)
	if err != nil {
		return false
	}
	return l.Attrs().OperState == netlink.OperUp || l.Attrs().OperState == netlink.OperUnknown && l.Attrs().Flags&net.FlagRunning != 0
}

// solicitRouters sends Router Solicitations from the unspecified address,
// which needs no DAD and no link-local address yet, and reports whether any
// RA arrived and whether one offered a default route.
func solicitRouters(ctx context.Context, port string, log *slog.Logger) (any, defaultRouter bool) {
	ifi, err := net.InterfaceByName(port)
	if err != nil {
		return false, false
	}
	conn, _, err := ndp.Listen(ifi, ndp.Unspecified)
	if err != nil {
		log.Debug("probe: cannot listen for RAs", "port", port, "err", err)
		return false, false
	}
	defer conn.Close()
	if err := conn.JoinGroup(netip.MustParseAddr("ff02::1")); err != nil {
		log.Debug("probe: join all-nodes", "port", port, "err", err)
	}
	// The socket is not bound to the port: keep only what arrived on it.
	if err := conn.SetControlMessage(ipv6.FlagInterface, true); err != nil {
		log.Debug("probe: control messages", "port", port, "err", err)
		return false, false
	}
	own := ownAddrs(ifi)
	go func() {
		// RFC 4861 §6.3.7: up to MAX_RTR_SOLICITATIONS (3), RTR_SOLICITATION_INTERVAL apart;
		// a probe that is shorter sends them faster.
		for i := 0; i < 3; i++ {
			conn.WriteTo(&ndp.RouterSolicitation{}, nil, netip.MustParseAddr("ff02::2"))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	deadline, _ := ctx.Deadline()
	conn.SetReadDeadline(deadline)
	for {
		msg, cm, from, err := conn.ReadFrom()
		if err != nil {
			return any, defaultRouter
		}
		ra, ok := msg.(*ndp.RouterAdvertisement)
		if !ok || cm == nil || cm.IfIndex != ifi.Index || slices.Contains(own, from) {
			continue
		}
		any = true
		if ra.RouterLifetime > 0 {
			return true, true
		}
	}
}

func ownAddrs(ifi *net.Interface) []netip.Addr {
	var out []netip.Addr
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

func discoverDHCPv4(ctx context.Context, port string, log *slog.Logger) bool {
	deadline, _ := ctx.Deadline()
	c, err := nclient4.New(port, nclient4.WithTimeout(time.Until(deadline)), nclient4.WithRetry(1))
	if err != nil {
		log.Debug("probe: DHCPv4 client", "port", port, "err", err)
		return false
	}
	defer c.Close()
	_, err = c.DiscoverOffer(ctx)
	return err == nil
}

// Detect probes every port in parallel and decides the roles.
func Detect(ctx context.Context, ports []string, timeout time.Duration, log *slog.Logger) (Roles, []Evidence, error) {
	return DetectWith(ctx, ports, timeout, Probe, log)
}

// DetectWith is Detect with another probe (VLANProbe).
func DetectWith(ctx context.Context, ports []string, timeout time.Duration, probe ProbeFunc, log *slog.Logger) (Roles, []Evidence, error) {
	evidence := make([]Evidence, len(ports))
	var wg sync.WaitGroup
	for i, p := range ports {
		wg.Go(func() { evidence[i] = probe(ctx, p, timeout, log) })
	}
	wg.Wait()
	r, err := Decide(evidence)
	return r, evidence, err
}

// Apply renames the WAN port to uplink0 and bridges every LAN port into
// lan0. In existing-network mode the one port is both, and keeps its name
// uplink0 for the WAN role; the LAN services use it too. Roles without a WAN
// (no port heard an upstream) get a placeholder uplink0 that leads nowhere:
// an empty bridge, which every kernel that bridges the LAN has, and which
// like an unplugged port has no carrier. The WAN services wait on it as on
// an unplugged uplink while the LAN runs; a real WAN replaces it.
func Apply(r Roles) (wan, lan string, err error) {
	// The LAN ports are found before any renaming: the old WAN among them
	// gives up the name uplink0 to the new one (rename).
	var lanLinks []netlink.Link
	var errs []error
	for _, p := range r.LANPorts {
		l, err := netlink.LinkByName(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("roles: LAN port %s: %w", p, err))
			continue
		}
		lanLinks = append(lanLinks, l)
	}
	if existing, err := netlink.LinkByName(WANName); err == nil && isPlaceholder(existing) && r.WAN != "" {
		if err := netlink.LinkDel(existing); err != nil {
			return "", "", fmt.Errorf("roles: remove the placeholder %s: %w", WANName, err)
		}
	}
	switch {
	case r.WAN == "":
		if err := placeholderWAN(); err != nil {
			return "", "", err
		}
	case r.WAN != WANName:
		if err := rename(r.WAN, WANName); err != nil {
			return "", "", err
		}
	}
	if l, err := netlink.LinkByName(WANName); err == nil && l.Attrs().MasterIndex != 0 {
		// The WAN leaves the LAN bridge it was in (a LAN port before).
		if err := netlink.LinkSetNoMaster(l); err != nil {
			return "", "", fmt.Errorf("roles: take %s out of %s: %w", WANName, LANName, err)
		}
	}
	if r.ExistingNetwork {
		return WANName, WANName, nil
	}
	br, err := netlink.LinkByName(LANName)
	if err != nil {
		b := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
		b.Name = LANName
		if err := netlink.LinkAdd(b); err != nil {
			return "", "", fmt.Errorf("roles: create bridge %s: %w", LANName, err)
		}
		if br, err = netlink.LinkByName(LANName); err != nil {
			return "", "", fmt.Errorf("roles: %w", err)
		}
	} else if br.Type() != "bridge" {
		return "", "", fmt.Errorf("roles: %s exists and is a %s, not a bridge", LANName, br.Type())
	}
	for _, l := range lanLinks {
		// By index: the link may have been renamed since it was found.
		if err := netlink.LinkSetMaster(l, br); err != nil {
			errs = append(errs, fmt.Errorf("roles: bridge %s into %s: %w", l.Attrs().Name, LANName, err))
		}
		netlink.LinkSetUp(l)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		errs = append(errs, fmt.Errorf("roles: bring up %s: %w", LANName, err))
	}
	return WANName, LANName, errors.Join(errs...)
}

// isPlaceholder reports whether l is the uplink0 of roles without a WAN: a
// real port is never a bridge (Ports).
func isPlaceholder(l netlink.Link) bool { return l.Type() == "bridge" }

// PlaceholderWAN reports whether uplink0 is absent or the placeholder.
func PlaceholderWAN() bool {
	l, err := netlink.LinkByName(WANName)
	return err != nil || isPlaceholder(l)
}

// placeholderWAN makes the placeholder uplink0 of roles without a WAN.
func placeholderWAN() error {
	if l, err := netlink.LinkByName(WANName); err == nil {
		if !isPlaceholder(l) {
			return fmt.Errorf("roles: %s exists and is a %s, not the placeholder", WANName, l.Type())
		}
		return netlink.LinkSetUp(l)
	}
	d := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
	d.Name = WANName
	if err := netlink.LinkAdd(d); err != nil {
		return fmt.Errorf("roles: create the placeholder %s: %w", WANName, err)
	}
	if err := netlink.LinkSetUp(d); err != nil {
		return fmt.Errorf("roles: bring up the placeholder %s: %w", WANName, err)
	}
	return nil
}

func rename(from, to string) error {
	l, err := netlink.LinkByName(from)
	if err != nil {
		return fmt.Errorf("roles: %s: %w", from, err)
	}
	if existing, err := netlink.LinkByName(to); err == nil && existing.Attrs().Index != l.Attrs().Index {
		// A stale uplink0 (a previous WAN that lost its role) gives up the name.
		tmp := "old" + strings.TrimPrefix(to, "uplink")
		if err := renameLink(existing, fmt.Sprintf("%s-%d", tmp, existing.Attrs().Index)); err != nil {
			return err
		}
	}
	return renameLink(l, to)
}

func renameLink(l netlink.Link, to string) error {
	// A link must be down to be renamed.
	if err := netlink.LinkSetDown(l); err != nil {
		return fmt.Errorf("roles: down %s: %w", l.Attrs().Name, err)
	}
	if err := netlink.LinkSetName(l, to); err != nil {
		return fmt.Errorf("roles: rename %s to %s: %w", l.Attrs().Name, to, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("roles: up %s: %w", to, err)
	}
	return nil
}
