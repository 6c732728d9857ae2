package dhcp4

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/bpf"

	"codeberg.org/monostack/gizmo/internal/ethframe"
)

var (
	clientMAC = net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0, 0x01}
	otherMAC  = net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0, 0x66}
)

func discoverFrom(t testing.TB, src, chaddr net.HardwareAddr) []byte {
	t.Helper()
	m, err := dhcpv4.New(dhcpv4.WithHwAddr(chaddr), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover))
	if err != nil {
		t.Fatal(err)
	}
	udp := ethframe.IPv4UDP(netip.MustParseAddrPort("0.0.0.0:68"), netip.MustParseAddrPort("255.255.255.255:67"), m.ToBytes())
	return ethframe.Ethernet(ethframe.Broadcast, src, ethframe.TypeIPv4, udp)
}

func TestParseFrame(t *testing.T) {
	good := discoverFrom(t, clientMAC, clientMAC)
	badIPSum := append([]byte(nil), good...)
	badIPSum[ethHeaderLen+10] ^= 0xff
	badUDPSum := append([]byte(nil), good...)
	badUDPSum[len(badUDPSum)-1] ^= 0xff
	fragment := append([]byte(nil), good...)
	fragment[ethHeaderLen+6] |= 0x20 // MF
	fragment[ethHeaderLen+10], fragment[ethHeaderLen+11] = 0, 0
	sum := ethframe.Checksum(fragment[ethHeaderLen : ethHeaderLen+20])
	fragment[ethHeaderLen+10], fragment[ethHeaderLen+11] = byte(sum>>8), byte(sum)
	for _, tc := range []struct {
		name        string
		frame       []byte
		csumPending bool
		err         error
	}{
		{"a broadcast DISCOVER parses, with its Ethernet source", good, false, nil},
		{"RFC 791: a wrong header checksum is refused", badIPSum, false, errBadIPv4},
		{"RFC 768: a wrong UDP checksum is refused", badUDPSum, false, errBadUDP},
		{"a UDP checksum the sender's hardware was to fill in is not checked", badUDPSum, true, nil},
		{"RFC 2131 2: a DHCP message is never a fragment", fragment, false, errFragment},
		{"a truncated frame is refused", good[:30], false, errBadEtherFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := parseFrame(tc.frame, tc.csumPending)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && (in.src.String() != clientMAC.String() || in.dst != netip.MustParseAddr("255.255.255.255") || !in.l2) {
				t.Errorf("parsed %+v", in)
			}
		})
	}
}

func TestCheckSource(t *testing.T) {
	msg := func(chaddr net.HardwareAddr, giaddr string) *dhcpv4.DHCPv4 {
		m, _ := dhcpv4.New(dhcpv4.WithHwAddr(chaddr), dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease))
		if giaddr != "" {
			m.GatewayIPAddr = net.ParseIP(giaddr).To4()
		}
		return m
	}
	for _, tc := range []struct {
		name string
		req  *dhcpv4.DHCPv4
		in   inbound
		want string
	}{
		{"RFC 2131 2: an unrelayed client's chaddr is its frame's source", msg(clientMAC, ""), inbound{l2: true, src: clientMAC}, ""},
		{"a message in another host's name (a forged RELEASE) is dropped", msg(clientMAC, ""), inbound{l2: true, src: otherMAC}, dropSourceMismatch},
		{"RFC 2131 4.1: a relay vouches for its clients' chaddr", msg(clientMAC, "203.0.113.140"), inbound{l2: true, src: otherMAC}, ""},
		{"a relayed message over a plain socket is served", msg(clientMAC, "127.16.0.2"), inbound{}, ""},
		{"an unrelayed message without its frame cannot be checked", msg(clientMAC, ""), inbound{}, dropUnverified},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkSource(tc.req, tc.in); got != tc.want {
				t.Errorf("checkSource = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	mac := func(i int) [6]byte { return [6]byte{0x02, 0xf1, 0, 0, byte(i >> 8), byte(i)} }
	t.Run("a client gets its burst, then one message per refill", func(t *testing.T) {
		l := newLimiter()
		for i := range clientBurst {
			if r := l.allow(1, mac(0), true, t0); r != "" {
				t.Fatalf("message %d limited: %s", i, r)
			}
		}
		if r := l.allow(1, mac(0), true, t0); r != LimitClient {
			t.Errorf("past the burst: %q, want %q", r, LimitClient)
		}
		if r := l.allow(1, mac(0), true, t0.Add(time.Duration(float64(time.Second)/clientRate))); r != "" {
			t.Errorf("after a refill: %q", r)
		}
	})
	t.Run("new clients on one port share its budget", func(t *testing.T) {
		l := newLimiter()
		limited := 0
		for i := range 200 {
			if l.allow(1, mac(i), false, t0) == LimitPort {
				limited++
			}
		}
		if limited != 200-portBurst {
			t.Errorf("%d of 200 new clients limited, want %d", limited, 200-portBurst)
		}
		if r := l.allow(2, mac(500), false, t0); r != "" {
			t.Errorf("a new client on another port: %q", r)
		}
		if r := l.allow(1, mac(501), true, t0); r != "" {
			t.Errorf("a client with a lease on the flooded port: %q", r)
		}
		if r := l.allow(1, mac(502), false, t0.Add(time.Second/portRate)); r != "" {
			t.Errorf("a new client once the port's budget refilled: %q", r)
		}
	})
	t.Run("the client state stays bounded", func(t *testing.T) {
		l := newLimiter()
		for i := range 3 * maxClientBuckets {
			// A port per client, so that only the client limit applies;
			// each client's bucket is full again after clientBurst/clientRate.
			l.allow(i, mac(i), false, t0.Add(time.Duration(i)*time.Millisecond))
		}
		if len(l.clients) > maxClientBuckets {
			t.Errorf("%d client buckets, bound %d", len(l.clients), maxClientBuckets)
		}
	})
}

// The socket's filter takes DHCP requests and nothing else.
func TestRequestFilter(t *testing.T) {
	good := discoverFrom(t, clientMAC, clientMAC)
	reply := append([]byte(nil), good...)
	reply[ethHeaderLen+20+3] = 68 // to the client port
	tcp := append([]byte(nil), good...)
	tcp[ethHeaderLen+9] = 6
	arp := ethframe.Ethernet(ethframe.Broadcast, clientMAC, ethframe.TypeARP, ethframe.ARP(1, clientMAC, netip.MustParseAddr("203.0.113.130"), make(net.HardwareAddr, 6), netip.MustParseAddr("203.0.113.129")))
	for _, tc := range []struct {
		name    string
		frame   []byte
		pkttype uint32
		pass    bool
	}{
		{"a broadcast DISCOVER passes", good, 1, true},
		{"a unicast request to another host's MAC passes (a bridge port calls the gizmo's otherhost)", good, 3, true},
		{"the gizmo's own outgoing frame does not", good, 4, false},
		{"a reply to port 68 does not", reply, 1, false},
		{"TCP does not", tcp, 0, false},
		{"ARP does not", arp, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog := append([]bpf.Instruction{bpf.LoadConstant{Dst: bpf.RegA, Val: tc.pkttype}}, requestFilter[1:]...)
			vm, err := bpf.NewVM(prog)
			if err != nil {
				t.Fatal(err)
			}
			n, err := vm.Run(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			if (n > 0) != tc.pass {
				t.Errorf("filter returned %d, want pass=%v", n, tc.pass)
			}
		})
	}
}

// FuzzParseFrame: no frame makes the parser panic, and what it accepts is
// a datagram to the server port within the frame.
func FuzzParseFrame(f *testing.F) {
	f.Add(discoverFrom(f, clientMAC, clientMAC), false)
	f.Add(discoverFrom(f, clientMAC, otherMAC)[:60], true)
	f.Fuzz(func(t *testing.T, b []byte, pending bool) {
		in, err := parseFrame(b, pending)
		if err != nil {
			return
		}
		if len(in.payload) > len(b) || in.src.String() != net.HardwareAddr(b[6:12]).String() || !in.dst.Is4() {
			t.Fatalf("accepted %+v from %d bytes", in, len(b))
		}
	})
}

// BenchmarkAdmitFrame is the work a DISCOVER of a flood costs before the
// protocol sees it: the frame's checks, the DHCP parse, the source check
// and the limiter, which refuses it.
func BenchmarkAdmitFrame(b *testing.B) {
	s := &Service{e: newEngine(nil), limit: newLimiter(), now: time.Now}
	s.e.setPlan(Plan{Server: netip.MustParsePrefix("203.0.113.129/25"),
		PoolStart: netip.MustParseAddr("203.0.113.130"), PoolEnd: netip.MustParseAddr("203.0.113.254")})
	frame := discoverFrom(b, clientMAC, clientMAC)
	for b.Loop() {
		in, err := parseFrame(frame, false)
		if err != nil {
			b.Fatal(err)
		}
		in.port = 1
		req, err := dhcpv4.FromBytes(in.payload)
		if err != nil {
			b.Fatal(err)
		}
		s.admit(req, in, time.Now())
	}
}
