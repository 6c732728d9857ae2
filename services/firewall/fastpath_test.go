package firewall

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/internal/testrun"
	"codeberg.org/monostack/gizmo/services/fastpath"
)

// The eBPF fast path (services/fastpath) beside the real ruleset: what the
// firewall decides must not change, only who carries established flows.
// The test imports the other service only to run both in one router.

// startFastpath runs the fast path in tp's router until the test ends, and
// checks then that it left nothing of its own behind.
func startFastpath(t *testing.T, tp *topo, prefixes []netip.Prefix) *fastpath.Service {
	t.Helper()
	fp, stop := runFastpath(t, tp, prefixes)
	t.Cleanup(stop)
	return fp
}

// runFastpath starts the fast path in tp's router; stop ends it and checks
// that it left nothing behind.
func runFastpath(t testing.TB, tp *topo, prefixes []netip.Prefix) (fp *fastpath.Service, stop func()) {
	t.Helper()
	fp, err := fastpath.New(fastpath.Config{LAN: "lan0", WAN: "uplink0", NetNS: int(tp.routerNS.Fd()), ReapInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fp.Update(fastpath.Plan{LANPrefixes: prefixes})
	stopRun := testrun.Start(t, "fastpath Run", fp.Run)
	stop = func() {
		if err := stopRun(); err != nil {
			t.Errorf("fastpath Run: %v", err)
		}
		if n := attachedPrograms(t, tp.router); n != 0 {
			t.Errorf("%d tcx programs left on lan0/uplink0 after Run returned", n)
		}
		if v := sysctl(t, tp.router, "net/netfilter/nf_conntrack_tcp_be_liberal"); v != "0" {
			t.Errorf("nf_conntrack_tcp_be_liberal is %s after Run returned, want 0 (restored)", v)
		}
	}
	for range 100 {
		if fp.Stats().Active {
			return fp, stop
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	t.Fatal("fastpath not active")
	return nil, nil
}

func attachedPrograms(t testing.TB, ns string) int {
	t.Helper()
	n := 0
	for name := range fastpathPrograms(t, ns) {
		if strings.HasPrefix(name, "fp_") {
			n++
		}
	}
	return n
}

// fastpathPrograms returns the tcx programs on the router's lan0 and
// uplink0 by name, with the run time per run when BPF statistics are on.
func fastpathPrograms(t testing.TB, ns string) map[string]time.Duration {
	t.Helper()
	progs := map[string]time.Duration{}
	testns.Inside(t, ns, func() {
		for _, name := range []string{"lan0", "uplink0"} {
			ifc, err := net.InterfaceByName(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
				res, err := link.QueryPrograms(link.QueryOptions{Target: ifc.Index, Attach: at})
				if err != nil {
					t.Fatalf("query %s: %v", name, err)
				}
				for _, ap := range res.Programs {
					p, err := ebpf.NewProgramFromID(ap.ID)
					if err != nil {
						t.Fatalf("program %d: %v", ap.ID, err)
					}
					info, err := p.Info()
					if err != nil {
						p.Close()
						t.Fatalf("program %d: %v", ap.ID, err)
					}
					var per time.Duration
					if st, err := p.Stats(); err == nil && st.RunCount > 0 {
						per = st.Runtime / time.Duration(st.RunCount)
					}
					p.Close()
					progs[info.Name] = per
				}
			}
		}
	})
	return progs
}

func sysctl(t testing.TB, ns, name string) string {
	t.Helper()
	return strings.TrimSpace(testns.Exec(t, ns, "cat", "/proc/sys/"+name))
}

// udpEcho answers every datagram on addr in ns with the same bytes.
func udpEcho(t *testing.T, ns, addr string) {
	t.Helper()
	pc := testns.ListenPacket(t, ns, "udp", addr)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

// udpClient is a connected UDP socket in a namespace.
func udpClient(t *testing.T, ns, src, dst string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	testns.Inside(t, ns, func() {
		var err error
		c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// pingPong sends n datagrams of size bytes one at a time and waits for
// each echo.
func pingPong(t *testing.T, c *net.UDPConn, n, size int) {
	t.Helper()
	buf := make([]byte, size)
	in := make([]byte, 2048)
	for i := range n {
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(in); err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
	}
}

// tcpSink accepts connections on addr in ns, reads each to EOF and
// answers with the number of bytes it read.
func tcpSink(t *testing.T, ns, addr string) {
	t.Helper()
	testns.ServeTCP(t, ns, "tcp", addr, func(c net.Conn) {
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprint(c, n)
	})
}

// tcpSend connects from ns, sends n bytes, half-closes and returns what
// the sink answered and the local port.
func tcpSend(t *testing.T, ns, dst string, n int) (string, int) {
	t.Helper()
	var c net.Conn
	testns.Inside(t, ns, func() {
		var err error
		if c, err = net.DialTimeout("tcp", dst, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(got), c.LocalAddr().(*net.TCPAddr).Port
}

func fwCounter(t *testing.T, s *Service, name string) uint64 {
	t.Helper()
	c, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c[name].Packets
}

func TestFastpathWithRuleset(t *testing.T) {
	testns.NeedRoot(t)
	tp := newTopo(t)
	plan := topoPlan()
	fw := tp.firewall(t, plan)
	fp := startFastpath(t, tp, plan.LANPrefixes)
	if v := sysctl(t, tp.router, "net/netfilter/nf_conntrack_tcp_be_liberal"); v != "1" {
		t.Errorf("nf_conntrack_tcp_be_liberal is %s while the fast path runs, want 1", v)
	}
	host := netip.MustParseAddr(topoLANHost6)
	udpEcho(t, tp.wan, "["+topoWAN6+"]:9999")
	uc := udpClient(t, tp.lan, "["+topoLANHost6+"]:40000", "["+topoWAN6+"]:9999")

	t.Run("established UDP rides the fast path, counted once", func(t *testing.T) {
		const n, size = 200, 100
		fw0, st0 := fwCounter(t, fw, CounterIPv6Forwarded), fp.Stats()
		pingPong(t, uc, n, size)
		fw1, st1 := fwCounter(t, fw, CounterIPv6Forwarded), fp.Stats()
		fast := st1.Packets - st0.Packets
		if fast+(fw1-fw0) != 2*n {
			t.Errorf("fast path %d + ruleset %d packets, want %d: every forwarded packet counted once", fast, fw1-fw0, 2*n)
		}
		if fast < 2*n-4 {
			t.Errorf("only %d of %d packets on the fast path", fast, 2*n)
		}
		h0, h1 := st0.Hosts[host], st1.Hosts[host]
		if out, in := h1.OutPackets-h0.OutPackets, h1.InPackets-h0.InPackets; out+in != fast {
			t.Errorf("host %v: %d out + %d in, want %d", host, out, in, fast)
		}
		if b := h1.OutBytes - h0.OutBytes; b != (h1.OutPackets-h0.OutPackets)*(40+8+size) {
			t.Errorf("host %v: %d bytes out in %d packets, want %d each (IPv6 length)", host, b, h1.OutPackets-h0.OutPackets, 40+8+size)
		}
	})

	t.Run("RFC 4443 §3.2: too big for the next link goes to the stack, which sends Packet Too Big", func(t *testing.T) {
		testns.IP(t, "-n", tp.router, "link", "set", "uplink0", "mtu", "1400")
		testns.IP(t, "-n", tp.wan, "link", "set", "eth0", "mtu", "1400")
		defer testns.IP(t, "-n", tp.wan, "link", "set", "eth0", "mtu", "1500")
		defer testns.IP(t, "-n", tp.router, "link", "set", "uplink0", "mtu", "1500")
		before := fp.Stats().ToStack["frag-needed"]
		_, _ = uc.Write(make([]byte, 1500-48))
		if got := fp.Stats().ToStack["frag-needed"] - before; got != 1 {
			t.Errorf("frag-needed counted %d times, want 1", got)
		}
		// The kernel's Packet Too Big reached the sender's socket.
		_ = uc.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := uc.Read(make([]byte, 2048)); !errors.Is(err, syscall.EMSGSIZE) {
			t.Errorf("the sender's socket got %v, want EMSGSIZE from the Packet Too Big", err)
		}
		var out string
		for range 50 {
			out = testns.IP(t, "-n", tp.lan, "-6", "route", "get", topoWAN6, "from", topoLANHost6)
			if strings.Contains(out, "mtu 1400") {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("the LAN host learned no path MTU of 1400: %s", out)
	})

	t.Run("TCP data on the fast path, handshake and close in conntrack", func(t *testing.T) {
		tcpSink(t, tp.wan, "["+topoWAN6+"]:7777")
		st0 := fp.Stats()
		const n = 4 << 20
		got, port := tcpSend(t, tp.lan, "["+topoWAN6+"]:7777", n)
		if got != fmt.Sprint(n) {
			t.Fatalf("sink read %q bytes, want %d", got, n)
		}
		st1 := fp.Stats()
		// GSO packets count once, as in nftables: compare bytes.
		if b := st1.Bytes - st0.Bytes; b < n/2 {
			t.Errorf("only %d bytes of a %d-byte transfer on the fast path", b, n)
		}
		if st1.ToStack["tcp-close"] == st0.ToStack["tcp-close"] && st1.ToStack["closing"] == st0.ToStack["closing"] {
			t.Errorf("no FIN handed to the stack: %v", st1.ToStack)
		}
		// Conntrack saw the close: the entry is no longer established.
		ct := testns.Exec(t, tp.router, "cat", "/proc/net/nf_conntrack")
		for _, l := range strings.Split(ct, "\n") {
			if strings.Contains(l, fmt.Sprintf("sport=%d dport=7777", port)) {
				if !strings.Contains(l, "TIME_WAIT") && !strings.Contains(l, "CLOSE") && !strings.Contains(l, "LAST_ACK") && !strings.Contains(l, "FIN_WAIT") {
					t.Errorf("conntrack entry after the close: %s", l)
				}
				return
			}
		}
		t.Errorf("no conntrack entry for port %d:\n%s", port, ct)
	})

	t.Run("inbound default drop holds beside offloaded flows", func(t *testing.T) {
		listenTCP(t, tp.lan, "["+topoLANHost6+"]:5555")
		before := fwCounter(t, fw, CounterDropFwdWAN)
		if err := dialTCP(t, tp.wan, "["+topoLANHost6+"]:5555"); err == nil {
			t.Errorf("unsolicited inbound connection to %s:5555 went through", topoLANHost6)
		}
		if fwCounter(t, fw, CounterDropFwdWAN) == before {
			t.Errorf("the ruleset's drop-forward-wan did not count the SYN")
		}
		// Inbound UDP to the port of the offloaded flow from another
		// remote port is a new flow: dropped too.
		sendUDP(t, tp.wan, topoWAN6, "["+topoLANHost6+"]:40000")
		if err := readNothing(uc); err != nil {
			t.Error(err)
		}
	})

	t.Run("token rule: an inbound connection is allowed and then offloaded", func(t *testing.T) {
		tcpSink(t, tp.lan, "["+topoLANToken6+"]:443")
		st0 := fp.Stats()
		before := fwCounter(t, fw, CounterInboundToken)
		const n = 1 << 20
		if got, _ := tcpSend(t, tp.wan, "["+topoLANToken6+"]:443", n); got != fmt.Sprint(n) {
			t.Fatalf("sink read %q bytes, want %d", got, n)
		}
		if fwCounter(t, fw, CounterInboundToken) == before {
			t.Errorf("the token rule did not count the connection")
		}
		token := netip.MustParseAddr(topoLANToken6)
		if h0, h1 := st0.Hosts[token], fp.Stats().Hosts[token]; h1.InBytes-h0.InBytes < n/2 {
			t.Errorf("token host: %d bytes in on the fast path, want most of a %d-byte transfer", h1.InBytes-h0.InBytes, n)
		}
	})

	t.Run("spoofed LAN sources from the WAN are dropped by the ruleset, never fast-pathed", func(t *testing.T) {
		spoof := "2001:db8:1000:100::99"
		testns.IP(t, "-n", tp.wan, "addr", "add", spoof+"/128", "dev", "eth0", "nodad")
		defer testns.IP(t, "-n", tp.wan, "addr", "del", spoof+"/128", "dev", "eth0")
		fw0, st0 := fwCounter(t, fw, CounterDropSpoofWAN), fp.Stats()
		sendUDP(t, tp.wan, spoof, "["+topoLANHost6+"]:40000")
		if err := readNothing(uc); err != nil {
			t.Error(err)
		}
		if fwCounter(t, fw, CounterDropSpoofWAN) == fw0 {
			t.Errorf("drop-spoofed-wan did not count the spoofed datagram")
		}
		if st1 := fp.Stats(); st1.ToStack["not-lan"] == st0.ToStack["not-lan"] || st1.Packets != st0.Packets {
			t.Errorf("fast path: not-lan %d→%d, packets %d→%d; want the packet handed to the stack", st0.ToStack["not-lan"], st1.ToStack["not-lan"], st0.Packets, st1.Packets)
		}
	})

	t.Run("renumbering: flows of a retired prefix leave the fast path", func(t *testing.T) {
		var st fastpath.Stats
		for i := 0; st.Offloaded == 0 && i < 100; i++ {
			time.Sleep(20 * time.Millisecond) // a reaper pass counts the table
			st = fp.Stats()
		}
		if st.Offloaded == 0 {
			t.Fatalf("no offloaded flow before renumbering: %+v", st)
		}
		fp.Update(fastpath.Plan{LANPrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000:200::/64")}})
		for range 100 {
			if st = fp.Stats(); st.Flows == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if st.Flows != 0 {
			t.Fatalf("%d flows left after renumbering", st.Flows)
		}
		pingPong(t, uc, 20, 100)
		if after := fp.Stats(); after.Packets != st.Packets {
			t.Errorf("%d packets of the retired prefix on the fast path", after.Packets-st.Packets)
		}
	})
}

// readNothing checks that nothing arrives on c for a moment. The callers
// also check the counter that says why, so the wait is not what the test
// rests on.
func readNothing(c *net.UDPConn) error {
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err == nil {
		return fmt.Errorf("received %d bytes that should have been dropped", n)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return nil
}
