package integration

// The NAT64 against a hostile network: the internet (gz-inet) sprays a LAN
// host's binding from thousands of source ports, and a LAN host rotates
// addresses inside its /64 to escape its limit. The attackers are the lab
// binary's spray-udp and rotate-icmp6 (lab/hostile.go). The sessions must
// stay bounded, every refusal counted (/api/insights, the same counters as
// /metrics), and the host must keep opening flows where its quota allows.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
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

// udpExchange sends one datagram from a fresh socket of gz-lan-v6 to the
// IPv4-only server through the NAT64 and returns the transport address the
// server saw (the host's binding), or an error when nothing arrived.
func udpExchange(ctx context.Context, srv net.PacketConn, to netip.AddrPort, msg string) (netip.AddrPort, error) {
	c, err := netlab.ListenPacket(netlab.NSLanV6, "udp6", "[::]:0")
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
		binding, err := udpExchange(ctx, srv, to, "open a binding")
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
		// Wait for the refusals to be counted and a reaper pass (every
		// 10 s) to count the sessions.
		var after web.NAT64Insights
		if err := netlab.WaitFor(ctx, "the spray counted and a reaper pass", func(ctx context.Context) (bool, error) {
			after = nat64Insights(t, ctx, l)
			return after.Drops["inbound_session_refused"] > before.Drops["inbound_session_refused"], nil
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(11 * time.Second)
		after = nat64Insights(t, ctx, l)
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
		// The spray was charged to the binding, not to the host.
		if _, err := udpExchange(ctx, srv, to, "a new flow after the spray"); err != nil {
			t.Errorf("the host's new flow after the spray: %v (insights %+v)", err, nat64Insights(t, ctx, l))
		}
	})

	t.Run("a host rotating addresses in its /64 meets the /64's limit", func(t *testing.T) {
		out, err := l.Exec(ctx, netlab.NSLanV6, "ip", "-6", "addr", "show", "dev", netlab.HostIf)
		m := globalV6.FindStringSubmatch(string(out))
		if err != nil || m == nil {
			t.Fatalf("gz-lan-v6 has no global address: %v\n%s", err, out)
		}
		prefix := netip.PrefixFrom(netip.MustParseAddr(m[1]), 64).Masked()
		before := nat64Insights(t, ctx, l)
		// The daemon's plan: 32768 sessions per /64, 8192 per address.
		// Five addresses × 8000 ICMP flows (one per IPv4 destination)
		// ask for 40000. ICMP sessions live 60 s (RFC 6146 §4), so the
		// /64 is usable again a minute after the attack.
		t.Cleanup(func() {
			wctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := netlab.WaitFor(wctx, "the /64's sessions to expire", func(ctx context.Context) (bool, error) {
				_, err := udpExchange(ctx, srv, to, "after the rotation")
				return err == nil, nil
			}); err != nil {
				t.Errorf("the /64 stayed full: %v", err)
			}
		})
		out, err = l.Exec(ctx, netlab.NSLanV6, helper, "rotate-icmp6", "-prefix", prefix.String(),
			"-addrs", "5", "-remotes", "8000", "-pref64", netlab.Pref64.String())
		if err != nil {
			t.Fatalf("rotate: %v\n%s", err, out)
		}
		t.Logf("%s", out)
		var after web.NAT64Insights
		if err := netlab.WaitFor(ctx, "the /64's limit counted", func(ctx context.Context) (bool, error) {
			after = nat64Insights(t, ctx, l)
			return after.Drops["prefix_limit_refused"] > before.Drops["prefix_limit_refused"], nil
		}); err != nil {
			t.Fatalf("%v (insights %+v)", err, after)
		}
		time.Sleep(11 * time.Second)
		after = nat64Insights(t, ctx, l)
		t.Logf("sessions %d → %d, prefix_limit_refused +%d, host_limit_refused +%d", before.Sessions, after.Sessions,
			after.Drops["prefix_limit_refused"]-before.Drops["prefix_limit_refused"],
			after.Drops["host_limit_refused"]-before.Drops["host_limit_refused"])
		if after.Sessions > 32768+before.Sessions {
			t.Errorf("%d sessions: the /64 went past its 32768", after.Sessions)
		}
		// The host's own address is in the full /64 as well.
		if _, err := udpExchange(ctx, srv, to, "from a full /64"); err == nil {
			t.Error("a new flow from a /64 at its limit went through")
		}
	})
}
