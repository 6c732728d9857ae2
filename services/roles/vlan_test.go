package roles

import (
	"encoding/binary"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

	"codeberg.org/monostack/gizmo/internal/ethframe"
)

// untag checks a frame's 802.1Q header and returns it without the tag.
func untag(t *testing.T, frame []byte, vid uint16) []byte {
	t.Helper()
	if len(frame) < 18 {
		t.Fatalf("frame of %d bytes", len(frame))
	}
	if tpid := binary.BigEndian.Uint16(frame[12:14]); tpid != 0x8100 {
		t.Errorf("TPID %#04x, want 0x8100 (IEEE 802.1Q)", tpid)
	}
	if tci := binary.BigEndian.Uint16(frame[14:16]); tci != vid {
		t.Errorf("TCI %#04x, want priority 0 and VID %d", tci, vid)
	}
	return append(append([]byte{}, frame[:12]...), frame[16:]...)
}

func TestSolicitationFrame(t *testing.T) {
	frame, err := solicitationFrame(testMAC, 832)
	if err != nil {
		t.Fatal(err)
	}
	f := untag(t, frame, 832)
	if dst := net.HardwareAddr(f[0:6]); dst.String() != "33:33:00:00:00:02" {
		t.Errorf("destination %v, want the all-routers MAC (RFC 2464 §7)", dst)
	}
	if binary.BigEndian.Uint16(f[12:14]) != etherTypeIPv6 {
		t.Fatalf("EtherType %x", f[12:14])
	}
	ip := f[14:]
	src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
	if ip[6] != protoICMPv6 || ip[7] != 255 || src != netip.IPv6Unspecified() || dst != allRouters {
		t.Errorf("IPv6 header: next %d, hop limit %d, %v → %v; want ICMPv6, 255 (RFC 4861 §6.1.1), :: → ff02::2", ip[6], ip[7], src, dst)
	}
	body := ip[40:]
	if int(binary.BigEndian.Uint16(ip[4:6])) != len(body) {
		t.Errorf("payload length %d, body %d", binary.BigEndian.Uint16(ip[4:6]), len(body))
	}
	m, err := icmp.ParseMessage(protoICMPv6, body)
	if err != nil || m.Type != ipv6.ICMPTypeRouterSolicitation {
		t.Fatalf("ICMPv6: %v, %v", m, err)
	}
	if len(body) != 8 {
		t.Errorf("RS of %d bytes: from :: it carries no options (RFC 4861 §4.1)", len(body))
	}
	// The checksum over the pseudo-header comes out to zero (RFC 4443 §2.3).
	pseudo := append(append(append([]byte{}, ip[8:40]...), 0, 0, 0, byte(len(body)), 0, 0, 0, protoICMPv6), body...)
	if s := ethframe.OnesSum(0, pseudo); s != 0xffff {
		t.Errorf("ICMPv6 checksum does not verify (sum %#04x)", s)
	}
}

func TestDiscoverFrame(t *testing.T) {
	xid := dhcpv4.TransactionID{1, 2, 3, 4}
	frame, err := discoverFrame(testMAC, 7, xid)
	if err != nil {
		t.Fatal(err)
	}
	f := untag(t, frame, 7)
	if dst := net.HardwareAddr(f[0:6]); dst.String() != "ff:ff:ff:ff:ff:ff" || net.HardwareAddr(f[6:12]).String() != testMAC.String() {
		t.Errorf("Ethernet %v → %v", net.HardwareAddr(f[6:12]), dst)
	}
	ip := f[14:]
	if ip[0] != 0x45 || ip[9] != protoUDP || int(binary.BigEndian.Uint16(ip[2:4])) != len(ip) {
		t.Fatalf("IPv4 header % x", ip[:20])
	}
	if s := ethframe.OnesSum(0, ip[:20]); s != 0xffff {
		t.Errorf("IPv4 header checksum does not verify (sum %#04x)", s)
	}
	if src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20])); src.String() != "0.0.0.0" || dst.String() != "255.255.255.255" {
		t.Errorf("IPv4 %v → %v, want 0.0.0.0 → 255.255.255.255 (RFC 2131 §4.1)", src, dst)
	}
	udp := ip[20:]
	if binary.BigEndian.Uint16(udp[0:2]) != 68 || binary.BigEndian.Uint16(udp[2:4]) != 67 || int(binary.BigEndian.Uint16(udp[4:6])) != len(udp) {
		t.Errorf("UDP header % x", udp[:8])
	}
	pseudo := append([]byte{0, 0, 0, 0, 255, 255, 255, 255, 0, protoUDP}, udp[4:6]...)
	if s := ethframe.OnesSum(ethframe.OnesSum(0, pseudo), udp); s != 0xffff {
		t.Errorf("UDP checksum does not verify (sum %#04x)", s)
	}
	m, err := dhcpv4.FromBytes(udp[8:])
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageType() != dhcpv4.MessageTypeDiscover || m.TransactionID != xid || m.ClientHWAddr.String() != testMAC.String() || !m.IsBroadcast() {
		t.Errorf("DHCPv4: %s", m.Summary())
	}
}

func TestVLANUpstreamFilterDropsUntagged(t *testing.T) {
	f := vlanUpstreamFilter
	skip, ok := f[1].(bpf.JumpIf)
	if !ok || skip.Val != 0 {
		t.Fatalf("second instruction %#v, want the jump on no tag", f[1])
	}
	if target := 2 + int(skip.SkipTrue); target != len(f)-1 || f[target] != (bpf.RetConstant{Val: 0}) {
		t.Errorf("an untagged frame jumps to %d (%#v), want the final drop at %d", target, f[target], len(f)-1)
	}
	if !reflect.DeepEqual(f[2:], upstreamFilter) {
		t.Error("the rest is not upstreamFilter")
	}
}

func TestChooseVLAN(t *testing.T) {
	nothing := Evidence{Port: "eth0", LinkUp: true}
	router := func(vid uint16) Evidence {
		return Evidence{Port: "eth0", LinkUp: true, VLAN: vid, RouterAdvertisement: true, AnyRouterAdvertisement: true}
	}
	dhcp := func(vid uint16) Evidence { return Evidence{Port: "eth0", LinkUp: true, VLAN: vid, DHCPv4Server: true} }
	quiet := func(vid uint16) Evidence { return Evidence{Port: "eth0", LinkUp: true, VLAN: vid} }
	for _, tc := range []struct {
		name     string
		untagged Evidence
		tagged   []Evidence
		want     Evidence
	}{
		{"an upstream heard untagged wins over any VLAN",
			Evidence{Port: "eth0", LinkUp: true, DHCPv4Server: true}, []Evidence{router(7)},
			Evidence{Port: "eth0", LinkUp: true, DHCPv4Server: true}},
		{"nothing untagged: the VLAN that hears a default router is chosen",
			nothing, []Evidence{quiet(7), router(10), quiet(35)}, router(10)},
		{"a default router outranks a DHCPv4 server alone on an earlier VLAN",
			nothing, []Evidence{dhcp(7), router(832)}, router(832)},
		{"a tie goes to the VLAN asked first (the more common one)",
			nothing, []Evidence{quiet(6), dhcp(7), dhcp(10)}, dhcp(7)},
		{"RFC 4861 §4.2: an RA without a default route on a VLAN is no upstream",
			nothing, []Evidence{{Port: "eth0", LinkUp: true, VLAN: 7, AnyRouterAdvertisement: true}}, nothing},
		{"an RA without a default route untagged does not stop a VLAN's router",
			Evidence{Port: "eth0", LinkUp: true, AnyRouterAdvertisement: true}, []Evidence{router(7)}, router(7)},
		{"no VLAN hears anything: the untagged evidence stands", nothing, []Evidence{quiet(7), quiet(10)}, nothing},
		{"no VLANs probed", nothing, nil, nothing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ChooseVLAN(tc.untagged, tc.tagged); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ChooseVLAN = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecideCarriesTheVLAN(t *testing.T) {
	r, err := Decide([]Evidence{
		{Port: "eth0", LinkUp: true},
		{Port: "eth1", LinkUp: true, VLAN: 7, RouterAdvertisement: true, AnyRouterAdvertisement: true, DHCPv4Server: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Roles{WAN: "eth1", VLAN: 7, LANPorts: []string{"eth0"}}); !reflect.DeepEqual(r, want) {
		t.Errorf("Decide = %+v, want %+v", r, want)
	}
	if got, want := r.String(), "WAN eth1 on VLAN 7, LAN eth0"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (Evidence{LinkUp: true, VLAN: 7, DHCPv4Server: true}).Heard(), "a DHCPv4 server on VLAN 7"; got != want {
		t.Errorf("Heard() = %q, want %q", got, want)
	}
}

func TestCommonVLANsAreValidAndDistinct(t *testing.T) {
	seen := map[uint16]bool{}
	for _, v := range CommonVLANs {
		if v < 1 || v > 4094 || seen[v] {
			t.Errorf("VLAN %d is out of range or listed twice", v)
		}
		seen[v] = true
	}
}
