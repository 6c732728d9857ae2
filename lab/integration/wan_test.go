package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/services/dhcp6pd"
)

// The WAN side of the gizmo in the lab: the delegation from the ISP's Kea,
// its survival across a restart, renumbering, and the uplink's own
// configuration (SLAAC, RIO-capable sysctls, DHCPv4, the WPD-5 route).

// waitPDLease waits for a persisted lease that satisfies ok.
func waitPDLease(t *testing.T, ctx context.Context, l *netlab.Lab, what string, ok func(dhcp6pd.Lease) bool) dhcp6pd.Lease {
	t.Helper()
	var le dhcp6pd.Lease
	err := netlab.WaitFor(ctx, what, func(context.Context) (bool, error) {
		var found bool
		le, found = l.PDLease()
		return found && ok(le), nil
	})
	if err != nil {
		t.Fatalf("%v (last lease: %+v)", err, le)
	}
	return le
}

// waitPDFrom waits for a persisted lease of a prefix from pool.
func waitPDFrom(t *testing.T, ctx context.Context, l *netlab.Lab, pool netip.Prefix) dhcp6pd.Lease {
	t.Helper()
	return waitPDLease(t, ctx, l, "a delegated prefix from "+pool.String(), func(le dhcp6pd.Lease) bool {
		return pool.Contains(le.Prefix.Addr())
	})
}

// unreachableRoutes lists the unreachable IPv6 routes in gz-gizmo.
func unreachableRoutes(t *testing.T, ctx context.Context, l *netlab.Lab) []netip.Prefix {
	t.Helper()
	out, err := l.Exec(ctx, netlab.NSGizmo, "ip", "-6", "route", "show", "type", "unreachable")
	if err != nil {
		t.Fatalf("ip route: %v\n%s", err, out)
	}
	var ps []netip.Prefix
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "unreachable" {
			if p, err := netip.ParsePrefix(f[1]); err == nil {
				ps = append(ps, p)
			}
		}
	}
	return ps
}

func hasPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// TestWANDelegationFromKea: the gizmo holds a /56 from the ISP's current
// pool, Kea agrees, and the uplink is configured as a router that still
// takes SLAAC and RIOs from upstream, with its DHCPv4 lease.
func TestWANDelegationFromKea(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 2*time.Minute)
	pool := l.PDPool()
	le := waitPDFrom(t, ctx, l, pool)
	if le.Prefix.Bits() != netlab.PDLength {
		t.Errorf("delegated %v, want a /%d", le.Prefix, netlab.PDLength)
	}
	if len(le.DNS) == 0 {
		t.Errorf("no DNS servers from DHCPv6 (OPTION_DNS_SERVERS) in %+v", le)
	}
	err := netlab.WaitFor(ctx, "Kea's lease for "+le.Prefix.String(), func(context.Context) (bool, error) {
		ps, err := l.DelegatedPrefixes()
		return err == nil && hasPrefix(ps, le.Prefix), nil
	})
	if err != nil {
		t.Error(err)
	}

	// RFC 7084 WPD-5: the delegation is covered by an unreachable route.
	err = netlab.WaitFor(ctx, "unreachable "+le.Prefix.String()+" in gz-gizmo", func(ctx context.Context) (bool, error) {
		return hasPrefix(unreachableRoutes(t, ctx, l), le.Prefix), nil
	})
	if err != nil {
		t.Error(err)
	}

	// SLAAC from the ISP's RA despite forwarding=1 (accept_ra=2).
	if _, err := netlab.WaitAddr(ctx, netlab.NSGizmo, netlab.GizmoWAN, netlab.WANPrefix6); err != nil {
		t.Errorf("no SLAAC address on the uplink: %v", err)
	}
	for key, want := range map[string]string{
		"net.ipv6.conf.all.forwarding":                     "1",
		"net.ipv6.conf.uplink0.accept_ra":                  "2",
		"net.ipv6.conf.uplink0.accept_ra_rt_info_max_plen": "128",
		"net.ipv4.ip_forward":                              "1",
	} {
		path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
		out, err := l.Exec(ctx, netlab.NSGizmo, "cat", path)
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %s", key, got, err, want)
		}
	}
	if _, err := l.WaitExec(ctx, netlab.NSGizmo, func(out string) bool { return strings.Contains(out, "proto ra") },
		"ip", "-6", "route", "show", "default", "dev", netlab.GizmoWAN); err != nil {
		t.Errorf("no default route from the ISP's RA: %v", err)
	}

	// The WAN's IPv4 from Kea's DHCPv4 pool, with the default route.
	v4, err := netlab.WaitAddr(ctx, netlab.NSGizmo, netlab.GizmoWAN, netlab.WANPrefix4)
	if err != nil {
		t.Fatalf("no DHCPv4 address on the uplink: %v", err)
	}
	if v4.Less(netlab.WANPool4First) || netlab.WANPool4Last.Less(v4) {
		t.Errorf("uplink IPv4 %v outside Kea's pool %v-%v", v4, netlab.WANPool4First, netlab.WANPool4Last)
	}
	if _, err := l.WaitExec(ctx, netlab.NSGizmo, func(out string) bool { return strings.Contains(out, "via "+netlab.ISPWAN4.String()) },
		"ip", "-4", "route", "show", "default"); err != nil {
		t.Errorf("no IPv4 default route via the ISP: %v", err)
	}
	leases4, err := l.KeaLeases4()
	found := false
	for _, k := range leases4 {
		found = found || k.Prefix.Addr() == v4
	}
	if err != nil || !found {
		t.Errorf("Kea has no DHCPv4 lease for %v: %v %+v", v4, err, leases4)
	}

	// Against a well-behaved ISP the WAN services have nothing to
	// complain about: no errors, no rejected leases, no dropped RAs.
	log, err := l.GizmoLog()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log), "\n") {
		mine := strings.Contains(line, "service=wan") || strings.Contains(line, "service=dhcp6pd")
		if mine && (strings.Contains(line, "level=ERROR") || strings.Contains(line, "rejected lease") || strings.Contains(line, "skipped RA option")) {
			t.Errorf("gizmo log: %s", line)
		}
	}
}

// TestWANDelegationSurvivesRestart: a restarted gizmo rebinds with its
// persisted DUID and lease and keeps the same prefix (RFC 8415 §18.2.12).
func TestWANDelegationSurvivesRestart(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 2*time.Minute)
	pool := l.PDPool()
	before := waitPDFrom(t, ctx, l, pool)
	duidPath := filepath.Join(l.GizmoStateDir(), "dhcp6pd", "dhcp6pd-duid.json")
	duid, err := os.ReadFile(duidPath)
	if err != nil {
		t.Fatalf("DUID not persisted: %v", err)
	}
	restarted := time.Now()
	if err := l.GizmoRestart(ctx); err != nil {
		t.Fatal(err)
	}
	after := waitPDLease(t, ctx, l, "a Reply after the restart", func(le dhcp6pd.Lease) bool {
		return le.Acquired.After(restarted)
	})
	if after.Prefix != before.Prefix {
		t.Errorf("after restart the gizmo holds %v, before %v", after.Prefix, before.Prefix)
	}
	if now, _ := os.ReadFile(duidPath); string(now) != string(duid) {
		t.Errorf("DUID changed across the restart:\n%s\n→\n%s", duid, now)
	}
	err = netlab.WaitFor(ctx, "unreachable "+after.Prefix.String()+" after the restart", func(ctx context.Context) (bool, error) {
		return hasPrefix(unreachableRoutes(t, ctx, l), after.Prefix), nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestWANRenumbering: the ISP moves the gizmo to another pool. The gizmo
// takes the new /56, keeps the old one covered by its unreachable route
// while it is being phased out, and the LAN host's address in the old
// prefix is deprecated, not the new one (RFC 9096 §3).
func TestWANRenumbering(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 3*time.Minute)
	old := waitPDFrom(t, ctx, l, l.PDPool())
	oldLAN := netip.PrefixFrom(old.Prefix.Addr(), 64)
	waitHostAddr(t, ctx, oldLAN)
	pool, err := l.Renumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	le := waitPDFrom(t, ctx, l, pool)
	if le.Prefix.Bits() != netlab.PDLength {
		t.Errorf("delegated %v, want a /%d", le.Prefix, netlab.PDLength)
	}
	err = netlab.WaitFor(ctx, "unreachable "+le.Prefix.String(), func(ctx context.Context) (bool, error) {
		return hasPrefix(unreachableRoutes(t, ctx, l), le.Prefix), nil
	})
	if err != nil {
		t.Error(err)
	}
	newLAN := netip.PrefixFrom(le.Prefix.Addr(), 64)
	waitHostAddr(t, ctx, newLAN)
	addrs, err := netlab.Addrs(ctx, netlab.NSLanV6, netlab.HostIf)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if oldLAN.Contains(a.Prefix.Addr()) && !a.Deprecated && a.Preferred > 0 {
			t.Errorf("LAN address %v in the old prefix is still preferred (%v)", a.Prefix, a.Preferred)
		}
		if newLAN.Contains(a.Prefix.Addr()) && a.Deprecated {
			t.Errorf("LAN address %v in the new prefix is deprecated", a.Prefix)
		}
	}
}

// TestWANLinkFlapKeepsSessions: the uplink goes down and comes back with
// nothing changed upstream (DESIGN issue 9, scenario 7). The gizmo keeps its
// delegation (it rebinds, RFC 8415 §18.2.12, and gets the same prefix), the
// LAN host's address stays preferred, and a TCP connection opened before
// the flap still carries a request afterwards.
func TestWANLinkFlapKeepsSessions(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 2*time.Minute)
	pool := l.PDPool()
	before := waitPDFrom(t, ctx, l, pool)
	lan := netip.PrefixFrom(before.Prefix.Addr(), 64)
	hostAddr := waitHostAddr(t, ctx, lan)

	server := netip.AddrPortFrom(netlab.V6OnlyServer, 80).String()
	conn, err := netlab.DialContext(ctx, netlab.NSLanV6, "tcp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	get := func(n int) {
		t.Helper()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: v6only.example.test\r\n\r\n"); err != nil {
			t.Fatalf("request %d: %v", n, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d on the connection opened before the flap: %v", n, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("response %d: %s", n, resp.Status)
		}
	}
	get(1)

	flapped := time.Now()
	for _, state := range []string{"down", "up"} {
		if out, err := l.Exec(ctx, netlab.NSGizmo, "ip", "link", "set", netlab.GizmoWAN, state); err != nil {
			t.Fatalf("ip link set %s: %v\n%s", state, err, out)
		}
		time.Sleep(time.Second)
	}
	after := waitPDLease(t, ctx, l, "a Reply after the flap", func(le dhcp6pd.Lease) bool {
		return le.Acquired.After(flapped)
	})
	if after.Prefix != before.Prefix {
		t.Errorf("after the flap the gizmo holds %v, before %v", after.Prefix, before.Prefix)
	}
	get(2)
	addrs, err := netlab.Addrs(ctx, netlab.NSLanV6, netlab.HostIf)
	if err != nil {
		t.Fatal(err)
	}
	kept := false
	for _, a := range addrs {
		if a.Prefix.Addr() == hostAddr {
			kept = !a.Deprecated
		}
	}
	if !kept {
		t.Errorf("the LAN host lost or deprecated %v across the flap: %+v", hostAddr, addrs)
	}
}
