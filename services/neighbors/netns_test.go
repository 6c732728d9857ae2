package neighbors

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/ethframe"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// lanNet is a gizmo namespace (lan0, a router: forwarding on) and a host
// namespace (eth0) joined by a veth pair. The host end sends hand-built
// frames: what a LAN device may say about itself and about others.
type lanNet struct {
	gizmo, host string
	gizmoMAC    net.HardwareAddr
	hostMAC     net.HardwareAddr
	tx          *packet.Conn
}

const gizmoLANAddr = "2001:db8:1000::1"

func newLANNet(t *testing.T) *lanNet {
	t.Helper()
	n := &lanNet{gizmo: testns.New(t, "nbg"), host: testns.New(t, "nbh")}
	testns.Sysctl(t, n.gizmo, "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	testns.Veth(t, n.gizmo, "lan0", n.host, "eth0")
	testns.IP(t, "-n", n.gizmo, "addr", "add", gizmoLANAddr+"/64", "dev", "lan0", "nodad")
	testns.IP(t, "-n", n.gizmo, "addr", "add", "203.0.113.129/25", "dev", "lan0")
	testns.IP(t, "-n", n.gizmo, "link", "set", "lan0", "up")
	testns.IP(t, "-n", n.host, "link", "set", "eth0", "up")
	for _, side := range []struct {
		ns, ifname string
		mac        *net.HardwareAddr
	}{{n.gizmo, "lan0", &n.gizmoMAC}, {n.host, "eth0", &n.hostMAC}} {
		if err := testns.Do(side.ns, func() error {
			ifi, err := net.InterfaceByName(side.ifname)
			if err != nil {
				return err
			}
			*side.mac = ifi.HardwareAddr
			if side.ns == n.host {
				n.tx, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { n.tx.Close() })
	return n
}

// sightings runs the service in the gizmo namespace and collects what it
// reports.
type sightings struct {
	mu  sync.Mutex
	all []Sighting
}

func (s *sightings) add(sg Sighting) {
	s.mu.Lock()
	s.all = append(s.all, sg)
	s.mu.Unlock()
}

func (s *sightings) list() []Sighting {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sighting(nil), s.all...)
}

func (n *lanNet) start(t *testing.T) (*Service, *sightings) {
	t.Helper()
	got := &sightings{}
	svc, err := New(Config{Interface: "lan0", OnSighting: got.add, Rescan: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	testns.Start(t, n.gizmo, svc.Run)
	time.Sleep(300 * time.Millisecond) // the watch is set up
	return svc, got
}

// waitFrom waits until a sighting from a frame pairs mac with addr.
func (s *sightings) waitFrom(t *testing.T, mac net.HardwareAddr, addr netip.Addr) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second) // a hang guard, not a measurement
	for time.Now().Before(deadline) {
		for _, sg := range s.list() {
			if sg.FromFrame && sg.MAC.String() == mac.String() && sg.Addr == addr {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	all := s.list()
	t.Fatalf("no sighting from a frame of %s using %s; the last of %d: %+v", mac, addr, len(all), all[max(0, len(all)-4):])
}

func (n *lanNet) send(t *testing.T, frame []byte) {
	t.Helper()
	if _, err := n.tx.WriteTo(frame, &packet.Addr{HardwareAddr: frame[:6]}); err != nil {
		t.Fatal(err)
	}
}

// nd is an ND message m from the Ethernet source src and IPv6 source from
// to dst, in one frame.
func nd(t *testing.T, src net.HardwareAddr, from, dst netip.Addr, dstMAC net.HardwareAddr, m ndp.Message) []byte {
	t.Helper()
	icmp, err := ndp.MarshalMessageChecksum(m, from, dst)
	if err != nil {
		t.Fatal(err)
	}
	return ethframe.Ethernet(dstMAC, src, ethframe.TypeIPv6, ethframe.IPv6(from, dst, 255, 58, icmp))
}

var victimMAC = net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0, 0x01}

// A LAN device that names a victim's MAC in a link-layer option (an RS's
// SLLAO, an NS's SLLAO) makes the kernel's neighbour table believe it;
// the watcher must not report that the victim uses the device's address:
// addresses are the victim's only in frames whose Ethernet source is the
// victim's.
func TestOptionsNamingAnotherMACAttachNothing(t *testing.T) {
	n := newLANNet(t)
	svc, got := n.start(t)
	attackerLL := netip.MustParseAddr("fe80::bad")
	attackerGlobal := netip.MustParseAddr("2001:db8:1000::bad")
	allRouters := netip.MustParseAddr("ff02::2")
	n.send(t, nd(t, n.hostMAC, attackerLL, allRouters, ethframe.MulticastMAC(allRouters), &ndp.RouterSolicitation{
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: victimMAC}},
	}))
	gizmo := netip.MustParseAddr(gizmoLANAddr)
	n.send(t, nd(t, n.hostMAC, attackerGlobal, ethframe.SolicitedNode(gizmo), ethframe.MulticastMAC(ethframe.SolicitedNode(gizmo)), &ndp.NeighborSolicitation{
		TargetAddress: gizmo,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: victimMAC}},
	}))
	time.Sleep(time.Second) // several rescans
	for _, s := range got.list() {
		if s.MAC.String() == victimMAC.String() && s.FromFrame {
			t.Errorf("reported that the victim %s uses %s (from an option another device sent)", s.MAC, s.Addr)
		}
		if s.Addr == attackerLL || s.Addr == attackerGlobal {
			if s.FromFrame {
				t.Errorf("a frame with a mismatched option showed %+v", s)
			}
		}
	}
	if st := svc.Stats(); st.Ignored[ReasonLLAddrMismatch] < 2 {
		t.Errorf("mismatches not counted: %+v", st)
	}
	// The kernel's entries that believed the options were probed, and
	// nobody answers for them with the victim's MAC.
	if st := svc.Stats(); st.Probes == 0 {
		t.Errorf("the kernel's unconfirmed entries were not probed: %+v", st)
	}
}

// A host's own ND and ARP frames show its addresses: the NS it sends to
// resolve the gizmo (from the address it talks from) and its ARP request.
func TestFramesShowHostAddresses(t *testing.T) {
	n := newLANNet(t)
	_, got := n.start(t)
	testns.IP(t, "-n", n.host, "addr", "add", "2001:db8:1000::10/64", "dev", "eth0", "nodad")
	testns.IP(t, "-n", n.host, "addr", "add", "203.0.113.130/25", "dev", "eth0")
	testns.Exec(t, n.host, "ping", "-6", "-c", "1", "-W", "2", gizmoLANAddr)
	testns.Exec(t, n.host, "ping", "-4", "-c", "1", "-W", "2", "203.0.113.129")
	got.waitFrom(t, n.hostMAC, netip.MustParseAddr("2001:db8:1000::10"))
	got.waitFrom(t, n.hostMAC, netip.MustParseAddr("203.0.113.130"))
}

// A neighbour entry no frame confirmed is probed: the host that holds the
// address answers the kernel's unicast NS, and its NA shows the pair.
func TestUnconfirmedEntryIsProbed(t *testing.T) {
	n := newLANNet(t)
	testns.IP(t, "-n", n.host, "addr", "add", "2001:db8:1000::20/64", "dev", "eth0", "nodad")
	// As after a restart of the daemon: the kernel knows the host, the
	// frame watch has not heard from it.
	testns.IP(t, "-n", n.gizmo, "neigh", "replace", "2001:db8:1000::20", "lladdr", n.hostMAC.String(), "dev", "lan0", "nud", "stale")
	svc, got := n.start(t)
	got.waitFrom(t, n.hostMAC, netip.MustParseAddr("2001:db8:1000::20"))
	if st := svc.Stats(); st.Probes == 0 {
		t.Errorf("no probe counted: %+v", st)
	}
}
