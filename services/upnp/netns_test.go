package upnp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv6"

	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"
)

// lanTopology is the gizmo's namespace with lan0 to a host (eth0) and
// wan0 to an upstream (eth0), with testPlan's LAN addresses.
type lanTopology struct {
	router, host, wan string
}

func newLANTopology(t *testing.T) lanTopology {
	t.Helper()
	depstest.Require(t, deps.Lab)
	top := lanTopology{router: testns.New(t, "up"), host: testns.New(t, "uph"), wan: testns.New(t, "upw")}
	testns.Veth(t, top.router, "lan0", top.host, "eth0")
	testns.Veth(t, top.router, "wan0", top.wan, "eth0")
	links := []struct{ ns, ifname string }{{top.router, "lan0"}, {top.router, "wan0"}, {top.host, "eth0"}, {top.wan, "eth0"}}
	for _, l := range links {
		testns.Sysctl(t, l.ns, "net.ipv6.conf."+l.ifname+".accept_dad=0", "net.ipv6.conf."+l.ifname+".use_tempaddr=0")
	}
	testns.Up(t, top.router, "lan0", "2001:db8:1000:100::1/64", "fd12:3456:789a::1/64", "203.0.113.129/25")
	testns.Up(t, top.router, "wan0", "2001:db8:0:1::2/64")
	testns.Up(t, top.host, "eth0", hostAddr+"/64", "203.0.113.140/25")
	testns.Up(t, top.wan, "eth0", "2001:db8:0:1::1/64")
	for _, l := range links {
		testns.WaitLinkLocal(t, l.ns, l.ifname)
	}
	testns.Sysctl(t, top.router, "net.ipv6.conf.all.forwarding=1")
	// The upstream can route to the LAN's /64, as the ISP does.
	testns.IP(t, "-n", top.wan, "route", "add", "2001:db8:1000:100::/64", "via", "2001:db8:0:1::2")
	// The host has the default routes DHCPv4 and the RA would give it;
	// upnpc's IPv4 search needs one.
	testns.IP(t, "-n", top.host, "route", "add", "default", "via", "203.0.113.129")
	return top
}

// serve runs the service in the router's namespace with testPlan.
func (top lanTopology) serve(t *testing.T, b Backend) (*Service, func() error) {
	t.Helper()
	s, err := New(Config{Interface: "lan0", Backend: b, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(testPlan); err != nil {
		t.Fatal(err)
	}
	return s, testns.Start(t, top.router, s.Run)
}

// upnpc runs miniupnpc's client in the host's namespace, retrying while
// the service is still starting (no IGD found yet).
func upnpc(t *testing.T, ns string, args ...string) string {
	t.Helper()
	var out []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		out, _ = testns.CommandContext(ctx, ns, append([]string{"upnpc"}, args...)...).CombinedOutput()
		cancel()
		if !strings.Contains(string(out), "No IGD UPnP Device found") && !strings.Contains(string(out), "upnpDiscover() error") {
			return string(out)
		}
	}
	t.Fatalf("upnpc %s found no gateway:\n%s", strings.Join(args, " "), out)
	return ""
}

// TestUpnpcOpensPinhole runs miniupnpc's upnpc, the client Debian ships,
// against the service: it discovers the IGD over IPv6 SSDP, reads the
// descriptions and opens, renews and deletes a pinhole for its own global
// address ("@"), which the service hands to the backend with the request's
// source.
func TestUpnpcOpensPinhole(t *testing.T) {
	top := newLANTopology(t)
	b := &fakeBackend{allowed: true}
	s, _ := top.serve(t, b)
	host := netip.MustParseAddr(hostAddr)

	out := upnpc(t, top.host, "-6", "-i", "-S")
	for _, want := range []string{"desc: http://[2001:db8:1000:100::1]:5000/rootDesc.xml", "Local LAN ip address : " + hostAddr, "Inbound Pinhole Allowed: Yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("upnpc -6 -S: no %q in\n%s", want, out)
		}
	}

	out = upnpc(t, top.host, "-6", "-i", "-A", "", "0", "@", "8090", "TCP", "3600")
	if !strings.Contains(out, "Pinhole ID = 1") {
		t.Fatalf("upnpc -A:\n%s", out)
	}
	want := PinholeRequest{Source: host, Client: host, Port: 8090, Proto: 6, Lease: time.Hour}
	b.mu.Lock()
	got := b.added
	b.mu.Unlock()
	if len(got) != 1 || got[0] != want {
		t.Errorf("backend asked %+v, want %+v", got, want)
	}
	// upnpc asks CheckPinholeWorking before it renews: nothing came in
	// yet (709), so it renews.
	if out := upnpc(t, top.host, "-6", "-i", "-U", "1", "7200"); !strings.Contains(out, "IsWorking = No") ||
		!strings.Contains(out, "UpdatePinhole: Pinhole ID = 1 with Lease Time: 7200") || strings.Contains(out, "UpdatePinhole: ID (1) failed") {
		t.Errorf("upnpc -U:\n%s", out)
	}
	if out := upnpc(t, top.host, "-6", "-i", "-D", "1"); !strings.Contains(out, "UPNP_DeletePinhole() returned : 0") {
		t.Errorf("upnpc -D:\n%s", out)
	}
	b.mu.Lock()
	upd, del := b.updated, b.deleted
	b.mu.Unlock()
	if len(upd) != 1 || len(del) != 1 {
		t.Errorf("backend renewed %v, deleted %v; want pinhole 1 each", upd, del)
	}

	b.mu.Lock()
	b.refuse = &Refusal{Kind: NotAllowed, Reason: "policy_off"}
	b.mu.Unlock()
	if out := upnpc(t, top.host, "-6", "-i", "-A", "", "0", "@", "8091", "TCP", "3600"); !strings.Contains(out, "failed with code 703") {
		t.Errorf("upnpc -A on a host without app pinholes:\n%s", out)
	}

	// Over IPv4 the device is found at its IPv4 location (no port
	// mapping is offered there).
	if out := upnpc(t, top.host, "-i", "-S"); !strings.Contains(out, "desc: http://203.0.113.129:5000/rootDesc.xml") {
		t.Errorf("upnpc over IPv4:\n%s", out)
	}
	st := s.Stats()
	if st.Searches == 0 || st.Replies == 0 || st.Requests[RequestKey{"AddPinhole", "ok"}] != 1 || st.Requests[RequestKey{"AddPinhole", "703"}] != 1 {
		t.Errorf("counters %+v", st)
	}
}

// TestNotOnTheWAN: the WAN side hears no answer to its searches and cannot
// reach the control port, even at the LAN address it can route to: the
// sockets are bound to the LAN interface.
func TestNotOnTheWAN(t *testing.T) {
	top := newLANTopology(t)
	top.serve(t, &fakeBackend{allowed: true})
	upnpc(t, top.host, "-6", "-i", "-S") // the service is up

	err := testns.Do(top.wan, func() error {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{})
		if err != nil {
			return err
		}
		defer c.Close()
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		p := ipv6.NewPacketConn(c)
		if err := p.SetMulticastInterface(ifi); err != nil {
			return err
		}
		for _, dst := range []string{"[ff02::c]:1900", "[2001:db8:0:1::2]:1900", "[2001:db8:1000:100::1]:1900"} {
			ua, _ := net.ResolveUDPAddr("udp6", dst)
			if _, err := c.WriteTo(msearch("ssdp:all", 1), ua); err != nil {
				return err
			}
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 2048)
		if n, from, err := c.ReadFrom(b); err == nil {
			return errors.New("answer from " + from.String() + ": " + string(b[:n]))
		}
		d := net.Dialer{Timeout: 2 * time.Second}
		if conn, err := d.Dial("tcp", "[2001:db8:1000:100::1]:5000"); err == nil {
			conn.Close()
			return errors.New("the control port answered from the WAN")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestAnnouncements: the service announces itself on ff02::c when it
// starts, again at its new location when the plan changes, and says
// goodbye before and when it stops (UDA 1.1 §1.2.2, §1.2.3).
func TestAnnouncements(t *testing.T) {
	top := newLANTopology(t)
	var conn *net.UDPConn
	testns.Inside(t, top.host, func() {
		c, err := net.ListenMulticastUDP("udp6", mustInterface(t, "eth0"), &net.UDPAddr{IP: net.ParseIP("ff02::c"), Port: ssdpPort})
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	})
	defer conn.Close()
	s, stop := top.serve(t, &fakeBackend{})

	loc := "http://[2001:db8:1000:100::1]:5000/rootDesc.xml"
	nts := func(want string) {
		t.Helper()
		seen := map[string]bool{}
		b := make([]byte, 2048)
		for deadline := time.Now().Add(10 * time.Second); len(seen) < 8 && time.Now().Before(deadline); {
			conn.SetReadDeadline(deadline)
			n, _, err := conn.ReadFrom(b)
			if err != nil {
				break
			}
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:n])))
			if err != nil || req.Method != "NOTIFY" || req.Header.Get("Nts") != want {
				continue
			}
			if want == "ssdp:alive" && req.Header.Get("Location") != loc {
				t.Errorf("alive with LOCATION %q", req.Header.Get("Location"))
			}
			seen[req.Header.Get("Usn")] = true
		}
		if len(seen) != 8 {
			t.Errorf("%d %s announcements, want 8 (every device and service): %v", len(seen), want, seen)
		}
	}
	nts("ssdp:alive")
	// A new plan (the delegation went away): goodbye, and the device
	// announces itself at its new location.
	ula := testPlan
	ula.Listen, ula.Location6 = testPlan.Listen[1:], testPlan.Listen[1]
	if err := s.Update(ula); err != nil {
		t.Fatal(err)
	}
	nts("ssdp:byebye")
	loc = "http://[fd12:3456:789a::1]:5000/rootDesc.xml"
	nts("ssdp:alive")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	nts("ssdp:byebye")
}

func mustInterface(t *testing.T, name string) *net.Interface {
	t.Helper()
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return ifi
}
