package integration

// The NAT64 against a hostile network: the internet (gz-inet) sprays a LAN
// host's binding from thousands of source ports, and a LAN host rotates
// addresses inside the /64 it shares with the other hosts to escape its
// limit. The attackers are the lab binary's spray-udp and rotate-icmp6
// (lab/hostile.go). The sessions must stay bounded, every refusal counted
// (/api/insights, the same counters as /metrics), and the other hosts
// must keep opening flows.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/web"
)

func nat64Insights(t *testing.T, ctx context.Context, l *netlab.Lab) web.NAT64Insights {
	t.Helper()
	var ins web.Insights
	if err := apiJSON(ctx, l, "/api/insights", &ins); err != nil {
		t.Fatalf("insights: %v", err)
	}
	return ins.NAT64
}

// waitNAT64Drop waits until the NAT64 counted more drops of reason than
// before, then for a reaper pass (every 10 s) to count the sessions, and
// returns the insights after it.
func waitNAT64Drop(t *testing.T, ctx context.Context, l *netlab.Lab, before web.NAT64Insights, reason string) web.NAT64Insights {
	t.Helper()
	var after web.NAT64Insights
	if err := netlab.WaitFor(ctx, reason+" counted", func(ctx context.Context) (bool, error) {
		after = nat64Insights(t, ctx, l)
		return after.Drops[reason] > before.Drops[reason], nil
	}); err != nil {
		t.Fatalf("%v (insights %+v)", err, after)
	}
	time.Sleep(11 * time.Second)
	return nat64Insights(t, ctx, l)
}

// dashboardSaysLimitHit waits until the insights list the limit as hit
// (the daemon looks every 30 s), then checks that the overview says so.
func dashboardSaysLimitHit(t *testing.T, ctx context.Context, l *netlab.Lab, key string) {
	t.Helper()
	var hits []web.LimitHit
	if err := netlab.WaitFor(ctx, "the limit "+key+" in the insights", func(ctx context.Context) (bool, error) {
		var ins web.Insights
		if err := apiJSON(ctx, l, "/api/insights", &ins); err != nil {
			return false, nil
		}
		hits = ins.Limits
		return slices.ContainsFunc(hits, func(h web.LimitHit) bool { return h.Key == key && h.Count > 0 }), nil
	}); err != nil {
		t.Fatalf("%v (limits hit: %+v)", err, hits)
	}
	page, err := l.DashboardAPI(ctx, http.MethodGet, "/", "")
	if err != nil {
		t.Fatalf("overview: %v", err)
	}
	if !strings.Contains(string(page), `data-limit="`+key+`"`) {
		t.Errorf("the overview does not say that %s was hit", key)
	}
}

// udpExchange sends one datagram from a fresh socket of the LAN host in
// namespace ns to the IPv4-only server through the NAT64 and returns the
// transport address the server saw (the host's binding), or an error when
// nothing arrived.
func udpExchange(ctx context.Context, ns string, srv net.PacketConn, to netip.AddrPort, msg string) (netip.AddrPort, error) {
	c, err := netlab.ListenPacket(ns, "udp6", "[::]:0")
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer c.Close()
	buf := make([]byte, 1500)
	for range 5 {
		if _, err := c.WriteTo([]byte(msg), net.UDPAddrFromAddrPort(to)); err != nil {
			return netip.AddrPort{}, err
		}
		srv.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				break
			}
			if string(buf[:n]) == msg {
				return from.(*net.UDPAddr).AddrPort(), nil
			}
		}
		if ctx.Err() != nil {
			return netip.AddrPort{}, ctx.Err()
		}
	}
	return netip.AddrPort{}, fmt.Errorf("%q never reached the server", msg)
}

var globalV6 = regexp.MustCompile(`inet6 (2001:db8:[0-9a-f:]+)/64 scope global`)

func TestHostileNAT64(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 8*time.Minute)
	server := labPref64(t, netlab.V4OnlyServer.String())
	waitNAT64(t, ctx, l, fmt.Sprintf("http://[%s]/", server))
	helper := filepath.Join(l.RunDir(), "lab")

	srv, err := netlab.ListenPacket(netlab.NSInet, "udp4", netlab.V4OnlyServer.String()+":7700")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	to := netip.AddrPortFrom(server, 7700)

	t.Run("a remote spraying 8000 source ports at a binding stays bounded", func(t *testing.T) {
		binding, err := udpExchange(ctx, netlab.NSLanV6, srv, to, "open a binding")
		if err != nil {
			t.Fatal(err)
		}
		before := nat64Insights(t, ctx, l)
		const ports = 8000
		out, err := l.Exec(ctx, netlab.NSInet, helper, "spray-udp", "-src", netlab.V4OnlyServer.String(),
			"-dst", binding.String(), "-from", "20000", "-count", fmt.Sprint(ports))
		if err != nil {
			t.Fatalf("spray: %v\n%s", err, out)
		}
		t.Logf("%s", out)
		after := waitNAT64Drop(t, ctx, l, before, "inbound_session_refused")
		refused := after.Drops["inbound_session_refused"] - before.Drops["inbound_session_refused"]
		// A binding's bound is 64 (nat64.DefaultMaxInboundSessionsPerBinding);
		// other lab traffic may add a few sessions of its own.
		grew := after.Sessions - before.Sessions
		t.Logf("sessions %d → %d, inbound_session_refused +%d", before.Sessions, after.Sessions, refused)
		if grew > 64+16 {
			t.Errorf("the spray of %d ports grew the table by %d sessions", ports, grew)
		}
		if refused < ports/2 {
			t.Errorf("only %d of %d sprayed ports counted as refused", refused, ports)
		}
		dashboardSaysLimitHit(t, ctx, l, "nat64_inbound")
		// The spray was charged to the binding, not to the host.
		if _, err := udpExchange(ctx, netlab.NSLanV6, srv, to, "a new flow after the spray"); err != nil {
			t.Errorf("the host's new flow after the spray: %v (insights %+v)", err, nat64Insights(t, ctx, l))
		}
	})

	t.Run("a host rotating addresses in the LAN's /64 meets its own limit, not its neighbours'", func(t *testing.T) {
		out, err := l.Exec(ctx, netlab.NSLanV6, "ip", "-6", "addr", "show", "dev", netlab.HostIf)
		m := globalV6.FindStringSubmatch(string(out))
		if err != nil || m == nil {
			t.Fatalf("gz-lan-v6 has no global address: %v\n%s", err, out)
		}
		prefix := netip.PrefixFrom(netip.MustParseAddr(m[1]), 64).Masked()
		// gz-lan-clat, the neighbour, has an address in the same /64.
		out, err = l.Exec(ctx, netlab.NSLanCLAT, "ip", "-6", "addr", "show", "dev", netlab.HostIf)
		if m := globalV6.FindStringSubmatch(string(out)); err != nil || m == nil || !prefix.Contains(netip.MustParseAddr(m[1])) {
			t.Fatalf("gz-lan-clat has no address in %s: %v\n%s", prefix, err, out)
		}
		before := nat64Insights(t, ctx, l)
		// The daemon's plan: 16384 sessions per host (its MAC), 8192
		// per address, 98304 per /64. Five addresses × 8000 ICMP flows
		// (one per IPv4 destination) ask for 40000. ICMP sessions live
		// 60 s (RFC 6146 §4), so the host is back a minute after the
		// attack.
		t.Cleanup(func() {
			wctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := netlab.WaitFor(wctx, "the host's sessions to expire", func(ctx context.Context) (bool, error) {
				_, err := udpExchange(ctx, netlab.NSLanV6, srv, to, "after the rotation")
				return err == nil, nil
			}); err != nil {
				t.Errorf("the host stayed at its limit: %v", err)
			}
		})
		out, err = l.Exec(ctx, netlab.NSLanV6, helper, "rotate-icmp6", "-prefix", prefix.String(),
			"-addrs", "5", "-remotes", "8000", "-pref64", netlab.Pref64.String())
		if err != nil {
			t.Fatalf("rotate: %v\n%s", err, out)
		}
		t.Logf("%s", out)
		after := waitNAT64Drop(t, ctx, l, before, "mac_limit_refused")
		refused := after.Drops["mac_limit_refused"] - before.Drops["mac_limit_refused"]
		t.Logf("sessions %d → %d, mac_limit_refused +%d, host_limit_refused +%d, prefix_limit_refused +%d",
			before.Sessions, after.Sessions, refused,
			after.Drops["host_limit_refused"]-before.Drops["host_limit_refused"],
			after.Drops["prefix_limit_refused"]-before.Drops["prefix_limit_refused"])
		if after.Sessions > 16384+before.Sessions {
			t.Errorf("%d sessions: the host went past its 16384", after.Sessions)
		}
		if refused < 40000-16384-1000 {
			t.Errorf("only %d of the rotation's flows counted as refused by the host's limit", refused)
		}
		// The host's own stable address is at its limit too ...
		if _, err := udpExchange(ctx, netlab.NSLanV6, srv, to, "from a host at its limit"); err == nil {
			t.Error("a new flow from a host at its limit went through")
		}
		// ... and its neighbour in the same /64 opens flows.
		for i := range 3 {
			if _, err := udpExchange(ctx, netlab.NSLanCLAT, srv, to, fmt.Sprintf("from the neighbour, flow %d", i)); err != nil {
				t.Errorf("the neighbour's flow %d: %v (insights %+v)", i, err, nat64Insights(t, ctx, l))
			}
		}
	})
}
