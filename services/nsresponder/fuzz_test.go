package nsresponder

import (
	"net/netip"
	"testing"

	"github.com/mdlayher/ndp"
)

// FuzzParseNS feeds parseNS what a host on the link can send: it never
// panics, what it accepts keeps the RFC 4861 §7.1.1 rules, and the answer
// to it is a well-formed advertisement.
func FuzzParseNS(f *testing.F) {
	f.Add(nsPacket(f, hostAddr, solicitedNode(synthAddr), synthAddr, hostMAC))
	f.Add(nsPacket(f, hostAddr, synthAddr, synthAddr, nil))
	f.Add(nsPacket(f, netip.IPv6Unspecified(), solicitedNode(synthAddr), synthAddr, nil))
	f.Add([]byte{0x60})
	f.Fuzz(func(t *testing.T, b []byte) {
		ns, err := parseNS(b)
		if err != nil {
			if reasonOf(err) == "" {
				t.Fatalf("refused without a reason: %v", err)
			}
			return
		}
		if ns.target.IsMulticast() || ns.source.IsMulticast() || b[7] != 255 {
			t.Fatalf("accepted %+v against RFC 4861 7.1.1", ns)
		}
		if ns.source.IsUnspecified() && (ns.sourceLL != nil || ns.dest != solicitedNode(ns.target)) {
			t.Fatalf("accepted a DAD probe against RFC 4861 7.1.1: %+v", ns)
		}
		na, mac, err := advertisement(ns, hostMAC, gizmoMAC, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(mac) != 6 {
			t.Fatalf("answer to link-layer address %v", mac)
		}
		m, err := ndp.ParseMessage(na[ipv6HeaderLen:])
		if err != nil {
			t.Fatalf("answer does not parse: %v", err)
		}
		if a, ok := m.(*ndp.NeighborAdvertisement); !ok || a.TargetAddress != ns.target {
			t.Fatalf("answer %+v is not an NA for %v", m, ns.target)
		}
		src, dst := netip.AddrFrom16([16]byte(na[8:24])), netip.AddrFrom16([16]byte(na[24:40]))
		if checksum(src, dst, na[ipv6HeaderLen:]) != 0 {
			t.Fatal("answer's checksum does not verify")
		}
	})
}
