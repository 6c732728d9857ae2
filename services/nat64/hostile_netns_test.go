package nat64

import (
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/sockopt"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// Attacks on the NAT64's bounds with real packets through the kernel, in
// the three-namespace topology of netns_test.go.

// serverVia64 is the netns tests' IPv4 server, 198.51.100.80 port 7000,
// as the IPv6 host reaches it: under the well-known prefix.
var serverVia64 = &net.UDPAddr{IP: net.ParseIP("64:ff9b::198.51.100.80"), Port: 7000}

// toServer sends msg from the IPv6 host's socket host to the IPv4
// server through the NAT64.
func toServer(t *testing.T, host net.PacketConn, msg string) {
	t.Helper()
	if _, err := host.WriteTo([]byte(msg), serverVia64); err != nil {
		t.Fatal(err)
	}
}

// reachServer sends msg from host to the server's socket srv and returns
// where it came from there: the host's binding in the NAT64's pool.
func reachServer(t *testing.T, host, srv net.PacketConn, msg string) net.Addr {
	t.Helper()
	toServer(t, host, msg)
	buf := make([]byte, 2048)
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, from, err := srv.ReadFrom(buf)
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	return from
}

// sendPaced sends n packets, a few at a time, so that the veths' backlog
// (netdev_max_backlog) does not drop what the test counts.
func sendPaced(t *testing.T, n int, send func(i int) error) {
	t.Helper()
	for i := range n {
		for {
			err := send(i)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
				t.Fatalf("packet %d: %v", i, err)
			}
			time.Sleep(time.Millisecond)
		}
		if i%50 == 49 {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// udpHeader is a UDP header and payload with its IPv4 checksum.
func udpHeader(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	return seg{Proto: ProtoUDP, SPort: sport, DPort: dport, Payload: payload}.Bytes(src, dst)
}

func TestNetnsRemoteSprayingPortsIsBounded(t *testing.T) {
	tp, s := runTopo(t, 1500, Config{ReapInterval: time.Second})
	server := netip.MustParseAddr("198.51.100.80")

	srv := testns.ListenPacket(t, tp.v4, "udp4", "198.51.100.80:7000")
	raw := testns.ListenPacket(t, tp.v4, "ip4:udp", server.String())
	host := testns.ListenPacket(t, tp.h6, "udp6", "[2001:db8:1000::a]:0")

	// The host talks to the server: a binding, and the server's address
	// is let in from any of its ports (address-dependent filtering).
	binding := reachServer(t, host, srv, "hi").(*net.UDPAddr).AddrPort()

	// The server's address sprays 2000 source ports at the binding.
	const ports = 2000
	sendPaced(t, ports, func(i int) error {
		u := udpHeader(server, binding.Addr(), uint16(20000+i), binding.Port(), []byte("spray"))
		_, err := raw.WriteTo(u, &net.IPAddr{IP: binding.Addr().AsSlice()})
		return err
	})
	got := 0
	buf := make([]byte, 2048)
	for {
		host.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := host.ReadFrom(buf); err != nil {
			break
		}
		got++
	}
	c := s.Stats().Counters
	if got > DefaultMaxInboundSessionsPerBinding || c["inbound_session_refused"] == 0 ||
		got+int(c["inbound_session_refused"]) > ports {
		t.Errorf("the host got %d of %d sprayed datagrams with a bound of %d; inbound_session_refused %d",
			got, ports, DefaultMaxInboundSessionsPerBinding, c["inbound_session_refused"])
	}
	// The table holds the host's two sessions (its UDP flow, the start-up
	// ping) and the binding's bound, no more, once the reaper has counted.
	time.Sleep(1500 * time.Millisecond)
	if n := s.Stats().Sessions; n > 2+DefaultMaxInboundSessionsPerBinding {
		t.Errorf("%d sessions after the spray", n)
	}
	// The spray was not charged to the host: it opens new flows.
	toServer(t, host, "again")
	toServer(t, testns.ListenPacket(t, tp.h6, "udp6", "[2001:db8:1000::a]:0"), "new flow")
	seen := map[string]bool{}
	for len(seen) < 2 {
		srv.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := srv.ReadFrom(buf)
		if err != nil {
			t.Fatalf("the host's flows after the spray: got %v: %v (counters %v)", seen, err, s.Stats().Counters)
		}
		seen[string(buf[:n])] = true
	}
}

// echoFromFreebind sends one ICMPv6 echo request from src (not configured
// on the interface: IPV6_FREEBIND) to each destination.
func echoFromFreebind(t *testing.T, ns string, src netip.Addr, dsts []netip.Addr) {
	t.Helper()
	var c net.PacketConn
	var err error
	testns.Inside(t, ns, func() {
		lc := net.ListenConfig{Control: sockopt.Control(sockopt.Freebind)}
		c, err = lc.ListenPacket(t.Context(), "ip6:ipv6-icmp", src.String())
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := []byte{128, 0, 0, 0, 0, 7, 0, 1} // the kernel fills in the checksum
	sendPaced(t, len(dsts), func(i int) error {
		_, err := c.WriteTo(msg, &net.IPAddr{IP: dsts[i].AsSlice()})
		return err
	})
}

// addNeighbour puts a second LAN host in its own namespace: a macvlan of
// h6's interface (its own MAC on the same link) with addr in the LAN /64.
func (tp *topo) addNeighbour(t *testing.T, addr string) string {
	t.Helper()
	ns := tp.h6 + "b"
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh(t, in(tp.h6, "ip", "link", "add", "link", "eth0", "name", "mv0", "type", "macvlan", "mode", "bridge")...)
	sh(t, in(tp.h6, "ip", "link", "set", "mv0", "netns", ns)...)
	sh(t, in(ns, "ip", "link", "set", "lo", "up")...)
	sh(t, in(ns, "ip", "addr", "add", addr+"/64", "dev", "mv0", "nodad")...)
	sh(t, in(ns, "ip", "link", "set", "mv0", "up")...)
	sh(t, in(ns, "ip", "-6", "route", "add", "default", "via", "2001:db8:1000::1")...)
	return ns
}

func TestNetnsRFC8981RotatingHostMeetsItsMACLimit(t *testing.T) {
	tp := newTopo(t, 1500)
	tp.tweak = func(p *Plan) {
		p.MaxSessionsPerMAC = 200
		p.MaxSessionsPerHost = 50
	}
	neighbour := tp.addNeighbour(t, "2001:db8:1000::b")
	s, err := New(Config{ReapInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tp.start(t, s, 1500)
	var dsts []netip.Addr
	for i := range 100 {
		dsts = append(dsts, netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b, 12: 198, 13: 18, 14: 0, 15: byte(i)}))
	}
	// Five privacy addresses (RFC 8981) of one host, a hundred flows
	// each, in the /64 it shares with its neighbour.
	for a := range 5 {
		src := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x10, 0, 0, 0, 0x0a, 0xbc, 0, 0, 0, 0, 0, byte(a + 1)})
		echoFromFreebind(t, tp.h6, src, dsts)
	}
	var c map[string]uint64
	deadline := time.Now().Add(5 * time.Second)
	for {
		c = s.Stats().Counters
		if c["mac_limit_refused"] > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Once the reaper has counted: 200 sessions at most, one of them the
	// start-up ping's.
	time.Sleep(1500 * time.Millisecond)
	if n := s.Stats().Sessions; n > 200 || c["mac_limit_refused"] == 0 || c["host_limit_refused"] == 0 {
		t.Errorf("five addresses of one host (limit 200, an address's share 50): %d sessions, counters %v", n, c)
	}
	// The host is at its limit, with its stable address too ...
	out, err := command(in(tp.h6, "ping", "-c", "1", "-W", "1", "64:ff9b::198.51.100.80")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "0 received") {
		t.Errorf("a new flow from a host at its limit went through:\n%s", out)
	}
	// ... and its neighbour in the same /64 is not.
	if out, err := command(in(neighbour, "ping", "-c", "1", "-W", "2", "64:ff9b::198.51.100.80")).CombinedOutput(); err != nil {
		t.Errorf("the neighbour of a host at its limit: %v\n%s (counters %v)", err, out, s.Stats().Counters)
	}
}
