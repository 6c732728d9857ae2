package ethframe

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// RFC 1071 §4.1: a header that carries its own checksum sums to zero.
func TestChecksumsVerify(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.130:68")
	dst := netip.MustParseAddrPort("203.0.113.129:67")
	for _, payload := range [][]byte{nil, []byte("x"), []byte("dhcp payload")} {
		p := IPv4UDP(src, dst, payload)
		if c := Checksum(p[:20]); c != 0 {
			t.Errorf("IPv4 header does not verify: %#04x", c)
		}
		udp := p[20:]
		if int(binary.BigEndian.Uint16(udp[4:])) != len(udp) || string(udp[8:]) != string(payload) {
			t.Fatalf("UDP length or payload wrong: % x", udp)
		}
		s, d := src.Addr().As4(), dst.Addr().As4()
		pseudo := append(append(append([]byte{}, s[:]...), d[:]...), 0, 17, udp[4], udp[5])
		if c := Checksum(append(pseudo, udp...)); c != 0 {
			t.Errorf("UDP checksum does not verify: %#04x", c)
		}
	}
}

func TestSolicitedNodeAndMulticastMAC(t *testing.T) {
	a := netip.MustParseAddr("2001:db8:0:1:aabb:ccdd:ee12:3456")
	if got, want := SolicitedNode(a), netip.MustParseAddr("ff02::1:ff12:3456"); got != want {
		t.Errorf("SolicitedNode = %s, want %s", got, want)
	}
	if got := MulticastMAC(netip.MustParseAddr("ff02::1:ff12:3456")).String(); got != "33:33:ff:12:34:56" {
		t.Errorf("MulticastMAC = %s", got)
	}
}
