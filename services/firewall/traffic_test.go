package firewall

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// listenTCP listens in ns; the listener accepts and closes connections
// and reports each peer address.
func listenTCP(t *testing.T, ns, addr string) <-chan netip.AddrPort {
	t.Helper()
	peers := make(chan netip.AddrPort, 16)
	testns.ServeTCP(t, ns, "tcp", addr, func(c net.Conn) {
		peers <- netip.MustParseAddrPort(c.RemoteAddr().String())
		c.Close()
	})
	return peers
}

// dialTCP connects from ns. A dropped SYN shows as a timeout; the caller
// checks the drop counter too, so the timeout is not what the test rests on.
func dialTCP(t *testing.T, ns, addr string) error {
	t.Helper()
	var err error
	testns.Inside(t, ns, func() {
		var c net.Conn
		c, err = net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
	})
	return err
}

// sendUDP sends one datagram from ns, from src (may be empty) to dst.
func sendUDP(t *testing.T, ns, src, dst string) {
	t.Helper()
	testns.Inside(t, ns, func() {
		var laddr *net.UDPAddr
		if src != "" {
			laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(a(src), 0))
		}
		c, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("probe")); err != nil {
			t.Fatal(err)
		}
	})
}

func counters(t *testing.T, s *Service) map[string]Counter {
	t.Helper()
	c, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// moved runs fn and fails the test unless the named counter grew.
func moved(t *testing.T, s *Service, name string, fn func()) {
	t.Helper()
	before := counters(t, s)[name].Packets
	fn()
	if after := counters(t, s)[name].Packets; after <= before {
		t.Errorf("counter %s did not move (%d → %d)", name, before, after)
	}
}

// TestTraffic sends real packets across veths through the applied ruleset.
func TestTraffic(t *testing.T) {
	tp := newTopo(t)
	s := tp.firewall(t, topoPlan())

	t.Run("LAN to WAN IPv6 is forwarded and counted native", func(t *testing.T) {
		listenTCP(t, tp.wan, "["+topoWAN6+"]:8000")
		moved(t, s, CounterIPv6Forwarded, func() {
			if err := dialTCP(t, tp.lan, "["+topoWAN6+"]:8000"); err != nil {
				t.Errorf("LAN → WAN: %v", err)
			}
		})
	})
	t.Run("WAN to LAN unsolicited is dropped", func(t *testing.T) {
		listenTCP(t, tp.lan, "[::]:22")
		moved(t, s, CounterDropFwdWAN, func() {
			if err := dialTCP(t, tp.wan, "["+topoLANHost6+"]:22"); err == nil {
				t.Error("WAN → LAN tcp/22 connected")
			}
		})
	})
	t.Run("token rule opens tcp/443 on ::80", func(t *testing.T) {
		listenTCP(t, tp.lan, "[::]:443")
		moved(t, s, CounterInboundToken, func() {
			if err := dialTCP(t, tp.wan, "["+topoLANToken6+"]:443"); err != nil {
				t.Errorf("WAN → ::80 tcp/443: %v", err)
			}
		})
		moved(t, s, CounterDropFwdWAN, func() {
			if err := dialTCP(t, tp.wan, "["+topoLANHost6+"]:443"); err == nil {
				t.Error("WAN → ::5 tcp/443 connected without a rule")
			}
		})
	})
	t.Run("host rule opens udp/51820 on the privacy address", func(t *testing.T) {
		pc := testns.ListenPacket(t, tp.lan, "udp", "[::]:51820")
		moved(t, s, CounterInboundHost, func() {
			sendUDP(t, tp.wan, "", "["+topoLANPriv6+"]:51820")
			_ = pc.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, _, err := pc.ReadFrom(make([]byte, 64)); err != nil {
				t.Errorf("udp/51820 to the host: %v", err)
			}
		})
	})
	t.Run("RFC 4890 4.3.1: echo request reaches a LAN host", func(t *testing.T) {
		testns.Exec(t, tp.wan, "ping", "-c", "1", "-W", "2", topoLANHost6)
	})
	t.Run("management ports are LAN-only", func(t *testing.T) {
		listenTCP(t, tp.router, "[::]:80")
		moved(t, s, CounterDropMgmtWAN, func() {
			if err := dialTCP(t, tp.wan, "["+topoRouterW6+"]:80"); err == nil {
				t.Error("dashboard reachable from the WAN over IPv6")
			}
			if err := dialTCP(t, tp.wan, topoRouterW4+":80"); err == nil {
				t.Error("dashboard reachable from the WAN over IPv4")
			}
		})
		if err := dialTCP(t, tp.lan, "["+topoRouterL6+"]:80"); err != nil {
			t.Errorf("dashboard from the LAN: %v", err)
		}
	})
	t.Run("NAT44 masquerades the legacy pool", func(t *testing.T) {
		peers := listenTCP(t, tp.wan, topoWAN4+":8004")
		moved(t, s, CounterNAT44, func() {
			// From a low port, which the NAT64 program owns on the WAN
			// address: NAT44 must move it into its own range.
			testns.Inside(t, tp.lan, func() {
				d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(topoLANHost4), Port: 1500}}
				c, err := d.Dial("tcp", topoWAN4+":8004")
				if err != nil {
					t.Fatalf("legacy host → WAN: %v", err)
				}
				c.Close()
			})
		})
		got := <-peers
		if got.Addr() != a(topoRouterW4) {
			t.Errorf("the internet saw %v, want the WAN address %s", got.Addr(), topoRouterW4)
		}
		if r := topoPlan().NAT44Ports; got.Port() < r.Min || got.Port() > r.Max {
			t.Errorf("the internet saw source port %d, want one in the NAT44 range %d-%d", got.Port(), r.Min, r.Max)
		}
	})
	t.Run("BCP 38: spoofed LAN source dropped", func(t *testing.T) {
		testns.IP(t, "-n", tp.lan, "addr", "add", "2001:db8:9999::5/128", "dev", "eth0", "nodad")
		testns.IP(t, "-n", tp.lan, "addr", "add", "10.9.9.9/32", "dev", "eth0")
		moved(t, s, CounterDropSpoofLAN, func() {
			sendUDP(t, tp.lan, "2001:db8:9999::5", "["+topoWAN6+"]:9")
			sendUDP(t, tp.lan, "10.9.9.9", topoWAN4+":9")
		})
	})
	t.Run("RFC 3704: the gizmo's WAN addresses as LAN source dropped", func(t *testing.T) {
		testns.IP(t, "-n", tp.lan, "addr", "add", topoRouterW6+"/128", "dev", "eth0", "nodad")
		testns.IP(t, "-n", tp.lan, "addr", "add", topoRouterW4+"/32", "dev", "eth0")
		pc := testns.ListenPacket(t, tp.wan, "udp", ":9999")
		moved(t, s, CounterDropLANWAN, func() {
			sendUDP(t, tp.lan, topoRouterW6, "["+topoWAN6+"]:9999")
			sendUDP(t, tp.lan, topoRouterW4, topoWAN4+":9999")
		})
		_ = pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, from, err := pc.ReadFrom(make([]byte, 64)); err == nil {
			t.Errorf("a datagram from %v, the gizmo's own address sent from the LAN, reached the WAN", from)
		}
	})
	t.Run("RFC 7084: WAN source inside the delegation dropped", func(t *testing.T) {
		testns.IP(t, "-n", tp.wan, "addr", "add", "2001:db8:1000:1ff::1/128", "dev", "eth0", "nodad")
		moved(t, s, CounterDropSpoofWAN, func() {
			sendUDP(t, tp.wan, "2001:db8:1000:1ff::1", "["+topoLANToken6+"]:443")
		})
	})
}

// TestNoGapAcrossReapply re-applies the ruleset 100 times while probes
// flow both ways, each from a fresh socket so that each is a new flow
// judged by the rules, not by conntrack: every probe to an allowed port
// (WAN → the token host, LAN → the internet) must arrive, and none to a
// closed port may. A moment with no rules, or a half-visible ruleset,
// would lose the former or pass the latter.
func TestNoGapAcrossReapply(t *testing.T) {
	tp := newTopo(t)
	planA := topoPlan()
	planA.TokenRules[0].Ports = append(planA.TokenRules[0].Ports, Port{UDP, 443})
	planB := planA
	planB.HostRules = append([]HostRule{{Host: "02:00:00:00:00:02", Addrs: []netip.Addr{a("2001:db8:1000:100::77")}, Ports: []Port{{TCP, 8443}}}}, planA.HostRules...)
	s := tp.firewall(t, planA)

	type probe struct {
		name     string
		from, to string // namespaces
		dst      string
		open     bool
		pc       net.PacketConn
		got      atomic.Int64
	}
	probes := []*probe{
		{name: "WAN → ::80 udp/443 (token rule)", from: tp.wan, to: tp.lan, dst: "[" + topoLANToken6 + "]:443", open: true},
		{name: "WAN → ::80 udp/4444 (closed)", from: tp.wan, to: tp.lan, dst: "[" + topoLANToken6 + "]:4444"},
		{name: "LAN → internet udp/5353", from: tp.lan, to: tp.wan, dst: "[" + topoWAN6 + "]:5353", open: true},
	}
	var wg sync.WaitGroup
	for _, pr := range probes {
		pr.pc = testns.ListenPacket(t, pr.to, "udp", pr.dst)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			for {
				if _, _, err := pr.pc.ReadFrom(buf); err != nil {
					return
				}
				pr.got.Add(1)
			}
		}()
	}

	ctx, cancel := context.WithCancel(context.Background())
	senders := []string{tp.wan, tp.lan}
	sent := make([]atomic.Int64, len(senders))
	var sending sync.WaitGroup
	for i, from := range senders {
		sending.Add(1)
		go func() {
			defer sending.Done()
			testns.Inside(t, from, func() {
				for ctx.Err() == nil {
					for _, pr := range probes {
						if pr.from != from {
							continue
						}
						c, err := net.Dial("udp", pr.dst)
						if err != nil {
							t.Error(err)
							return
						}
						_, err = c.Write([]byte("probe"))
						c.Close()
						if err != nil {
							t.Error(err)
							return
						}
					}
					sent[i].Add(1)
					time.Sleep(200 * time.Microsecond)
				}
			})
		}()
	}

	for i := range 100 {
		p := planB // every apply differs from the one before
		if i%2 == 1 {
			p = planA
		}
		if err := s.Apply(p); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	cancel()
	sending.Wait()
	sentFrom := map[string]int64{}
	for i, from := range senders {
		sentFrom[from] = sent[i].Load()
	}
	// Let what is in flight arrive before closing the receivers.
	deadline := time.Now().Add(5 * time.Second)
	for _, pr := range probes {
		for pr.open && pr.got.Load() < sentFrom[pr.from] && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, pr := range probes {
		pr.pc.Close()
	}
	wg.Wait()

	for _, pr := range probes {
		n, got := sentFrom[pr.from], pr.got.Load()
		switch {
		case n < 100:
			t.Errorf("%s: only %d probes sent during 100 applies", pr.name, n)
		case pr.open && got != n:
			t.Errorf("%s: %d of %d probes arrived across 100 re-applies", pr.name, got, n)
		case !pr.open && got != 0:
			t.Errorf("%s: %d of %d probes got through across 100 re-applies", pr.name, got, n)
		default:
			t.Logf("%s: %d sent, %d arrived", pr.name, n, got)
		}
	}
	if st := s.Stats(); st.Applied != 101 {
		t.Errorf("applied = %d, want 101", st.Applied)
	}
}
