package ra

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
)

var (
	hostLL  = netip.MustParseAddr("fe80::1234%lan0")
	hostMAC = net.HardwareAddr{0x02, 0, 0, 0, 0x12, 0x34}
)

func marshalRS(t testing.TB, opts ...ndp.Option) []byte {
	t.Helper()
	b, err := ndp.MarshalMessage(&ndp.RouterSolicitation{Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckSolicitation(t *testing.T) {
	sllao := &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: hostMAC}
	withCode := marshalRS(t)
	withCode[1] = 1
	zeroLenOpt := append(marshalRS(t), 1, 0, 0, 0, 0, 0, 0, 0)
	overrunOpt := append(marshalRS(t), 1, 2, 0, 0, 0, 0, 0, 0)
	for _, tc := range []struct {
		name   string
		b      []byte
		hop    int
		src    netip.Addr
		want   Solicitation
		reason string
	}{
		{
			name: "RFC 4861 6.1.1: valid RS from a link-local source with SLLAO",
			b:    marshalRS(t, sllao), hop: 255, src: hostLL,
			want: Solicitation{Source: netip.MustParseAddr("fe80::1234")},
		},
		{
			name: "RFC 4861 6.1.1: valid RS from the unspecified address without SLLAO",
			b:    marshalRS(t), hop: 255, src: netip.IPv6Unspecified(),
			want: Solicitation{Source: netip.IPv6Unspecified()},
		},
		{
			name: "RFC 4861 6.1.1: unknown options are ignored",
			b:    marshalRS(t, ndp.NewNonce()), hop: 255, src: hostLL,
			want: Solicitation{Source: netip.MustParseAddr("fe80::1234")},
		},
		{
			name: "RFC 4861 6.1.1: hop limit below 255 means it was forwarded",
			b:    marshalRS(t), hop: 254, src: hostLL, reason: ReasonHopLimit,
		},
		{
			name: "RFC 4861 6.1.1: hop limit unknown cannot be validated",
			b:    marshalRS(t), hop: -1, src: hostLL, reason: ReasonNoHopLimit,
		},
		{
			name: "RFC 4861 6.1.1: ICMP code must be 0",
			b:    withCode, hop: 255, src: hostLL, reason: ReasonCode,
		},
		{
			name: "RFC 4861 6.1.1: ICMP length must be 8 or more octets",
			b:    marshalRS(t)[:7], hop: 255, src: hostLL, reason: ReasonLength,
		},
		{
			name: "RFC 4861 6.1.1: options must have a length greater than zero",
			b:    zeroLenOpt, hop: 255, src: hostLL, reason: ReasonOptionLength,
		},
		{
			name: "RFC 4861 6.1.1: an option running past the message is malformed",
			b:    overrunOpt, hop: 255, src: hostLL, reason: ReasonOptionLength,
		},
		{
			name: "RFC 4861 6.1.1: no SLLAO when the source is unspecified",
			b:    marshalRS(t, sllao), hop: 255, src: netip.IPv6Unspecified(), reason: ReasonSLLAOFromAny,
		},
		{
			name: "RFC 4861 4.1: a multicast source is no address of the sender",
			b:    marshalRS(t), hop: 255, src: netip.MustParseAddr("ff02::1"), reason: ReasonSource,
		},
		{
			name: "not a Router Solicitation (type 134)",
			b:    []byte{134, 0, 0, 0, 0, 0, 0, 0}, hop: 255, src: hostLL, reason: ReasonType,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := checkSolicitation(tc.b, tc.hop, tc.src)
			if reason != tc.reason {
				t.Fatalf("reason = %q, want %q", reason, tc.reason)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("solicitation (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzCheckSolicitation feeds arbitrary bytes to the RS validation: it must
// never panic, and whatever it accepts must be a Router Solicitation that a
// strict parser accepts too, with an SLLAO only from a unicast source.
func FuzzCheckSolicitation(f *testing.F) {
	f.Add(marshalRS(f, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: hostMAC}), 255, false)
	f.Add(marshalRS(f), 255, true)
	f.Add(marshalRS(f, ndp.NewNonce()), 255, false)
	f.Add([]byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 0}, 255, false)
	f.Add([]byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0}, 255, true)
	f.Add([]byte{133, 1}, 64, false)
	f.Fuzz(func(t *testing.T, b []byte, hop int, unspecified bool) {
		src := hostLL
		if unspecified {
			src = netip.IPv6Unspecified()
		}
		sol, reason := checkSolicitation(b, hop, src)
		if reason != "" {
			if sol.Source.IsValid() {
				t.Fatalf("dropped (%s) but returned %+v", reason, sol)
			}
			return
		}
		if hop != 255 || len(b) < 8 || b[0] != 133 || b[1] != 0 {
			t.Fatalf("accepted hop=%d header=% x", hop, b[:min(len(b), 2)])
		}
		if unspecified && hasSLLAO(b) {
			t.Fatal("accepted an SLLAO from the unspecified address")
		}
		if _, err := ndp.ParseMessage(b); err != nil && isEthernetOnly(b) {
			t.Fatalf("accepted an RS that ndp rejects: %v", err)
		}
	})
}

// hasSLLAO reports whether the RS b carries a well-formed SLLAO.
func hasSLLAO(b []byte) bool {
	opts := b[rsHeaderLen:]
	for len(opts) >= 2 && opts[1] > 0 && int(opts[1])*8 <= len(opts) {
		if opts[0] == optSourceLinkLayerAddress {
			return true
		}
		opts = opts[int(opts[1])*8:]
	}
	return false
}

// isEthernetOnly reports whether every option in the RS b is either not a
// link-layer address option or one of Ethernet's size, the only layout the
// ndp package parses.
func isEthernetOnly(b []byte) bool {
	opts := b[rsHeaderLen:]
	for len(opts) >= 2 && opts[1] > 0 && int(opts[1])*8 <= len(opts) {
		n := int(opts[1]) * 8
		if (opts[0] == 1 || opts[0] == 2) && n != 8 {
			return false
		}
		if opts[0] != 1 && opts[0] != 2 {
			// ndp parses known options strictly; only link-layer
			// options are compared.
			return false
		}
		opts = opts[n:]
	}
	return true
}
