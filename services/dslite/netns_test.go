package dslite

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
	"github.com/vishvananda/netlink"
)

// softwireLab is a gizmo namespace with the service on its uplink0 and a
// peer namespace that plays the AFTR and the IPv4 internet behind it. The
// kernel has no ip6_tunnel, so the peer's end of the softwire is the same
// programs with the two addresses swapped: it decapsulates what the B4
// sends to its AFTR address and encapsulates its IPv4 to 192.0.0.0/29
// back to the B4. Its stack answers for 198.51.100.80.
type softwireLab struct {
	gizmo, peer string
	sw          Softwire
	svc         *Service
	peerDP      *datapath
}

var (
	labAFTR   = netip.MustParseAddr("2001:db8:0:5::1")
	labB4     = netip.MustParseAddr("2001:db8:0:1::b4")
	labServer = netip.MustParseAddr("198.51.100.80")
)

func newSoftwireLab(t testing.TB, wanMTU int) *softwireLab {
	t.Helper()
	testns.NeedRoot(t)
	l := &softwireLab{gizmo: testns.New(t, "b4"), peer: testns.New(t, "aftr")}
	testns.Veth(t, l.gizmo, "uplink0", l.peer, "isp0")
	for _, ns := range []string{l.gizmo, l.peer} {
		// bpf_fib_lookup answers only for interfaces that forward.
		testns.Sysctl(t, ns, "net.ipv6.conf.all.forwarding=1", "net.ipv4.ip_forward=1",
			"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	mtu := "1500"
	if wanMTU > 0 {
		mtu = strconv.Itoa(wanMTU)
	}
	testns.IP(t, "-n", l.gizmo, "link", "set", "uplink0", "mtu", mtu, "up")
	testns.IP(t, "-n", l.gizmo, "addr", "add", labB4.String()+"/64", "dev", "uplink0", "nodad")
	testns.IP(t, "-n", l.gizmo, "route", "add", "default", "via", "2001:db8:0:1::1", "dev", "uplink0")
	testns.IP(t, "-n", l.peer, "link", "set", "isp0", "mtu", mtu, "up")
	testns.IP(t, "-n", l.peer, "addr", "add", "2001:db8:0:1::1/64", "dev", "isp0", "nodad")
	testns.IP(t, "-n", l.peer, "addr", "add", labAFTR.String()+"/128", "dev", "lo")
	testns.IP(t, "-n", l.peer, "addr", "add", labServer.String()+"/32", "dev", "lo")
	testns.IP(t, "-n", l.peer, "addr", "add", "192.0.0.1/29", "dev", "isp0")
	testns.IP(t, "-n", l.peer, "neigh", "replace", "192.0.0.2", "lladdr", "02:00:c0:00:00:02", "dev", "isp0", "nud", "permanent")

	var ifindex, peerIndex int
	testns.Inside(t, l.gizmo, func() { ifindex = linkIndex(t, "uplink0") })
	testns.Inside(t, l.peer, func() {
		peerIndex = linkIndex(t, "isp0")
		dp, err := loadDatapath()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dp.close() })
		// The peer clamps nothing (a large MTU): the B4's own clamp is
		// what keeps the peer's segments inside the softwire.
		peer := Softwire{AFTR: labB4, B4: labAFTR, Interface: "isp0", Ifindex: peerIndex, MTU: 9000}
		if err := dp.configure(configOf(peer)); err != nil {
			t.Fatal(err)
		}
		if err := dp.attach(peerIndex); err != nil {
			t.Fatal(err)
		}
		l.peerDP = dp
	})

	l.sw = Softwire{AFTR: labAFTR, B4: labB4, Interface: "uplink0", Ifindex: ifindex, MTU: wanMTU}
	svc, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	l.svc = svc
	testns.Start(t, l.gizmo, svc.Run)
	svc.Update(Plan{Softwire: l.sw})
	deadline := time.Now().Add(5 * time.Second)
	for !svc.Stats().Running {
		if time.Now().After(deadline) {
			t.Fatal("the softwire did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return l
}

func linkIndex(t testing.TB, name string) int {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index
}

func TestNetnsSoftwire(t *testing.T) {
	l := newSoftwireLab(t, 1500)

	t.Run("RFC 6333 §5.7: 192.0.0.2/29 and the default route via 192.0.0.1 with the softwire's MTU", func(t *testing.T) {
		addrs := testns.Exec(t, l.gizmo, "ip", "-4", "addr", "show", "dev", "uplink0")
		if !strings.Contains(addrs, "192.0.0.2/29") {
			t.Errorf("uplink0 has no 192.0.0.2/29:\n%s", addrs)
		}
		routes := testns.Exec(t, l.gizmo, "ip", "-4", "route", "show", "default")
		if !strings.Contains(routes, "via 192.0.0.1") || !strings.Contains(routes, "mtu 1460") || !strings.Contains(routes, "src 192.0.0.2") {
			t.Errorf("default route: %q", routes)
		}
	})

	t.Run("ping through the softwire", func(t *testing.T) {
		testns.Exec(t, l.gizmo, "ping", "-c", "2", "-W", "2", labServer.String())
	})

	t.Run("RFC 1191: a DF packet over 1460 bytes is refused with the softwire's MTU", func(t *testing.T) {
		out, err := testns.Command(l.gizmo, "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1433", labServer.String()).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "1460") {
			t.Errorf("ping of 1461 bytes with DF: %v\n%s", err, out)
		}
		testns.Exec(t, l.gizmo, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1432", labServer.String())
	})

	t.Run("TCP: 4 MB each way, intact", func(t *testing.T) {
		tcpEcho(t, l, 4<<20)
		c := l.svc.Stats().Counters
		if c["mss_clamped"] == 0 {
			t.Errorf("no SYN was clamped: %v", c)
		}
		if c["encapsulated"] == 0 || c["decapsulated"] == 0 || c["too_big"] != 0 || c["error"] != 0 || c["no_route"] != 0 {
			t.Errorf("counters %v", c)
		}
	})

	t.Run("off: the address, the neighbour and the route go", func(t *testing.T) {
		l.svc.Update(Plan{})
		deadline := time.Now().Add(5 * time.Second)
		for l.svc.Stats().Running {
			if time.Now().After(deadline) {
				t.Fatal("still running")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if a := testns.Exec(t, l.gizmo, "ip", "-4", "addr", "show", "dev", "uplink0"); strings.Contains(a, "192.0.0.2") {
			t.Errorf("address left: %s", a)
		}
		if r := testns.Exec(t, l.gizmo, "ip", "-4", "route", "show"); strings.TrimSpace(r) != "" {
			t.Errorf("routes left: %s", r)
		}
		if n := testns.Exec(t, l.gizmo, "ip", "-4", "neigh", "show", "dev", "uplink0"); strings.Contains(n, "192.0.0.1") {
			t.Errorf("neighbour left: %s", n)
		}
	})
}

// tcpEcho sends n random bytes from the gizmo to a server behind the
// AFTR, which echoes them, and compares.
func tcpEcho(t testing.TB, l *softwireLab, n int) {
	t.Helper()
	var ln net.Listener
	if err := testns.Do(l.peer, func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(labServer, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	var c net.Conn
	if err := testns.Do(l.gizmo, func() (err error) {
		c, err = net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	data := make([]byte, n)
	rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		c.(*net.TCPConn).CloseWrite()
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echoed %d bytes, differ from the %d sent", len(got), len(data))
	}
}
