package nsresponder

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

	"codeberg.org/monostack/gizmo/internal/ethframe"
)

var (
	hostMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0x02, 0x10}
	gizmoMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0x02, 0x01}
	hostAddr  = netip.MustParseAddr("2001:db8:0:1::10")
	gizmoLL   = netip.MustParseAddr("fe80::ff:fe00:201")
	nat64     = netip.MustParsePrefix("2001:db8:1000:100::/96")
	synthAddr = netip.MustParseAddr("2001:db8:1000:100::c633:6450") // 198.51.100.80
)

// nsPacket is an IPv6 packet carrying an NS for target from src to dst,
// with a source link-layer address option when ll is set, built with
// golang.org/x/net/icmp so that its checksum does not come from the code
// under test.
func nsPacket(t testing.TB, src, dst, target netip.Addr, ll net.HardwareAddr) []byte {
	t.Helper()
	ns := &ndp.NeighborSolicitation{TargetAddress: target}
	if ll != nil {
		ns.Options = append(ns.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ll})
	}
	return ipPacket(t, src, dst, 255, ns)
}

func ipPacket(t testing.TB, src, dst netip.Addr, hop uint8, m ndp.Message) []byte {
	t.Helper()
	body, err := ndp.MarshalMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	msg := icmp.Message{Type: ipv6.ICMPType(body[0]), Code: int(body[1]), Body: &icmp.RawBody{Data: body[4:]}}
	icmpBytes, err := msg.Marshal(icmp.IPv6PseudoHeader(src.AsSlice(), dst.AsSlice()))
	if err != nil {
		t.Fatal(err)
	}
	return ethframe.IPv6(src, dst, hop, protoICMPv6, icmpBytes)
}

func TestParseNS(t *testing.T) {
	resolve := func(t testing.TB) []byte { return nsPacket(t, hostAddr, solicitedNode(synthAddr), synthAddr, hostMAC) }
	for _, tc := range []struct {
		name   string
		packet func(t testing.TB) []byte
		want   solicitation
		reason string // "" when the packet is accepted
	}{
		{
			name:   "RFC 4861 7.2.2: address resolution, multicast to the solicited-node group with the source's link-layer address",
			packet: resolve,
			want:   solicitation{source: hostAddr, dest: solicitedNode(synthAddr), target: synthAddr, sourceLL: hostMAC},
		},
		{
			name:   "RFC 4861 7.2.2: unicast NUD probe without a link-layer address",
			packet: func(t testing.TB) []byte { return nsPacket(t, hostAddr, synthAddr, synthAddr, nil) },
			want:   solicitation{source: hostAddr, dest: synthAddr, target: synthAddr},
		},
		{
			name: "RFC 4862 5.4.2: DAD probe from the unspecified address to the solicited-node group",
			packet: func(t testing.TB) []byte {
				return nsPacket(t, netip.IPv6Unspecified(), solicitedNode(synthAddr), synthAddr, nil)
			},
			want: solicitation{source: netip.IPv6Unspecified(), dest: solicitedNode(synthAddr), target: synthAddr},
		},
		{
			name:   "a link's padding after the payload is ignored",
			packet: func(t testing.TB) []byte { return append(resolve(t), 0, 0, 0, 0) },
			want:   solicitation{source: hostAddr, dest: solicitedNode(synthAddr), target: synthAddr, sourceLL: hostMAC},
		},
		{
			name: "RFC 4861 7.1.1: hop limit below 255 (from off the link)",
			packet: func(t testing.TB) []byte {
				return ipPacket(t, hostAddr, solicitedNode(synthAddr), 254, &ndp.NeighborSolicitation{TargetAddress: synthAddr})
			},
			reason: ReasonHopLimit,
		},
		{
			name: "RFC 4861 7.1.1: wrong ICMPv6 checksum",
			packet: func(t testing.TB) []byte {
				b := resolve(t)
				b[ipv6HeaderLen+2] ^= 0xff
				return b
			},
			reason: ReasonChecksum,
		},
		{
			name: "RFC 4861 7.1.1: the checksum covers the addresses (a rewritten source fails it)",
			packet: func(t testing.TB) []byte {
				b := resolve(t)
				b[23] ^= 1
				return b
			},
			reason: ReasonChecksum,
		},
		{
			name: "RFC 4861 7.1.1: ICMP code not 0",
			packet: func(t testing.TB) []byte {
				b := resolve(t)
				b[ipv6HeaderLen+1] = 1
				fixChecksum(b)
				return b
			},
			reason: ReasonInvalid,
		},
		{
			name: "RFC 4861 7.1.1: ICMP length below 24 octets",
			packet: func(t testing.TB) []byte {
				b := resolve(t)[:ipv6HeaderLen+20]
				binary.BigEndian.PutUint16(b[4:6], 20)
				fixChecksum(b)
				return b
			},
			reason: ReasonMalformed,
		},
		{
			name: "RFC 4861 7.1.1: multicast target",
			packet: func(t testing.TB) []byte {
				return nsPacket(t, hostAddr, solicitedNode(synthAddr), netip.MustParseAddr("ff02::1"), hostMAC)
			},
			reason: ReasonInvalid,
		},
		{
			name: "RFC 4861 7.1.1: an option of length 0",
			packet: func(t testing.TB) []byte {
				b := resolve(t)
				b[ipv6HeaderLen+icmpNSLen+1] = 0
				fixChecksum(b)
				return b
			},
			reason: ReasonInvalid,
		},
		{
			name: "RFC 4861 7.1.1: DAD probe to another address than the target's solicited-node group",
			packet: func(t testing.TB) []byte {
				return nsPacket(t, netip.IPv6Unspecified(), netip.MustParseAddr("ff02::1"), synthAddr, nil)
			},
			reason: ReasonInvalid,
		},
		{
			name: "RFC 4861 7.1.1: DAD probe with a source link-layer address option",
			packet: func(t testing.TB) []byte {
				return nsPacket(t, netip.IPv6Unspecified(), solicitedNode(synthAddr), synthAddr, hostMAC)
			},
			reason: ReasonInvalid,
		},
		{
			name: "RFC 4291 2.7: a multicast source",
			packet: func(t testing.TB) []byte {
				return nsPacket(t, netip.MustParseAddr("ff02::1"), solicitedNode(synthAddr), synthAddr, nil)
			},
			reason: ReasonInvalid,
		},
		{
			name: "RFC 2464 6: a source link-layer address that is not 6 bytes",
			packet: func(t testing.TB) []byte {
				// An option of two units (16 bytes): 14 bytes of address.
				b := nsPacket(t, hostAddr, solicitedNode(synthAddr), synthAddr, nil)
				b = append(b, 1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0)
				binary.BigEndian.PutUint16(b[4:6], uint16(len(b)-ipv6HeaderLen))
				fixChecksum(b)
				return b
			},
			reason: ReasonInvalid,
		},
		{
			name: "a Neighbor Advertisement is not a solicitation",
			packet: func(t testing.TB) []byte {
				return ipPacket(t, hostAddr, gizmoLL, 255, &ndp.NeighborAdvertisement{TargetAddress: hostAddr})
			},
			reason: ReasonMalformed,
		},
		{
			name: "an extension header before the ICMPv6 header",
			packet: func(t testing.TB) []byte {
				b := resolve(t)
				b[6] = 0 // hop-by-hop
				return b
			},
			reason: ReasonMalformed,
		},
		{
			name: "a payload length beyond the bytes received",
			packet: func(t testing.TB) []byte {
				b := resolve(t)
				binary.BigEndian.PutUint16(b[4:6], 200)
				return b
			},
			reason: ReasonMalformed,
		},
		{
			name:   "not IPv6",
			packet: func(t testing.TB) []byte { b := resolve(t); b[0] = 0x45; return b },
			reason: ReasonMalformed,
		},
		{
			name:   "shorter than an IPv6 header",
			packet: func(t testing.TB) []byte { return resolve(t)[:39] },
			reason: ReasonMalformed,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNS(tc.packet(t))
			if tc.reason != "" {
				if err == nil {
					t.Fatalf("accepted %+v, want refused (%s)", got, tc.reason)
				}
				if r := reasonOf(err); r != tc.reason {
					t.Errorf("refused as %q (%v), want %q", r, err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(solicitation{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("solicitation (-want +got):\n%s", diff)
			}
		})
	}
}

// fixChecksum recomputes the ICMPv6 checksum of an IPv6 packet whose
// payload a test changed.
func fixChecksum(b []byte) {
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	b[ipv6HeaderLen+2], b[ipv6HeaderLen+3] = 0, 0
	binary.BigEndian.PutUint16(b[ipv6HeaderLen+2:], checksum(src, dst, b[ipv6HeaderLen:]))
}

func TestAdvertisement(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ns          solicitation
		frameSource net.HardwareAddr
		router      bool
		wantDst     netip.Addr
		wantMAC     net.HardwareAddr
		wantNA      ndp.NeighborAdvertisement
	}{
		{
			name:    "RFC 4861 7.2.4: unicast to the solicitation's source and its link-layer address, S=1, O=1 (the owner), R for a router, TLLAO",
			ns:      solicitation{source: hostAddr, dest: solicitedNode(synthAddr), target: synthAddr, sourceLL: hostMAC},
			router:  true,
			wantDst: hostAddr, wantMAC: hostMAC,
			wantNA: ndp.NeighborAdvertisement{Router: true, Solicited: true, Override: true, TargetAddress: synthAddr,
				Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: gizmoMAC}}},
		},
		{
			name:    "RFC 4861 4.4: R=0 when the plan says the gizmo does not route",
			ns:      solicitation{source: hostAddr, dest: solicitedNode(synthAddr), target: synthAddr, sourceLL: hostMAC},
			wantDst: hostAddr, wantMAC: hostMAC,
			wantNA: ndp.NeighborAdvertisement{Solicited: true, Override: true, TargetAddress: synthAddr,
				Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: gizmoMAC}}},
		},
		{
			name:        "RFC 4861 7.2.4: a NUD probe without a link-layer address is answered to the frame's source",
			ns:          solicitation{source: hostAddr, dest: synthAddr, target: synthAddr},
			frameSource: hostMAC,
			router:      true,
			wantDst:     hostAddr, wantMAC: hostMAC,
			wantNA: ndp.NeighborAdvertisement{Router: true, Solicited: true, Override: true, TargetAddress: synthAddr,
				Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: gizmoMAC}}},
		},
		{
			name:        "RFC 4861 7.2.4: a DAD probe is answered to all nodes with S=0 (the address is taken)",
			ns:          solicitation{source: netip.IPv6Unspecified(), dest: solicitedNode(synthAddr), target: synthAddr},
			frameSource: hostMAC,
			router:      true,
			wantDst:     allNodes, wantMAC: allNodesMAC,
			wantNA: ndp.NeighborAdvertisement{Router: true, Override: true, TargetAddress: synthAddr,
				Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: gizmoMAC}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, mac, err := advertisement(tc.ns, tc.frameSource, gizmoMAC, tc.router)
			if err != nil {
				t.Fatal(err)
			}
			if mac.String() != tc.wantMAC.String() {
				t.Errorf("sent to %v, want %v", mac, tc.wantMAC)
			}
			if b[0]>>4 != 6 || b[6] != protoICMPv6 || b[7] != 255 {
				t.Errorf("RFC 4861 7.1.2: IPv6 header %x, want version 6, ICMPv6, hop limit 255", b[:8])
			}
			src, dst := netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
			if src != tc.ns.target || dst != tc.wantDst {
				t.Errorf("from %v to %v, want from the target %v to %v", src, dst, tc.ns.target, tc.wantDst)
			}
			if int(binary.BigEndian.Uint16(b[4:6])) != len(b)-ipv6HeaderLen {
				t.Errorf("payload length %d, want %d", binary.BigEndian.Uint16(b[4:6]), len(b)-ipv6HeaderLen)
			}
			// The checksum as an independent implementation computes it.
			want, err := (&icmp.Message{Type: ipv6.ICMPTypeNeighborAdvertisement, Body: &icmp.RawBody{Data: b[ipv6HeaderLen+4:]}}).
				Marshal(icmp.IPv6PseudoHeader(src.AsSlice(), dst.AsSlice()))
			if err != nil {
				t.Fatal(err)
			}
			if got := b[ipv6HeaderLen+2 : ipv6HeaderLen+4]; string(got) != string(want[2:4]) {
				t.Errorf("RFC 4443 2.3: checksum %x, want %x", got, want[2:4])
			}
			m, err := ndp.ParseMessage(b[ipv6HeaderLen:])
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&tc.wantNA, m, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("NA (-want +got):\n%s", diff)
			}
		})
	}
	if _, _, err := advertisement(solicitation{source: hostAddr, target: synthAddr}, nil, gizmoMAC, true); err == nil {
		t.Error("answered a solicitation without any link-layer address to send to")
	}
}
