package ethframe

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
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

// RFC 1071 §2(B): the sum is associative, so a pseudo-header summed apart
// and carried into the message's sum gives the sum of both back to back.
func TestOnesSumChains(t *testing.T) {
	pseudo := []byte{0, 0, 0, 0, 255, 255, 255, 255, 0, 17, 0, 9}
	for _, msg := range [][]byte{nil, {0xab}, {0xff, 0xff, 0xff}, []byte("odd length!")} {
		whole := append(append([]byte{}, pseudo...), msg...)
		if got, want := OnesSum(OnesSum(0, pseudo), msg), ^Checksum(whole); got != want {
			t.Errorf("chained sum %#04x, whole %#04x (msg % x)", got, want, msg)
		}
	}
}

// RFC 4443 §2.3: the checksum covers the RFC 8200 §8.1 pseudo-header; a
// message marshalled with its checksum by x/net/icmp checks out to zero,
// and the value over the zeroed field is the one icmp put there.
func TestICMPv6ChecksumMatchesMarshalled(t *testing.T) {
	src, dst := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::1:ff12:3456")
	for _, data := range [][]byte{make([]byte, 4), []byte("odd"), make([]byte, 28)} {
		m := icmp.Message{Type: ipv6.ICMPTypeNeighborSolicitation, Body: &icmp.RawBody{Data: data}}
		b, err := m.Marshal(icmp.IPv6PseudoHeader(src.AsSlice(), dst.AsSlice()))
		if err != nil {
			t.Fatal(err)
		}
		if c := ICMPv6Checksum(src, dst, b); c != 0 {
			t.Errorf("marshalled message does not verify: %#04x", c)
		}
		want := binary.BigEndian.Uint16(b[2:4])
		b[2], b[3] = 0, 0
		if c := ICMPv6Checksum(src, dst, b); c != want {
			t.Errorf("checksum over zeroed field %#04x, want %#04x", c, want)
		}
	}
}
