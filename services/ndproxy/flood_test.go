package ndproxy

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/ethframe"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// A DAD flood from the LAN: 300 probes for random addresses in the shared
// /64 that nobody will answer for. Each claim is proxied briefly and then
// withdrawn unproven (RFC 4389 §4.1: the proxy must know which side holds
// an address; a claim alone does not show it), the table stays within
// MaxAddrs by evicting unproven claims first, and the host that answered
// the gizmo's probe stays proxied throughout.
func TestProxyDADFloodStaysBounded(t *testing.T) {
	n := newProxyNet(t)
	const maxAddrs = 64
	s, _ := n.start(t, Config{MaxAddrs: maxAddrs, UnprovenMaxAge: 3 * time.Second})
	n.share(t, s)
	n.addHostAddr(t, hostShared)
	testns.WaitFor(t, "the honest host to be proven", 10*time.Second, func() (bool, string) {
		st := s.Stats()
		return st.Proven >= 1 && st.Unproven == 0 && len(st.Proxied) == 1, ""
	})

	var tx *packet.Conn
	var hostMAC net.HardwareAddr
	if err := testns.Do(n.host, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		hostMAC = ifi.HardwareAddr
		tx, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_IPV6, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	const flood = 300
	prefix := netip.MustParsePrefix(sharedPrefix)
	for i := range flood {
		b := prefix.Addr().As16()
		b[8], b[14], b[15] = 0xda, byte(i>>8), byte(i)
		target := netip.AddrFrom16(b)
		dst := ethframe.SolicitedNode(target)
		icmp, err := ndp.MarshalMessageChecksum(&ndp.NeighborSolicitation{TargetAddress: target}, netip.IPv6Unspecified(), dst)
		if err != nil {
			t.Fatal(err)
		}
		f := ethframe.Ethernet(ethframe.MulticastMAC(dst), hostMAC, ethframe.TypeIPv6, ethframe.IPv6(netip.IPv6Unspecified(), dst, 255, 58, icmp))
		if _, err := tx.WriteTo(f, &packet.Addr{HardwareAddr: f[:6]}); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	testns.WaitFor(t, "the flood to be heard", 5*time.Second, func() (bool, string) {
		st := s.Stats()
		return st.DADSeen >= flood/2, fmt.Sprintf("%+v", st)
	})
	if st := s.Stats(); st.Proxying > maxAddrs || !slices.Contains(st.Proxied, netip.MustParseAddr(hostShared)) {
		t.Errorf("during the flood: %d proxied (bound %d), honest host proxied: %v", st.Proxying, maxAddrs, slices.Contains(st.Proxied, netip.MustParseAddr(hostShared)))
	}
	testns.WaitFor(t, "the unproven claims to expire", 15*time.Second, func() (bool, string) {
		st := s.Stats()
		return st.Proxying == 1 && st.Unproven == 0, fmt.Sprintf("%+v", st)
	})
	st := s.Stats()
	if st.UnprovenEvicted == 0 || st.UnprovenExpired == 0 || st.UnprovenEvicted+st.UnprovenExpired+st.Dropped < flood/2 {
		t.Errorf("the flood's claims were not counted as evicted and expired: %+v", st)
	}
	// Every claim learned went one of the counted ways; the honest host's
	// address stays.
	if st.Learned != st.UnprovenEvicted+st.UnprovenExpired+1 {
		t.Errorf("learned %d, evicted %d + expired %d + the honest one: a claim went uncounted", st.Learned, st.UnprovenEvicted, st.UnprovenExpired)
	}
	if out, ok := ping(n.up, "", hostShared); !ok {
		t.Errorf("after the flood the upstream cannot reach the honest host:\n%s", out)
	}
}
