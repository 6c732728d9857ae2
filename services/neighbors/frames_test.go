package neighbors

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"

	"codeberg.org/monostack/gizmo/internal/ethframe"
	"codeberg.org/monostack/gizmo/internal/filtertest"
)

var (
	hostMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0x02, 0x10}
	otherMAC = net.HardwareAddr{0x02, 0, 0, 0, 0x02, 0x20}
	gizmoMAC = net.HardwareAddr{0x02, 0, 0, 0, 0x02, 0x01}
	hostLL   = netip.MustParseAddr("fe80::ff:fe00:210")
	hostGUA  = netip.MustParseAddr("2001:db8:1000::10")
	gizmoLL  = netip.MustParseAddr("fe80::ff:fe00:201")
)

func ndTestFrame(t testing.TB, src net.HardwareAddr, from, to netip.Addr, hop uint8, m ndp.Message) []byte {
	t.Helper()
	icmp, err := ndp.MarshalMessageChecksum(m, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return ethframe.Ethernet(ethframe.MulticastMAC(to), src, ethframe.TypeIPv6, ethframe.IPv6(from, to, hop, 58, icmp))
}

func arpTestFrame(src, sender net.HardwareAddr, senderIP netip.Addr) []byte {
	return ethframe.Ethernet(ethframe.Broadcast, src, ethframe.TypeARP,
		ethframe.ARP(ethframe.ARPRequest, sender, senderIP, make(net.HardwareAddr, 6), netip.MustParseAddr("203.0.113.129")))
}

func sllao(mac net.HardwareAddr) []ndp.Option {
	return []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}
}

func TestParseFrame(t *testing.T) {
	allRouters := netip.MustParseAddr("ff02::2")
	sn := ethframe.SolicitedNode(gizmoLL)
	badChecksum := ndTestFrame(t, hostMAC, hostLL, allRouters, 255, &ndp.RouterSolicitation{})
	badChecksum[len(badChecksum)-1] ^= 0xff
	for _, tc := range []struct {
		name   string
		frame  []byte
		want   netip.Addr
		reason string
	}{
		{"RFC 4861 6.1.1: an RS from a link-local source with its own SLLAO shows the source",
			ndTestFrame(t, hostMAC, hostLL, allRouters, 255, &ndp.RouterSolicitation{Options: sllao(hostMAC)}), hostLL, ""},
		{"an RS whose SLLAO names another MAC than the frame's source shows nothing",
			ndTestFrame(t, hostMAC, hostLL, allRouters, 255, &ndp.RouterSolicitation{Options: sllao(otherMAC)}), netip.Addr{}, ReasonLLAddrMismatch},
		{"RFC 4861 7.2.2: an NS from the address the host talks from shows that address",
			ndTestFrame(t, hostMAC, hostGUA, sn, 255, &ndp.NeighborSolicitation{TargetAddress: gizmoLL, Options: sllao(hostMAC)}), hostGUA, ""},
		{"an NS whose SLLAO names another MAC shows nothing",
			ndTestFrame(t, hostMAC, hostGUA, sn, 255, &ndp.NeighborSolicitation{TargetAddress: gizmoLL, Options: sllao(otherMAC)}), netip.Addr{}, ReasonLLAddrMismatch},
		{"RFC 4861 7.2.4: a solicited NA without TLLAO shows its source",
			ndTestFrame(t, hostMAC, hostGUA, gizmoLL, 255, &ndp.NeighborAdvertisement{Solicited: true, TargetAddress: hostGUA}), hostGUA, ""},
		{"RFC 4861 7.2.8: a proxy's NA shows its source and the target it answers for",
			ndTestFrame(t, hostMAC, hostLL, gizmoLL, 255, &ndp.NeighborAdvertisement{Solicited: true, TargetAddress: hostGUA,
				Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: hostMAC}}}), hostLL, ""},
		{"an NA whose TLLAO names another MAC shows nothing",
			ndTestFrame(t, hostMAC, hostGUA, netip.MustParseAddr("ff02::1"), 255, &ndp.NeighborAdvertisement{Override: true, TargetAddress: hostGUA,
				Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: otherMAC}}}), netip.Addr{}, ReasonLLAddrMismatch},
		{"RFC 4862 5.4.2: a DAD probe from :: shows no address",
			ndTestFrame(t, hostMAC, netip.IPv6Unspecified(), ethframe.SolicitedNode(hostGUA), 255, &ndp.NeighborSolicitation{TargetAddress: hostGUA}), netip.Addr{}, ReasonNoAddress},
		{"RFC 4861 7.1.1: a hop limit below 255 is no ND message from the link",
			ndTestFrame(t, hostMAC, hostGUA, sn, 64, &ndp.NeighborSolicitation{TargetAddress: gizmoLL}), netip.Addr{}, ReasonMalformed},
		{"RFC 4443 2.3: a bad ICMPv6 checksum is malformed", badChecksum, netip.Addr{}, ReasonMalformed},
		{"a multicast Ethernet source is no host's",
			ndTestFrame(t, net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, hostLL, allRouters, 255, &ndp.RouterSolicitation{}), netip.Addr{}, ReasonSource},
		{"RFC 826: an ARP request shows the sender's address",
			arpTestFrame(hostMAC, hostMAC, netip.MustParseAddr("203.0.113.130")), netip.MustParseAddr("203.0.113.130"), ""},
		{"an ARP packet whose sender hardware address is another MAC shows nothing",
			arpTestFrame(hostMAC, otherMAC, netip.MustParseAddr("203.0.113.130")), netip.Addr{}, ReasonLLAddrMismatch},
		{"RFC 5227 2.1.1: an ARP probe from 0.0.0.0 shows no address",
			arpTestFrame(hostMAC, hostMAC, netip.IPv4Unspecified()), netip.Addr{}, ReasonNoAddress},
		{"a truncated frame is malformed", hostMAC, netip.Addr{}, ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := parseFrame(tc.frame)
			if reason != tc.reason {
				t.Fatalf("reason %q, want %q", reason, tc.reason)
			}
			if got.addr != tc.want || (reason == "" && got.mac.String() != hostMAC.String()) {
				t.Errorf("sighting %v %v, want %v from %v", got.mac, got.addr, tc.want, hostMAC)
			}
			if strings.Contains(tc.name, "proxy") && got.target != hostGUA {
				t.Errorf("target %v, want %v", got.target, hostGUA)
			}
		})
	}
}

// The filters let the control-plane frames through and nothing else, so
// that the LAN's bulk traffic never reaches the socket.
func TestFilters(t *testing.T) {
	rs := ndTestFrame(t, hostMAC, hostLL, netip.MustParseAddr("ff02::2"), 255, &ndp.RouterSolicitation{})
	ra := ndTestFrame(t, hostMAC, hostLL, netip.MustParseAddr("ff02::1"), 255, &ndp.RouterAdvertisement{})
	echo := ethframe.Ethernet(gizmoMAC, hostMAC, ethframe.TypeIPv6, ethframe.IPv6(hostGUA, gizmoLL, 64, 58, []byte{128, 0, 0, 0, 0, 1, 0, 1}))
	tcp := ethframe.Ethernet(gizmoMAC, hostMAC, ethframe.TypeIPv6, ethframe.IPv6(hostGUA, gizmoLL, 64, 6, make([]byte, 20)))
	arp := arpTestFrame(hostMAC, hostMAC, netip.MustParseAddr("203.0.113.130"))
	for _, tc := range []struct {
		name    string
		filter  []bpf.Instruction
		frame   []byte
		pkttype uint32
		pass    bool
	}{
		{"an RS to the gizmo passes", ndFilter, rs, 2, true},
		{"an RA is not the watcher's", ndFilter, ra, 2, false},
		{"an echo request stays in the kernel", ndFilter, echo, 0, false},
		{"TCP stays in the kernel", ndFilter, tcp, 0, false},
		{"the gizmo's own outgoing NS does not pass", ndFilter, rs, 4, false},
		{"a frame for another host (promiscuous) does not pass", ndFilter, rs, 3, false},
		{"ARP to the gizmo passes", arpFilter, arp, 1, true},
		{"the gizmo's own ARP does not pass", arpFilter, arp, 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			filtertest.Check(t, filtertest.WithPktType(t, tc.filter, tc.pkttype), tc.frame, tc.pass)
		})
	}
}

// FuzzParseFrame: no frame makes the parser panic, and whatever it
// accepts pairs the frame's own Ethernet source with a unicast address.
func FuzzParseFrame(f *testing.F) {
	f.Add(ndTestFrame(f, hostMAC, hostLL, netip.MustParseAddr("ff02::2"), 255, &ndp.RouterSolicitation{Options: sllao(hostMAC)}))
	f.Add(ndTestFrame(f, hostMAC, hostGUA, gizmoLL, 255, &ndp.NeighborAdvertisement{TargetAddress: hostGUA}))
	f.Add(arpTestFrame(hostMAC, hostMAC, netip.MustParseAddr("203.0.113.130")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x86, 0xdd, 0x60})
	f.Fuzz(func(t *testing.T, b []byte) {
		sg, reason := parseFrame(b)
		if reason != "" {
			return
		}
		if len(b) < 14 || sg.mac.String() != net.HardwareAddr(b[6:12]).String() {
			t.Fatalf("accepted a sighting %v not from the frame's source", sg)
		}
		if !sg.addr.IsValid() || sg.addr.IsUnspecified() || sg.addr.IsMulticast() {
			t.Fatalf("accepted address %v", sg.addr)
		}
		if sg.target.IsValid() && (sg.target.IsUnspecified() || sg.target.IsMulticast()) {
			t.Fatalf("accepted target %v", sg.target)
		}
	})
}

// BenchmarkParseFrame is the work per ND frame that passes the filter.
func BenchmarkParseFrame(b *testing.B) {
	frame := ndTestFrame(b, hostMAC, hostGUA, ethframe.SolicitedNode(gizmoLL), 255, &ndp.NeighborSolicitation{TargetAddress: gizmoLL, Options: sllao(hostMAC)})
	for b.Loop() {
		if _, reason := parseFrame(frame); reason != "" {
			b.Fatal(reason)
		}
	}
}
