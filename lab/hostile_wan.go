package main

// Attackers for the gizmo's WAN side and for its roles, run inside the lab's
// namespaces with `ip netns exec` (lab/integration/hostile_wan_test.go,
// lab/integration/zeroconf/zeroconf_rogue_test.go):
//
//	lab ra-flood -interface gizmo0 -sources 1000
//	lab ra-flood -interface gizmo0 -sources 1000 -withdraw
//	lab rogue-upstream -interface eth0 -ra -dhcp4
//
// ra-flood sends Router Advertisements from as many link-local sources as
// asked, each with a default route and one option of every kind, every
// lifetime infinite: a host on the ISP's link filling the gizmo's upstream
// tables. With -withdraw every source sends the same RA with all lifetimes
// 0, which removes what it announced (RFC 4861 §6.3.4, RFC 8106 §5.1, RFC
// 4191 §2.3, RFC 8781 §4), so that a shared lab is left as it was. It
// prints what it sent.
//
// rogue-upstream is an upstream where none belongs: on a LAN port it
// advertises a default route (the ISP's RA, `lab isp-ra`) and runs a DHCPv4
// server, as a home router plugged in the wrong way round, or an attacker,
// would. It runs until it is stopped.

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/sockopt"
	"codeberg.org/monostack/gizmo/lab/netlab"
)

func cmdRAFlood(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ra-flood", flag.ContinueOnError)
	ifname := fs.String("interface", netlab.ISPWAN, "interface to flood")
	sources := fs.Int("sources", 1000, "link-local sources, one RA each per round")
	rounds := fs.Int("rounds", 2, "how often every source sends")
	withdraw := fs.Bool("withdraw", false, "send every source's withdrawal (all lifetimes 0) instead, once")
	interval := fs.Duration("interval", 0, "pause between two RAs (0: only a short one every hundred)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sources < 1 || *sources > 1<<16 {
		return fmt.Errorf("ra-flood: -sources %d: want 1..65536", *sources)
	}
	ifi, err := net.InterfaceByName(*ifname)
	if err != nil {
		return fmt.Errorf("ra-flood: %w", err)
	}
	pc, err := rawICMPv6(ifi)
	if err != nil {
		return err
	}
	defer pc.Close()
	if *withdraw {
		*rounds = 1
	}
	sent := 0
	for range *rounds {
		for i := range *sources {
			b, err := ndp.MarshalMessage(floodRA(i, !*withdraw))
			if err != nil {
				return err
			}
			cm := &ipv6.ControlMessage{Src: floodSource(i).AsSlice(), IfIndex: ifi.Index, HopLimit: ndp.HopLimit}
			dst := &net.IPAddr{IP: net.IPv6linklocalallnodes, Zone: ifi.Name}
			if err := writeRetry(ctx, func() error {
				_, err := pc.WriteTo(b, cm, dst)
				return err
			}); err != nil {
				return fmt.Errorf("ra-flood: after %d: %w", sent, err)
			}
			sent++
			if *interval > 0 {
				time.Sleep(*interval)
			} else {
				pace(sent)
			}
		}
	}
	what := "RAs"
	if *withdraw {
		what = "withdrawals"
	}
	fmt.Printf("sent %d %s from %d link-local sources on %s\n", sent, what, *sources, *ifname)
	return nil
}

// rawICMPv6 opens a raw ICMPv6 socket that may send from any source
// address (IPV6_FREEBIND: the flood's link-local sources are not
// configured); the kernel fills in the ICMPv6 checksum (RFC 3542 §3.1).
func rawICMPv6(ifi *net.Interface) (*ipv6.PacketConn, error) {
	lc := net.ListenConfig{Control: sockopt.Control(sockopt.Freebind, sockopt.BindToDevice(ifi.Name))}
	c, err := lc.ListenPacket(context.Background(), "ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("ra-flood: raw ICMPv6 socket: %w", err)
	}
	pc := ipv6.NewPacketConn(c)
	// The flood is for the other side: this namespace's own kernel must
	// not take it in as well.
	if err := pc.SetMulticastLoopback(false); err != nil {
		c.Close()
		return nil, fmt.Errorf("ra-flood: multicast loopback: %w", err)
	}
	return pc, nil
}

// floodSource is the i-th source, fe80::f:<i>, never an EUI-64 address
// of the lab's fixed MACs.
func floodSource(i int) netip.Addr {
	b := netip.MustParseAddr("fe80::f:0:0").As16()
	binary.BigEndian.PutUint32(b[12:], uint32(i))
	return netip.AddrFrom16(b)
}

// floodRA is source i's RA: a default route (medium preference, like the
// real router's), an on-link PIO that SLAAC ignores (A=0: the kernel on
// the other side configures no address from it), an RDNSS, a RIO and a
// PREF64, each distinct per source and in documentation space (RFC 3849).
// No source link-layer option: the other side's kernel learns no
// neighbour from it. With live false, every lifetime is 0.
func floodRA(i int, live bool) *ndp.RouterAdvertisement {
	life, router, pref64 := ndp.Infinity, 1800*time.Second, 8*8191*time.Second
	if !live {
		life, router, pref64 = 0, 0, 0
	}
	// 2001:db8:f<hi>:<lo>::/64 and friends: 4096 × 65536 distinct prefixes.
	p := netip.MustParseAddr("2001:db8:f000::").As16()
	binary.BigEndian.PutUint16(p[4:], 0xf000|uint16(i>>16)&0x0fff)
	binary.BigEndian.PutUint16(p[6:], uint16(i))
	pfx := netip.AddrFrom16(p)
	dns := p
	dns[15] = 0x53
	rio := p
	rio[8] = 0x01
	n64 := p
	n64[8] = 0x64
	return &ndp.RouterAdvertisement{
		CurrentHopLimit: 64, RouterLifetime: router, RouterSelectionPreference: ndp.Medium,
		Options: []ndp.Option{
			&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, ValidLifetime: life, PreferredLifetime: life, Prefix: pfx},
			&ndp.RecursiveDNSServer{Lifetime: life, Servers: []netip.Addr{netip.AddrFrom16(dns)}},
			&ndp.RouteInformation{PrefixLength: 128, Preference: ndp.Medium, RouteLifetime: life, Prefix: netip.AddrFrom16(rio)},
			&ndp.PREF64{Lifetime: pref64, Prefix: netip.PrefixFrom(netip.AddrFrom16(n64), 96)},
		},
	}
}

// rogueDHCP4 is the rogue DHCPv4 server's addressing: it claims the ISP's
// WAN network, as a second home router's WAN-facing defaults might.
var (
	rogueDHCP4Addr = netip.MustParsePrefix("192.0.2.254/24")
	rogueDHCP4Pool = netip.MustParseAddr("192.0.2.230")
)

func cmdRogueUpstream(ctx context.Context, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("rogue-upstream", flag.ContinueOnError)
	ifname := fs.String("interface", netlab.HostIf, "the LAN interface to serve on")
	ra := fs.Bool("ra", true, "advertise a default route (RA)")
	dhcp4 := fs.Bool("dhcp4", true, "answer DHCPv4 DISCOVERs and REQUESTs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*ra && !*dhcp4 {
		return errors.New("rogue-upstream: neither -ra nor -dhcp4")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	if *ra {
		wg.Go(func() { errs <- netlab.RunISPRA(ctx, logger, *ifname, netip.Prefix{}) })
	}
	if *dhcp4 {
		wg.Go(func() { errs <- serveRogueDHCP4(ctx, *ifname) })
	}
	fmt.Printf("rogue upstream on %s: ra=%v dhcp4=%v\n", *ifname, *ra, *dhcp4)
	var err error
	select {
	case err = <-errs:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	if ctx.Err() != nil && err == nil {
		return nil
	}
	return err
}

// serveRogueDHCP4 answers every DISCOVER with an OFFER and every REQUEST
// with an ACK of one address, from an address it adds to ifname for as
// long as it runs.
func serveRogueDHCP4(ctx context.Context, ifname string) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("rogue-upstream: %w", err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: rogueDHCP4Addr.Addr().AsSlice(), Mask: net.CIDRMask(rogueDHCP4Addr.Bits(), 32)}}
	if err := netlink.AddrAdd(link, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("rogue-upstream: address %v on %s: %w", rogueDHCP4Addr, ifname, err)
	}
	defer netlink.AddrDel(link, addr)
	server := net.IP(rogueDHCP4Addr.Addr().AsSlice())
	handler := func(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
		var typ dhcpv4.MessageType
		switch m.MessageType() {
		case dhcpv4.MessageTypeDiscover:
			typ = dhcpv4.MessageTypeOffer
		case dhcpv4.MessageTypeRequest:
			typ = dhcpv4.MessageTypeAck
		default:
			return
		}
		reply, err := dhcpv4.NewReplyFromRequest(m,
			dhcpv4.WithMessageType(typ),
			dhcpv4.WithYourIP(rogueDHCP4Pool.AsSlice()),
			dhcpv4.WithServerIP(server),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)),
			dhcpv4.WithNetmask(net.CIDRMask(rogueDHCP4Addr.Bits(), 32)),
			dhcpv4.WithRouter(server),
			dhcpv4.WithLeaseTime(600),
		)
		if err != nil {
			return
		}
		conn.WriteTo(reply.ToBytes(), peer)
	}
	s, err := server4.NewServer(ifname, &net.UDPAddr{Port: dhcpv4.ServerPort}, handler)
	if err != nil {
		return fmt.Errorf("rogue-upstream: DHCPv4 server on %s: %w", ifname, err)
	}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	if err := s.Serve(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("rogue-upstream: DHCPv4 server: %w", err)
	}
	return nil
}
