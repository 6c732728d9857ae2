package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"codeberg.org/monostack/gizmo/internal/benchns"
	"codeberg.org/monostack/gizmo/services/nat64"
)

var pref64 = netip.MustParsePrefix("2001:db8:64::/96")

// mode sets up one way of reaching the server and says which address the
// client uses.
type mode struct {
	name   string
	target string // what the client connects to
	server string // the server's own address (iperf3 binds it, so that UDP replies come from it)
	// oneArm: the mode runs on a one-armed segment (newOneArm), not on
	// a client ── router ── server chain.
	oneArm bool
	setup  func(ch *chain) (*running, error)
}

// running is a mode once set up.
type running struct {
	stop func()
	// counters are the translator's counters, for the modes that have
	// them (the gizmo's), else nil.
	counters func() map[string]uint64
}

// gizmoMode runs the NAT64 service as the daemon does on a router (LAN
// and WAN ports), with the plan's limits left at their shipped defaults.
func gizmoMode(ch *chain) (*running, error) {
	return startGizmo(ch, nat64.Plan{
		Pool4: netip.MustParseAddr("192.0.2.100"), Pref64: pref64,
		LANPrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000::/64")},
		Router6:     netip.MustParseAddr("2001:db8:1000::1"),
		LANIfindex:  ifindex(ch.Router, "lan0"), WANIfindex: ifindex(ch.Router, "uplink0"), LANMTU: 1500, WANMTU: 1500,
	})
}

// ifindex is dev's interface index in namespace ns, 0 if there is none
// (which the NAT64 refuses).
func ifindex(ns, dev string) int {
	out, _ := benchns.Output(ns, "cat", "/sys/class/net/"+dev+"/ifindex")
	var n int
	fmt.Sscan(string(out), &n)
	return n
}

// startGizmo runs the NAT64 service in the router namespace with plan p.
func startGizmo(ch *chain, p nat64.Plan) (*running, error) {
	svc, err := nat64.New(nat64.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := benchns.Go(ch.Router, func() error { return svc.Run(ctx) })
	svc.Update(p)
	for i := 0; !svc.Stats().Enabled; i++ {
		if i > 500 {
			cancel()
			return nil, fmt.Errorf("nat64 did not start: %v", <-done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &running{
		stop: func() {
			slog.Info("gizmo counters", "lan_ifindex", p.LANIfindex, "wan_ifindex", p.WANIfindex, "counters", svc.Stats().Counters)
			cancel()
			<-done
		},
		counters: func() map[string]uint64 { return svc.Stats().Counters },
	}, nil
}

func nat44Mode(ch *chain) (*running, error) { return &running{stop: func() {}}, ch.Masquerade() }

func taygaMode(ch *chain) (*running, error) {
	dir, err := os.MkdirTemp("", ch.Router+"-tayga")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "tayga.conf")
	err = os.WriteFile(conf, []byte(fmt.Sprintf("tun-device nat64\nipv4-addr 192.168.255.1\nprefix %s\ndynamic-pool 192.168.255.0/24\ndata-dir %s\n", pref64, dir)), 0o600)
	if err != nil {
		return nil, err
	}
	for _, s := range [][]string{
		benchns.In(ch.Router, "tayga", "-c", conf, "--mktun"),
		benchns.In(ch.Router, "ip", "link", "set", "nat64", "up"),
		benchns.In(ch.Router, "ip", "route", "add", "192.168.255.0/24", "dev", "nat64"),
		benchns.In(ch.Router, "ip", "-6", "route", "add", pref64.String(), "dev", "nat64"),
	} {
		if err := benchns.Sh(s...); err != nil {
			return nil, err
		}
	}
	if err := ch.Masquerade(); err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", benchns.In(ch.Router, "tayga", "-c", conf, "-n")[1:]...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &running{stop: func() { cmd.Process.Kill(); cmd.Wait(); os.RemoveAll(dir) }}, nil
}

func target(v4 string) string {
	a := pref64.Addr().As16()
	b := netip.MustParseAddr(v4).As4()
	copy(a[12:], b[:])
	return netip.AddrFrom16(a).String()
}

var modes = []mode{
	{"gizmo", target("198.51.100.80"), "198.51.100.80", false, gizmoMode},
	{"tayga", target("198.51.100.80"), "198.51.100.80", false, taygaMode},
	{"nat44", "198.51.100.80", "198.51.100.80", false, nat44Mode},
	{"ipv6", "2001:db8:ffff::6", "2001:db8:ffff::6", false, func(*chain) (*running, error) { return &running{stop: func() {}}, nil }},
	{"gizmo-onearm", target("198.51.100.80"), "198.51.100.80", true, gizmoOneArmMode},
	{"ipv6-onearm", "2001:db8:ffff::6", "2001:db8:ffff::6", true, ipv6OneArmMode},
}
