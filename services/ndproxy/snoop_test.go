package ndproxy

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"
)

// ipv6 wraps an ND message in an IPv6 header, as a SOCK_DGRAM packet
// socket delivers it.
func ipv6(t testing.TB, src, dst string, hop uint8, m ndp.Message) []byte {
	t.Helper()
	body, err := ndp.MarshalMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, ipv6HeaderLen, ipv6HeaderLen+len(body))
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:6], uint16(len(body)))
	b[6], b[7] = protoICMPv6, hop
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	return append(b, body...)
}

var (
	tentative = netip.MustParseAddr("2001:db8:0:1:0:ff:fe00:210")
	mac       = net.HardwareAddr{2, 0, 0, 0, 2, 0x10}
)

func TestParseND(t *testing.T) {
	ns := &ndp.NeighborSolicitation{TargetAddress: tentative}
	nsLL := &ndp.NeighborSolicitation{TargetAddress: tentative, Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}}
	na := &ndp.NeighborAdvertisement{Override: true, TargetAddress: tentative, Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}}}
	for _, tc := range []struct {
		name    string
		b       []byte
		want    ndEvent
		wantErr bool
	}{
		{"RFC 4862 5.4.2: DAD NS from :: to the solicited-node group", ipv6(t, "::", "ff02::1:ff00:210", 255, ns),
			ndEvent{kind: kindDAD, source: netip.IPv6Unspecified(), target: tentative}, false},
		{"RFC 4861 7.1.1: DAD NS to another group is refused", ipv6(t, "::", "ff02::1:ff00:211", 255, ns), ndEvent{}, true},
		{"RFC 4861 7.1.1: DAD NS with a source link-layer option is refused", ipv6(t, "::", "ff02::1:ff00:210", 255, nsLL), ndEvent{}, true},
		{"RFC 4861 7.1.1: hop limit below 255 is refused", ipv6(t, "::", "ff02::1:ff00:210", 254, ns), ndEvent{}, true},
		{"NS from a host's address names it as the source", ipv6(t, tentative.String(), "ff02::1:ff00:201", 255, nsLL),
			ndEvent{kind: kindNS, source: tentative, target: tentative}, false},
		{"NA names its target", ipv6(t, tentative.String(), "ff02::1", 255, na),
			ndEvent{kind: kindNA, source: tentative, target: tentative}, false},
		{"NA from :: is refused", ipv6(t, "::", "ff02::1", 255, na), ndEvent{}, true},
		{"an RS is not ND for the proxy", ipv6(t, "fe80::1", "ff02::2", 255, &ndp.RouterSolicitation{}), ndEvent{}, true},
		{"truncated header", []byte{0x60, 0, 0}, ndEvent{}, true},
		{"payload length beyond the packet", func() []byte { b := ipv6(t, "::", "ff02::1:ff00:210", 255, ns); return b[:len(b)-4] }(), ndEvent{}, true},
		{"IPv4 is not IPv6", append([]byte{0x45}, make([]byte, 59)...), ndEvent{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseND(tc.b)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseND error = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("parseND = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSolicitedNode(t *testing.T) {
	if got := solicitedNode(tentative); got != netip.MustParseAddr("ff02::1:ff00:210") {
		t.Errorf("solicitedNode(%s) = %s", tentative, got)
	}
}

func TestFilterAssembles(t *testing.T) {
	for _, f := range [][]bpf.Instruction{ndFilter, ownNSFilter} {
		if _, err := bpf.Assemble(f); err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzParseND(f *testing.F) {
	f.Add(ipv6(f, "::", "ff02::1:ff00:210", 255, &ndp.NeighborSolicitation{TargetAddress: tentative}))
	f.Add(ipv6(f, tentative.String(), "ff02::1", 255, &ndp.NeighborAdvertisement{TargetAddress: tentative}))
	f.Add([]byte{0x60})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := parseND(b)
		if err == nil && ev.kind == kindDAD && !ev.source.IsUnspecified() {
			t.Errorf("DAD event from %s", ev.source)
		}
	})
}
