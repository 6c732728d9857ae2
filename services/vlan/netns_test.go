package vlan

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/testns"
)

var (
	addrA = netip.MustParseAddr("2001:db8:7::a")
	addrB = netip.MustParseAddr("2001:db8:7::b")
)

// pair builds two namespaces joined by a veth pair, a0 in a (addrA) and b0
// in b (addrB), without DAD so that the addresses work at once.
func pair(t *testing.T) (a, b string) {
	t.Helper()
	testns.NeedRoot(t)
	a, b = testns.New(t, "vlana"), testns.New(t, "vlanb")
	testns.Veth(t, a, "a0", b, "b0")
	for _, side := range []struct{ ns, ifname string }{{a, "a0"}, {b, "b0"}} {
		testns.Sysctl(t, side.ns, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf."+side.ifname+".accept_dad=0")
	}
	testns.Up(t, a, "a0", addrA.String()+"/64")
	testns.Up(t, b, "b0", addrB.String()+"/64")
	return a, b
}

// attach puts port in ns on VLAN id; the tagger goes when the test ends.
func attach(t *testing.T, ns, port string, id uint16) *Tagger {
	t.Helper()
	var tg *Tagger
	if err := testns.Do(ns, func() (err error) { tg, err = Attach(port, id); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

func ping(ns string, to netip.Addr) error {
	return exec.Command("ip", "netns", "exec", ns, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", to.String()).Run()
}

func stats(t *testing.T, tg *Tagger) Stats {
	t.Helper()
	s, err := tg.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// IEEE 802.1Q: both ends on the same VLAN talk; every frame on the wire
// carries the tag (the kernel reports TPID 0x8100 and VID 7 for what the
// peer receives), and the stack above sees untagged traffic.
func TestSameVLANTalks(t *testing.T) {
	a, b := pair(t)
	ta, tb := attach(t, a, "a0", 7), attach(t, b, "b0", 7)
	frames := captureTags(t, b, "b0")
	if err := ping(a, addrB); err != nil {
		t.Fatalf("ping over VLAN 7: %v", err)
	}
	tags := frames()
	if len(tags) == 0 {
		t.Fatal("captured no frames on b0")
	}
	for _, tag := range tags {
		if tag != (wireTag{tpid: unix.ETH_P_8021Q, vid: 7}) {
			t.Errorf("frame on the wire with tag %+v, want 802.1Q (0x8100) VID 7", tag)
		}
	}
	for name, s := range map[string]Stats{"a0": stats(t, ta), "b0": stats(t, tb)} {
		if s.Received == 0 || s.Sent == 0 || s.DroppedUntagged+s.DroppedOtherVLAN+s.DroppedTagged+s.Failed != 0 {
			t.Errorf("%s: %+v, want frames both ways and no drops", name, s)
		}
	}
}

// A VLAN port hears nothing of another VLAN, nor untagged frames.
func TestOtherVLANAndUntaggedAreDropped(t *testing.T) {
	a, b := pair(t)
	tb := attach(t, b, "b0", 7)
	if err := ping(a, addrB); err == nil {
		t.Error("an untagged peer reached a port on VLAN 7")
	}
	if s := stats(t, tb); s.DroppedUntagged == 0 || s.Received != 0 {
		t.Errorf("untagged peer: %+v, want untagged drops and nothing received", s)
	}
	ta := attach(t, a, "a0", 8)
	if err := ping(a, addrB); err == nil {
		t.Error("a peer on VLAN 8 reached a port on VLAN 7")
	}
	if s := stats(t, tb); s.DroppedOtherVLAN == 0 || s.Received != 0 {
		t.Errorf("peer on VLAN 8: %+v, want drops of the other VLAN", s)
	}
	if s := stats(t, ta); s.Sent == 0 {
		t.Errorf("VLAN 8 side sent nothing tagged: %+v", s)
	}
}

// The tag is the one the standard writes: a frame whose bytes the test
// writes itself (TPID 0x8100, TCI with priority 5 and VID 7) is accepted.
func TestHandWrittenTagIsAccepted(t *testing.T) {
	a, b := pair(t)
	tb := attach(t, b, "b0", 7)
	var macB net.HardwareAddr
	testns.Do(b, func() error {
		ifi, err := net.InterfaceByName("b0")
		if err == nil {
			macB = ifi.HardwareAddr
		}
		return err
	})
	err := testns.Do(a, func() error {
		ifi, err := net.InterfaceByName("a0")
		if err != nil {
			return err
		}
		echo := icmp.Message{Type: ipv6.ICMPTypeEchoRequest, Body: &icmp.Echo{ID: 1, Seq: 1, Data: []byte("vlan")}}
		body, err := echo.Marshal(icmp.IPv6PseudoHeader(addrA.AsSlice(), addrB.AsSlice()))
		if err != nil {
			return err
		}
		frame := append([]byte{}, macB...)
		frame = append(frame, ifi.HardwareAddr...)
		frame = append(frame, 0x81, 0x00, 0xa0, 0x07, 0x86, 0xdd) // PCP 5, VID 7, then IPv6
		ip6 := make([]byte, 40)
		ip6[0] = 6 << 4
		binary.BigEndian.PutUint16(ip6[4:], uint16(len(body)))
		ip6[6], ip6[7] = 58, 64
		copy(ip6[8:], addrA.AsSlice())
		copy(ip6[24:], addrB.AsSlice())
		frame = append(append(frame, ip6...), body...)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6})
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for stats(t, tb).Received == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if s := stats(t, tb); s.Received == 0 {
		t.Errorf("the hand-tagged frame was not accepted: %+v", s)
	}
}

// Close leaves the port as it was: untagged traffic flows and the port is
// no longer promiscuous.
func TestCloseRestoresThePort(t *testing.T) {
	a, b := pair(t)
	ta, tb := attach(t, a, "a0", 7), attach(t, b, "b0", 7)
	if !promisc(t, b, "b0") {
		t.Error("b0 is not promiscuous while on the VLAN")
	}
	ta.Close()
	tb.Close()
	tb.Close() // twice is harmless
	if err := ping(a, addrB); err != nil {
		t.Errorf("untagged ping after Close: %v", err)
	}
	if promisc(t, b, "b0") {
		t.Error("b0 is still promiscuous after Close")
	}
	if s, err := tb.Stats(); err != nil || s != (Stats{}) {
		t.Errorf("closed tagger's stats: %+v, %v", s, err)
	}
}

func TestValidID(t *testing.T) {
	for id, ok := range map[int]bool{0: false, 1: true, 7: true, 4094: true, 4095: false, -1: false} {
		if err := ValidID(id); (err == nil) != ok {
			t.Errorf("ValidID(%d) = %v", id, err)
		}
	}
}

func promisc(t *testing.T, ns, port string) bool {
	t.Helper()
	var on bool
	if err := testns.Do(ns, func() error {
		l, err := netlink.LinkByName(port)
		if err == nil {
			on = l.Attrs().Promisc > 0 // IFLA_PROMISCUITY counts the socket memberships
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return on
}

type wireTag struct{ tpid, vid uint16 }

// captureTags starts reading what port in ns receives and returns a
// function that stops and reports each IPv6 frame's tag as the kernel saw
// it on the wire.
func captureTags(t *testing.T, ns, port string) func() []wireTag {
	t.Helper()
	var fd int
	if err := testns.Do(ns, func() error {
		ifi, err := net.InterfaceByName(port)
		if err != nil {
			return err
		}
		proto := uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(proto)); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return err
		}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000})
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index})
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return func() []wireTag {
		var out []wireTag
		buf, oob := make([]byte, 2048), make([]byte, 256)
		for {
			n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
			if err != nil {
				return out
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Pkttype == unix.PACKET_OUTGOING || n < 14 || binary.BigEndian.Uint16(buf[12:14]) != unix.ETH_P_IPV6 {
				continue
			}
			tag := wireTag{}
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
					aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
					if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
						tag = wireTag{tpid: aux.Vlan_tpid, vid: aux.Vlan_tci & 0x0fff}
					}
				}
			}
			out = append(out, tag)
		}
	}
}
