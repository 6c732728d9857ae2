package dhcp4_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/ethframe"
	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/internal/testrun"
	"codeberg.org/monostack/gizmo/services/dhcp4"
)

// frameSender writes hand-built Ethernet frames on the client end of a
// link, so that a test can say what a DHCP client's socket would not: an
// Ethernet source other than the chaddr.
type frameSender struct {
	c         *packet.Conn
	serverMAC net.HardwareAddr
}

func (l *link) frames(t *testing.T, serverIfs ...string) *frameSender {
	t.Helper()
	sif := serverIf
	if len(serverIfs) > 0 {
		sif = serverIfs[0]
	}
	fs := &frameSender{}
	if err := testns.Do(l.clientNS, func() error {
		ifi, err := net.InterfaceByName(l.clientIf)
		if err != nil {
			return err
		}
		fs.c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_IP, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.c.Close() })
	if err := testns.Do(l.serverNS, func() error {
		ifi, err := net.InterfaceByName(sif)
		if err == nil {
			fs.serverMAC = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return fs
}

var (
	bootpClient = netip.AddrPortFrom(netip.IPv4Unspecified(), 68)
	broadcast   = netip.AddrPortFrom(netip.MustParseAddr("255.255.255.255"), 67)
	serverPort  = netip.AddrPortFrom(netip.MustParseAddr("203.0.113.129"), 67)
)

// send writes m in a frame from the Ethernet source src, from the IP
// source from to to; a broadcast to goes to the Ethernet broadcast.
func (fs *frameSender) send(t *testing.T, src net.HardwareAddr, from, to netip.AddrPort, m *dhcpv4.DHCPv4) {
	t.Helper()
	dst := fs.serverMAC
	if to.Addr() == broadcast.Addr() {
		dst = ethframe.Broadcast
	}
	f := ethframe.Ethernet(dst, src, ethframe.TypeIPv4, ethframe.IPv4UDP(from, to, m.ToBytes()))
	for {
		_, err := fs.c.WriteTo(f, &packet.Addr{HardwareAddr: dst})
		if err == nil {
			return
		}
		if !isNoBufs(err) {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

func isNoBufs(err error) bool {
	var errno unix.Errno
	for e := err; e != nil; {
		if x, ok := e.(unix.Errno); ok {
			errno = x
			break
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return errno == unix.ENOBUFS || errno == unix.EAGAIN
}

func dhcpMessage(t *testing.T, typ dhcpv4.MessageType, chaddr net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(chaddr), dhcpv4.WithMessageType(typ)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitLease waits until the server holds a lease for mac and returns it.
func waitLease(t *testing.T, l *link, mac net.HardwareAddr) netip.Addr {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // a hang guard, not a measurement
	for time.Now().Before(deadline) {
		for _, le := range l.svc.Leases() {
			if le.MAC == mac.String() {
				return le.IP
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no lease for %s", mac)
	return netip.Addr{}
}

var (
	victimMAC   = net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0, 0x01}
	attackerMAC = net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0, 0x66}
)

// RFC 2131 §4.3.4 lets a client end its own lease; a LAN device that
// forges another host's chaddr must not end that host's lease. An
// unrelayed message's chaddr is the Ethernet source of a real client.
func TestForgedReleaseForAnotherHostsLease(t *testing.T) {
	l := newLink(t, linkPlan())
	fs := l.frames(t)
	want := netip.MustParseAddr("203.0.113.200")
	// The victim takes 203.0.113.200 (INIT-REBOOT: the server answers
	// authoritatively).
	fs.send(t, victimMAC, bootpClient, broadcast, dhcpMessage(t, dhcpv4.MessageTypeRequest, victimMAC,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(want.AsSlice()))))
	if got := waitLease(t, l, victimMAC); got != want {
		t.Fatalf("the victim got %s, want %s", got, want)
	}
	// The attacker releases and declines it in the victim's name, from
	// its own Ethernet address.
	fs.send(t, attackerMAC, netip.AddrPortFrom(want, 68), serverPort, dhcpMessage(t, dhcpv4.MessageTypeRelease, victimMAC,
		dhcpv4.WithClientIP(want.AsSlice()), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverPort.Addr().AsSlice()))))
	fs.send(t, attackerMAC, bootpClient, broadcast, dhcpMessage(t, dhcpv4.MessageTypeDecline, victimMAC,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(want.AsSlice())), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverPort.Addr().AsSlice()))))
	deadline := time.Now().Add(10 * time.Second) // a hang guard, not a measurement
	for time.Now().Before(deadline) {
		if st := l.svc.Stats(); st.SourceMismatch >= 2 || st.Releases+st.Declines > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := l.svc.Stats(); st.SourceMismatch != 2 {
		t.Errorf("the forgeries were not counted as source mismatches: %+v", st)
	}
	if st := l.svc.Stats(); st.Releases+st.Declines > 0 {
		t.Errorf("the server acted on a forged RELEASE or DECLINE: %+v", st)
	}
	if got := waitLease(t, l, victimMAC); got != want {
		t.Errorf("the victim's lease is %v after the forgeries, want %s", got, want)
	}
}

// A DHCPDISCOVER flood from one port, from one MAC or from a new MAC per
// message, gets few offers and cannot exhaust the pool: a normal host on
// the same link still gets a lease afterwards.
func TestDiscoverFloodIsLimited(t *testing.T) {
	l := newLink(t, linkPlan())
	fs := l.frames(t)
	const flood = 300
	for i := range flood {
		fs.send(t, attackerMAC, bootpClient, broadcast, dhcpMessage(t, dhcpv4.MessageTypeDiscover, attackerMAC,
			dhcpv4.WithTransactionID(dhcpv4.TransactionID{0, 0, byte(i >> 8), byte(i)})))
	}
	for i := range flood {
		mac := net.HardwareAddr{0x02, 0xf1, 0, 0, byte(i >> 8), byte(i)}
		fs.send(t, mac, bootpClient, broadcast, dhcpMessage(t, dhcpv4.MessageTypeDiscover, mac))
	}
	// Wait until the server has worked through the flood.
	var last dhcp4.Stats
	for stable := 0; stable < 10; {
		time.Sleep(50 * time.Millisecond)
		st := l.svc.Stats()
		if st == last {
			stable++
		} else {
			stable = 0
		}
		last = st
	}
	t.Logf("after %d DISCOVERs from one MAC and %d from new MACs: %+v", flood, flood, last)
	if last.Offers > 100 {
		t.Errorf("%d offers for a flood of %d DISCOVERs from one port", last.Offers, 2*flood)
	}
	if counted := last.RateLimitedClient + last.RateLimitedPort + last.SocketDrops + last.Offers; counted < 2*flood {
		t.Errorf("%d of %d DISCOVERs neither offered nor counted as rate limited or dropped", 2*flood-counted, 2*flood)
	}
	d, _ := l.dhcpcd(t, legacyConf, "-1", "-t", "20")
	if !waitFor(t, d, "leased 203.0.113.") {
		t.Fatal("a normal host got no lease after the flood")
	}
}

// bridgedLAN is the appliance's wiring: the server on a bridge (br0) with
// two ports, p-a and p-b, each a veth to a client namespace of its own.
type bridgedLAN struct {
	serverNS string
	clientNS [2]string
	svc      *dhcp4.Service
	sender   *frameSender
	hostLink *link // the client on p-b, as a link for dhcpcd
}

func newBridgedLAN(t *testing.T) *bridgedLAN {
	t.Helper()
	b := &bridgedLAN{serverNS: testns.New(t, "d4-brs"), clientNS: [2]string{testns.New(t, "d4-bra"), testns.New(t, "d4-brb")}}
	p := linkPlan()
	testns.IP(t, "-n", b.serverNS, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	testns.IP(t, "-n", b.serverNS, "addr", "add", p.Server.String(), "dev", "br0")
	for i, port := range []string{"p-a", "p-b"} {
		testns.Veth(t, b.serverNS, port, b.clientNS[i], "d4c0")
		testns.IP(t, "-n", b.serverNS, "link", "set", port, "master", "br0", "up")
		testns.IP(t, "-n", b.clientNS[i], "link", "set", "d4c0", "up")
	}
	testns.IP(t, "-n", b.serverNS, "link", "set", "br0", "up")
	var lan *dhcp4.LAN
	if err := testns.Do(b.serverNS, func() (err error) {
		lan, err = dhcp4.ListenLAN("br0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var err error
	b.svc, err = dhcp4.New(dhcp4.Config{LAN: lan, StateDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	b.svc.Update(p)
	testrun.Start(t, "Run", b.svc.Run)
	// The attacker on p-a writes frames; the honest host on p-b runs
	// dhcpcd like any link's client.
	b.sender = (&link{clientNS: b.clientNS[0], clientIf: "d4c0", serverNS: b.serverNS}).frames(t, "br0")
	b.hostLink = &link{clientNS: b.clientNS[1], clientIf: "d4c0", serverNS: b.serverNS, svc: b.svc}
	return b
}

// On a bridge the limit on new clients is per port: a DISCOVER flood
// from random MACs on one port takes that port's budget only, and a new
// host on another port gets its lease while the flood goes on.
func TestFloodOnOneBridgePortSparesTheOthers(t *testing.T) {
	b := newBridgedLAN(t)
	ctx, cancel := context.WithCancel(context.Background())
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		for i := 0; ctx.Err() == nil; i++ {
			mac := net.HardwareAddr{0x02, 0xf1, 0, byte(i >> 16), byte(i >> 8), byte(i)}
			b.sender.send(t, mac, bootpClient, broadcast, dhcpMessage(t, dhcpv4.MessageTypeDiscover, mac))
			// A thousand a second: enough to empty the port's budget at
			// once, not so many that the test machine's own queues
			// (netdev_max_backlog, shared by every veth) drop the honest
			// host's frames before any server sees them.
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { cancel(); <-flooding }()
	time.Sleep(500 * time.Millisecond) // the flood has used up p-a's budget
	d, _ := b.hostLink.dhcpcd(t, legacyConf, "-1", "-t", "20")
	if !waitFor(t, d, "leased 203.0.113.") {
		t.Fatalf("a host on the other port got no lease during the flood; %+v", b.svc.Stats())
	}
	if st := b.svc.Stats(); st.RateLimitedPort == 0 || st.Offers > 100 {
		t.Errorf("the flood was not limited on its port: %+v", st)
	}
}
