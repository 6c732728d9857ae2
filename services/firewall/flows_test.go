package firewall

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
	"github.com/vishvananda/netlink"
)

func flow(src, dst netip.Addr, proto Proto, sport, dport uint16) *netlink.ConntrackFlow {
	return &netlink.ConntrackFlow{FamilyType: 10, Forward: netlink.IPTuple{
		SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Protocol: uint8(proto), SrcPort: sport, DstPort: dport,
	}}
}

func TestEndedFlows(t *testing.T) {
	old := labPlan()
	noHost := labPlan()
	noHost.HostRules = nil
	noToken443 := labPlan()
	noToken443.TokenRules = []TokenRule{{Token: a("::80"), Ports: []Port{{TCP, 80}}}}
	noPrefix := labPlan()
	noPrefix.PrefixRules = nil
	gizmoLAN6 := a("2001:db8:1000:100::1")
	inPrefixRule := a("2001:db8:1000:110::42")
	for _, tc := range []struct {
		name string
		next Plan
		f    *netlink.ConntrackFlow
		want bool
	}{
		{"a removed exposed port ends the inbound flow to it", noHost, flow(inetHost, serverPriv, UDP, 40000, 51820), true},
		{"a removed token port ends the inbound flow to it", noToken443, flow(inetHost, serverTok, TCP, 40000, 443), true},
		{"the token's remaining port keeps its flow", noToken443, flow(inetHost, serverTok, TCP, 40000, 80), false},
		{"a removed prefix rule ends every inbound flow into the prefix", noPrefix, flow(inetHost, inPrefixRule, 58, 0, 0), true},
		{"a flow the LAN host opened is not the rule's, even on the exposed port", noHost, flow(serverPriv, inetHost, UDP, 51820, 51820), false},
		{"a flow the gizmo opened to the exposed port is not the rule's", noHost, flow(gizmoLAN6, serverPriv, UDP, 40000, 51820), false},
		{"a flow to a port the old rules did not open is not touched", noHost, flow(inetHost, serverPriv, UDP, 40000, 53), false},
		{"nothing removed, nothing ended", old, flow(inetHost, serverPriv, UDP, 40000, 51820), false},
		{"IPv4 flows are no inbound rule's", noHost, flow(inetHost4, legacyHost, UDP, 40000, 51820), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (endedFlows{old: old, next: tc.next}).MatchConntrackFlow(tc.f); got != tc.want {
				t.Errorf("ended = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAdmitsLess(t *testing.T) {
	more := labPlan()
	more.HostRules[0].Ports = append(more.HostRules[0].Ports, Port{TCP, 22})
	renumbered := labPlan()
	renumbered.LANPrefixes = []netip.Prefix{q("2001:db8:1000:200::/64"), q("fd12:3456:789a::/64")}
	for _, tc := range []struct {
		name      string
		old, next Plan
		want      bool
	}{
		{"the same plan", labPlan(), labPlan(), false},
		{"a port added", labPlan(), more, false},
		{"a port removed", more, labPlan(), true},
		{"a LAN /64 gone takes its token addresses", labPlan(), renumbered, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := admitsLess(tc.old, tc.next); got != tc.want {
				t.Errorf("admitsLess = %v, want %v", got, tc.want)
			}
		})
	}
}

// echoServer listens in ns and echoes every line back; it hands out each
// connection it accepts.
func echoServer(t *testing.T, ns, addr string) <-chan net.Conn {
	t.Helper()
	conns := make(chan net.Conn, 4)
	testns.ServeTCP(t, ns, "tcp", addr, func(c net.Conn) {
		conns <- c
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := c.Write([]byte(line)); err != nil {
				return
			}
		}
	})
	return conns
}

// echo writes one line on c and reports whether it came back within a
// second.
func echo(c net.Conn, line string) bool {
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return false
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && got == line+"\n"
}

// TestRemovedExposedPortEndsItsFlows: a connection from the WAN to a LAN
// host's exposed port lives on conntrack's established entry; removing the
// port from the plan must end it, not only refuse new ones. Neither side's
// next segment brings it back.
func TestRemovedExposedPortEndsItsFlows(t *testing.T) {
	tp := newTopo(t)
	exposed := topoPlan()
	exposed.HostRules = []HostRule{{Host: "02:00:00:00:00:05", Addrs: []netip.Addr{a(topoLANHost6)}, Ports: []Port{{TCP, 7000}, {TCP, 7001}}}}
	s := tp.firewall(t, exposed)
	served := echoServer(t, tp.lan, "[::]:7000")
	echoServer(t, tp.lan, "[::]:7001")
	dial := func(port string) net.Conn {
		t.Helper()
		var c net.Conn
		testns.Inside(t, tp.wan, func() {
			var err error
			if c, err = net.DialTimeout("tcp", "["+topoLANHost6+"]:"+port, 2*time.Second); err != nil {
				t.Fatalf("WAN → exposed port %s: %v", port, err)
			}
		})
		t.Cleanup(func() { c.Close() })
		return c
	}
	cut, kept := dial("7000"), dial("7001")
	if !echo(cut, "before") || !echo(kept, "before") {
		t.Fatal("no echo through the exposed ports")
	}
	server := <-served

	less := exposed
	less.HostRules = []HostRule{{Host: "02:00:00:00:00:05", Addrs: []netip.Addr{a(topoLANHost6)}, Ports: []Port{{TCP, 7001}}}}
	if err := s.Apply(less); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.FlowsEnded != 1 || st.FlowEndErrors != 0 {
		t.Errorf("stats %+v, want one flow ended and no error", st)
	}
	// The LAN host speaks first: its segment must not open the flow
	// again from the inside.
	moved(t, s, CounterDropNotSyn, func() {
		server.Write([]byte("pushed\n"))
		cut.SetReadDeadline(time.Now().Add(time.Second))
		if got, err := bufio.NewReader(cut).ReadString('\n'); err == nil {
			t.Errorf("the LAN host's %q reached the WAN after the port was removed", got)
		}
	})
	moved(t, s, CounterDropNotSyn, func() {
		if echo(cut, "after") {
			t.Error("the connection to the removed port still echoes")
		}
	})
	if !echo(kept, "after") {
		t.Error("the connection to the port that stays was cut too")
	}
	// A new connection to the removed port is refused by the rules.
	moved(t, s, CounterDropFwdWAN, func() {
		if err := dialTCP(t, tp.wan, "["+topoLANHost6+"]:7000"); err == nil {
			t.Error("a new connection to the removed port was let in")
		}
	})
}
