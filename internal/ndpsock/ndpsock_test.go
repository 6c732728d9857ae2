package ndpsock

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"

	"codeberg.org/monostack/gizmo/internal/testns"
)

const envChild = "GZT_NDPSOCK_CHILD"

// A socket set up to accept Router Solicitations reads only those, each
// with the hop limit it arrived with (RFC 4861 §6.1.1 checks 255) and its
// interface.
func TestAcceptReadsOneTypeWithHopLimit(t *testing.T) {
	testns.NeedRoot(t)
	ns := testns.New(t, "ndpsock")
	testns.RunChild(t, ns, "TestAcceptChild", envChild+"=1")
}

func TestAcceptChild(t *testing.T) {
	if os.Getenv(envChild) == "" {
		t.Skip("runs inside the namespace of TestAcceptReadsOneTypeWithHopLimit")
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	recv, _, err := ndp.Listen(lo, ndp.Unspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	if err := Accept(recv, ipv6.ICMPTypeRouterSolicitation); err != nil {
		t.Fatal(err)
	}
	send, _, err := ndp.Listen(lo, ndp.Unspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	dst := netip.IPv6Loopback()
	// The advertisement, sent first, must not pass the filter.
	if err := send.WriteTo(&ndp.RouterAdvertisement{}, nil, dst); err != nil {
		t.Fatal(err)
	}
	if err := send.WriteTo(&ndp.RouterSolicitation{}, nil, dst); err != nil {
		t.Fatal(err)
	}
	if err := recv.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	m, err := Read(recv, make([]byte, 1280))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Bytes) == 0 || ipv6.ICMPType(m.Bytes[0]) != ipv6.ICMPTypeRouterSolicitation {
		t.Fatalf("read % x, want a router solicitation", m.Bytes)
	}
	if m.HopLimit != 255 || m.IfIndex != lo.Index || m.Src.WithZone("") != dst {
		t.Fatalf("hop limit %d, interface %d, source %v; want 255, %d, %v", m.HopLimit, m.IfIndex, m.Src, lo.Index, dst)
	}
}
