package integration

// The gizmo against a hostile WAN side and a LAN that claims what is not
// its own: an RA flood from a thousand link-local sources on the ISP's link
// (the lab binary's ra-flood, lab/hostile_wan.go, in gz-isp), a LAN host
// using the gizmo's own WAN address, and an inbound connection that must
// end when the exposed port that let it in is removed. Every bound is
// checked on /metrics, where the dashboard's counters are.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/lab/netlab/netlabtest"
	"codeberg.org/monostack/gizmo/services/firewall"
	"codeberg.org/monostack/gizmo/services/wan"
)

// wanStatus is the WAN part of /api/status.
type wanStatus struct {
	WAN struct {
		Router string   `json:"router"`
		Addrs  []string `json:"addrs"`
		RDNSS  []string `json:"rdnss"`
		IPv4   string   `json:"ipv4"`
	} `json:"wan"`
	UpstreamDNS []string `json:"upstream_dns"`
}

func TestHostileWANRAFlood(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 4*time.Minute)
	helper := filepath.Join(l.RunDir(), "lab")
	// The router's link-local address, without the zone the status
	// writes it with.
	router := func(s wanStatus) netip.Addr {
		a, _ := netip.ParseAddr(s.WAN.Router)
		return a.WithZone("")
	}
	var before wanStatus
	err := netlab.WaitFor(ctx, "the ISP's router as the gizmo's default router", func(ctx context.Context) (bool, error) {
		return apiJSON(ctx, l, "/api/status", &before) == nil && router(before) == netlab.ISPWANLinkLocal, nil
	})
	if err != nil {
		t.Fatalf("%v: status %+v", err, before)
	}
	// The LAN reaches the internet before the flood, so that a failure
	// after it is the flood's doing.
	v6Server := "http://[" + netlab.V6OnlyServer.String() + "]/"
	err = netlab.WaitFor(ctx, "gz-lan-v6 reaching the IPv6-only server", func(ctx context.Context) (bool, error) {
		_, err := netlab.HTTPGet(ctx, netlab.NSLanV6, v6Server)
		return err == nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const sources = 1000
	t.Cleanup(func() {
		// The lab is shared: every source withdraws what it announced.
		out, err := l.Exec(context.Background(), netlab.NSISP, helper, "ra-flood", "-interface", netlab.ISPWAN, "-sources", strconv.Itoa(sources), "-withdraw")
		if err != nil {
			t.Errorf("withdrawing the flood: %v\n%s", err, out)
		}
		if err := l.ForgetNeighbours(context.Background()); err != nil {
			t.Error(err)
		}
	})
	ras := netlabtest.Metric(t, ctx, "gizmo_wan_router_advertisements_total")
	out, err := l.Exec(ctx, netlab.NSISP, helper, "ra-flood", "-interface", netlab.ISPWAN, "-sources", strconv.Itoa(sources), "-rounds", "2", "-interval", "200us")
	if err != nil {
		t.Fatalf("ra-flood: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))

	// Most of the flood reached the gizmo (a socket buffer may drop a
	// few); every source beyond a table's bound cost an eviction or a
	// refusal there.
	err = netlab.WaitFor(ctx, "the flood read", func(ctx context.Context) (bool, error) {
		return netlabtest.Metric(t, ctx, "gizmo_wan_router_advertisements_total")-ras >= 1.5*sources, nil
	})
	if err != nil {
		t.Fatalf("%v: %v RAs accepted", err, netlabtest.Metric(t, ctx, "gizmo_wan_router_advertisements_total")-ras)
	}
	bounds := map[string]int{"routers": wan.MaxRouters, "prefixes": wan.MaxPrefixes, "rdnss": wan.MaxRDNSS, "routes": wan.MaxRoutes, "pref64": wan.MaxPref64}
	for table, bound := range bounds {
		n := netlabtest.Metric(t, ctx, `gizmo_wan_upstream_entries{table="`+table+`"}`)
		if n < 1 || n > float64(bound) {
			t.Errorf("table %s holds %v entries, want 1..%d", table, n, bound)
		}
		if full := netlabtest.Metric(t, ctx, `gizmo_wan_upstream_table_full_total{table="`+table+`"}`); full < sources/2 {
			t.Errorf("table %s: %v evictions or refusals counted, want at least %d", table, full, sources/2)
		}
	}
	for _, table := range []string{"prefixes", "rdnss", "routes"} {
		if n := netlabtest.Metric(t, ctx, `gizmo_wan_lifetimes_clamped_total{table="`+table+`"}`); n < sources/2 {
			t.Errorf("table %s: %v infinite lifetimes counted as clamped, want at least %d", table, n, sources/2)
		}
	}

	var after wanStatus
	if err := apiJSON(ctx, l, "/api/status", &after); err != nil {
		t.Fatal(err)
	}
	if router(after) != netlab.ISPWANLinkLocal {
		t.Errorf("after the flood the default router is %s, want the ISP's %s", after.WAN.Router, netlab.ISPWANLinkLocal)
	}
	if len(after.WAN.RDNSS) == 0 || after.WAN.RDNSS[0] != netlab.ISPDNS6.String() {
		t.Errorf("after the flood the RDNSS are %v, want the ISP's %s first", after.WAN.RDNSS, netlab.ISPDNS6)
	}
	if len(after.UpstreamDNS) == 0 || after.UpstreamDNS[0] != netip.AddrPortFrom(netlab.ISPDNS6, 53).String() {
		t.Errorf("after the flood the upstream resolvers are %v, want the ISP's first", after.UpstreamDNS)
	}
	// The LAN still reaches the internet over native IPv6.
	if _, err := netlab.HTTPGet(ctx, netlab.NSLanV6, v6Server); err != nil {
		t.Errorf("gz-lan-v6 → the IPv6-only server after the flood: %v", err)
	}
}

// TestHostileWANSpoofedSources: a LAN host sending with the gizmo's own
// WAN address as its source is dropped and counted (RFC 3704), not
// forwarded as if the gizmo had sent it.
func TestHostileWANSpoofedSources(t *testing.T) {
	fw := setupLabFirewall(t)
	ctx := testContext(t, 30*time.Second)
	var st wanStatus
	if err := apiJSON(ctx, fw.l, "/api/status", &st); err != nil {
		t.Fatal(err)
	}
	var wanAddr netip.Addr
	for _, a := range st.WAN.Addrs {
		if p, err := netip.ParsePrefix(a); err == nil && p.Addr().Is6() {
			wanAddr = p.Addr()
		}
	}
	if !wanAddr.IsValid() {
		t.Fatalf("the gizmo's WAN has no IPv6 address: %+v", st.WAN)
	}
	addAddr(t, fw.l, wanAddr, 128)
	srv, err := netlab.ListenPacket(netlab.NSInet, "udp6", "["+netlab.V6OnlyServer.String()+"]:7709")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fw.moves(t, firewall.CounterDropLANWAN, func() {
		sendUDPFrom(t, wanAddr, 7709, "as the gizmo")
	})
	srv.SetReadDeadline(time.Now().Add(time.Second))
	if _, from, err := srv.ReadFrom(make([]byte, 64)); err == nil {
		t.Errorf("a datagram from %v, the gizmo's WAN address sent from the LAN, reached the internet", from)
	}
}

// echoOn serves a line echo on port in ns until the test ends.
func echoOn(t *testing.T, ns string, port int) {
	t.Helper()
	serveOn(t, ns, port, func(c net.Conn) {
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil || func() error { _, err := c.Write([]byte(line)); return err }() != nil {
				return
			}
		}
	})
}

// echoes writes a line on c and reports whether it came back within a
// second.
func echoes(c net.Conn, r *bufio.Reader, line string) bool {
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return false
	}
	got, err := r.ReadString('\n')
	return err == nil && got == line+"\n"
}

// setExposedPorts sets gz-lan-v6's exposed ports through the API (a
// partial policy edit: the rest of its policy stays).
func setExposedPorts(t *testing.T, ctx context.Context, l *netlab.Lab, ports string) {
	t.Helper()
	if _, err := l.DashboardAPI(ctx, http.MethodPut, "/api/hosts/"+netlab.MACLanV6+"/policy",
		`{"exposed_ports":[`+ports+`]}`); err != nil {
		t.Fatalf("PUT exposed ports [%s]: %v", ports, err)
	}
}

// TestHostileWANRemovedPortCutsConnection: an open TCP connection from
// gz-inet to an exposed port on gz-lan-v6 lives on conntrack's established
// entry (and on the fast path). Removing the exposed port must end it, not
// only refuse new connections: the firewall deletes the flow's conntrack
// entry and drops its next segments, and the fast path lets go of it
// within its refresh time.
func TestHostileWANRemovedPortCutsConnection(t *testing.T) {
	fw := setupLabFirewall(t)
	l := fw.l
	ctx := testContext(t, 3*time.Minute)
	const port = 7443
	echoOn(t, netlab.NSLanV6, port)
	setExposedPorts(t, ctx, l, `"tcp/7443"`)
	t.Cleanup(func() { setExposedPorts(t, context.Background(), l, "") })
	dst := netip.AddrPortFrom(fw.lanHost, port)
	// The host's exposed ports open on the addresses the gizmo has seen
	// it use.
	if out, err := l.Exec(ctx, netlab.NSLanV6, "ping", "-c", "1", "-W", "2", "-I", fw.lanHost.String(), netlab.V6OnlyServer.String()); err != nil {
		t.Fatalf("gz-lan-v6 pinging from %s: %v\n%s", fw.lanHost, err, out)
	}
	var c net.Conn
	err := netlab.WaitFor(ctx, "gz-inet reaching the exposed port "+dst.String(), func(ctx context.Context) (bool, error) {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var err error
		c, err = netlab.DialContext(dctx, netlab.NSInet, "tcp", dst.String())
		return err == nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	// Long enough for the fast path to take the flow over.
	for i := range 5 {
		if !echoes(c, r, fmt.Sprintf("open %d", i)) {
			t.Fatalf("no echo through the exposed port (line %d)", i)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ended := netlabtest.Metric(t, ctx, "gizmo_firewall_flows_ended_total")

	setExposedPorts(t, ctx, l, "")
	removed := time.Now()
	// The fast path hands a flow back to the stack within its refresh
	// time (20 s, services/fastpath); from then on every segment meets the
	// firewall. Five silent lines in a row is a cut connection.
	silent := 0
	for i := 0; silent < 5; i++ {
		if time.Since(removed) > time.Minute {
			t.Fatalf("the connection still echoes a minute after its port was removed")
		}
		if echoes(c, r, fmt.Sprintf("removed %d", i)) {
			silent = 0
		} else {
			silent++
		}
	}
	t.Logf("cut %s after the port was removed", time.Since(removed).Round(time.Second))
	if n := netlabtest.Metric(t, ctx, "gizmo_firewall_flows_ended_total"); n <= ended {
		t.Errorf("gizmo_firewall_flows_ended_total %v → %v, want it to count the flow", ended, n)
	}
	if !dialFails(netlab.NSInet, dst) {
		t.Errorf("gz-inet opened a new connection to the removed port")
	}
}
