package roles

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/mdlayher/ndp"

	"codeberg.org/monostack/gizmo/internal/ethframe"
)

var (
	testMAC    = net.HardwareAddr{0x02, 0, 0, 0, 1, 1}
	routerLL   = netip.MustParseAddr("fe80::1")
	allNodes   = netip.MustParseAddr("ff02::1")
	isp4       = netip.MustParseAddr("192.0.2.1")
	broadcast4 = netip.MustParseAddr("255.255.255.255")
)

// ether is a broadcast frame from src, as an upstream's RA or DHCP
// answer to everyone is.
func ether(src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	return ethframe.Ethernet(ethframe.Broadcast, src, etherType, payload)
}

func udp6(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:2], sport)
	binary.BigEndian.PutUint16(b[2:4], dport)
	binary.BigEndian.PutUint16(b[4:6], uint16(8+len(payload)))
	return append(b, payload...)
}

func raFrame(t testing.TB, lifetime time.Duration, hopLimit byte) []byte {
	t.Helper()
	msg, err := ndp.MarshalMessage(&ndp.RouterAdvertisement{RouterLifetime: lifetime, CurrentHopLimit: 64})
	if err != nil {
		t.Fatal(err)
	}
	return ether(testMAC, etherTypeIPv6, ethframe.IPv6(routerLL, allNodes, hopLimit, protoICMPv6, msg))
}

func dhcp4Frame(t testing.TB, mt dhcpv4.MessageType, op dhcpv4.OpcodeType) []byte {
	t.Helper()
	m, err := dhcpv4.New(dhcpv4.WithMessageType(mt), dhcpv4.WithServerIP(isp4.AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(isp4.AsSlice())))
	if err != nil {
		t.Fatal(err)
	}
	m.OpCode = op
	return ether(testMAC, etherTypeIPv4, ethframe.IPv4UDP(netip.AddrPortFrom(isp4, 67), netip.AddrPortFrom(broadcast4, 68), m.ToBytes()))
}

func dhcp6Frame(t testing.TB, mt dhcpv6.MessageType, sport, dport uint16) []byte {
	t.Helper()
	m, err := dhcpv6.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = mt
	return ether(testMAC, etherTypeIPv6, ethframe.IPv6(routerLL, netip.MustParseAddr("fe80::2"), 64, protoUDP, udp6(sport, dport, m.ToBytes())))
}

func TestParseFrame(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame func(testing.TB) []byte
		want  Signal // 0: no upstream signal (an error)
	}{
		{"RFC 4861 §4.2: an RA with a router lifetime offers a default route",
			func(t testing.TB) []byte { return raFrame(t, 1800*time.Second, 255) }, SignalRouter},
		{"RFC 4861 §4.2: an RA with router lifetime 0 is no default router (the existing-network mode's RA)",
			func(t testing.TB) []byte { return raFrame(t, 0, 255) }, SignalRouterNoDefault},
		{"RFC 4861 §6.1.2: an RA with hop limit below 255 is invalid",
			func(t testing.TB) []byte { return raFrame(t, 1800*time.Second, 64) }, 0},
		{"RFC 2131 §3.1: a DHCPOFFER is a DHCPv4 server",
			func(t testing.TB) []byte { return dhcp4Frame(t, dhcpv4.MessageTypeOffer, dhcpv4.OpcodeBootReply) }, SignalDHCPv4Server},
		{"RFC 2131 §3.1: a DHCPACK is a DHCPv4 server",
			func(t testing.TB) []byte { return dhcp4Frame(t, dhcpv4.MessageTypeAck, dhcpv4.OpcodeBootReply) }, SignalDHCPv4Server},
		{"RFC 2131 §4.1: a DHCPDISCOVER is a client, not a server",
			func(t testing.TB) []byte { return dhcp4Frame(t, dhcpv4.MessageTypeDiscover, dhcpv4.OpcodeBootRequest) }, 0},
		{"RFC 8415 §7.3: an Advertise is a DHCPv6 server",
			func(t testing.TB) []byte { return dhcp6Frame(t, dhcpv6.MessageTypeAdvertise, 547, 546) }, SignalDHCPv6Server},
		{"RFC 8415 §7.3: a Reply is a DHCPv6 server",
			func(t testing.TB) []byte { return dhcp6Frame(t, dhcpv6.MessageTypeReply, 547, 546) }, SignalDHCPv6Server},
		{"RFC 8415 §7.3: a Solicit is a client",
			func(t testing.TB) []byte { return dhcp6Frame(t, dhcpv6.MessageTypeSolicit, 546, 547) }, 0},
		{"a truncated frame", func(t testing.TB) []byte { return raFrame(t, time.Hour, 255)[:50] }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseFrame(tc.frame(t))
			if tc.want == 0 {
				if err == nil {
					t.Fatalf("ParseFrame = %+v, want an error", u)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFrame: %v", err)
			}
			if u.Signal != tc.want {
				t.Errorf("signal %v, want %v", u.Signal, tc.want)
			}
			if u.SrcMAC.String() != testMAC.String() {
				t.Errorf("source MAC %v, want %v", u.SrcMAC, testMAC)
			}
		})
	}
	u, err := ParseFrame(dhcp4Frame(t, dhcpv4.MessageTypeOffer, dhcpv4.OpcodeBootReply))
	if err != nil || u.ServerID != isp4 || u.From != isp4 {
		t.Errorf("OFFER: server id %v from %v (%v), want %v", u.ServerID, u.From, err, isp4)
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add(raFrame(f, time.Hour, 255))
	f.Add(raFrame(f, 0, 255))
	f.Add(dhcp4Frame(f, dhcpv4.MessageTypeOffer, dhcpv4.OpcodeBootReply))
	f.Add(dhcp6Frame(f, dhcpv6.MessageTypeReply, 547, 546))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseFrame(b)
		if err == nil && u.Signal == 0 {
			t.Errorf("no error and no signal: %+v", u)
		}
	})
}
