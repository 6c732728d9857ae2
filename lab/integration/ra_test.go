package integration

// Router Advertisements and stateless DHCPv6 as the LAN hosts see them
// (issue 2, "Done when"): SLAAC in the first /64 of the delegation, the
// default route via the gizmo's link-local address, every RA option decoded
// by tshark, and renumbering (RFC 9096 §3).

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/internal/ratshark"
	"codeberg.org/monostack/gizmo/lab/netlab"
)

// waitHostAddr waits for gz-lan-v6's usable address in within.
func waitHostAddr(t *testing.T, ctx context.Context, within netip.Prefix) netip.Addr {
	t.Helper()
	a, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, within)
	if err != nil {
		t.Fatalf("gz-lan-v6 has no usable address in %s: %v", within, err)
	}
	return a
}

// lanPrefix waits for the ISP's delegation and returns the LAN /64 the
// gizmo must advertise: the first /64 of it.
func lanPrefix(t *testing.T, ctx context.Context, l *netlab.Lab, pool netip.Prefix) netip.Prefix {
	t.Helper()
	var lan netip.Prefix
	err := netlab.WaitFor(ctx, "a delegation from "+pool.String(), func(context.Context) (bool, error) {
		ps, err := l.DelegatedPrefixes()
		if err != nil {
			return false, err
		}
		for _, p := range ps {
			if pool.Contains(p.Addr()) {
				lan = netip.PrefixFrom(p.Masked().Addr(), 64)
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lan
}

// TestLANHostGetsPrefixAndDefaultRoute: gz-lan-v6 configures a SLAAC
// address in the first /64 of its delegated /56, routes through the gizmo's
// link-local address, and reaches the IPv6-only server.
func TestLANHostGetsPrefixAndDefaultRoute(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 2*time.Minute)
	lan := lanPrefix(t, ctx, l, netlab.PDAggregate)
	addr := waitHostAddr(t, ctx, lan)
	want := "default via " + netlab.GizmoLANLinkLocal.String() + " dev " + netlab.HostIf + " proto ra"
	if _, err := l.WaitExec(ctx, netlab.NSLanV6, func(out string) bool { return strings.Contains(out, want) },
		"ip", "-6", "route", "show", "default"); err != nil {
		t.Fatalf("no %q: %v", want, err)
	}
	url := "http://[" + netlab.V6OnlyServer.String() + "]/"
	out, err := l.WaitExec(ctx, netlab.NSLanV6, func(out string) bool { return strings.HasPrefix(out, "server=") },
		"curl", "-sS", "-m", "5", url)
	if err != nil {
		t.Fatalf("curl %s: %v", url, err)
	}
	// The server names the client: it must be one of the host's addresses
	// in the LAN /64 (SLAAC or a privacy address).
	_, client, _ := strings.Cut(strings.TrimSpace(out), " client=")
	if a, err := netip.ParseAddr(client); err != nil || !lan.Contains(a) {
		t.Errorf("curl %s from %s: %q, want a client address in %s", url, addr, out, lan)
	}
}

// TestRAOptionsOnLAN captures the gizmo's RA in gz-lan-v6 and compares
// tshark's decoding with the plan: PIO for the LAN /64 and the ULA /64,
// RIO for the ULA /48 and the NAT64 prefix, RDNSS, DNSSL, PREF64, MTU and
// source link-layer address. rdisc6 would skip PREF64.
func TestRAOptionsOnLAN(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 2*time.Minute)
	lan := lanPrefix(t, ctx, l, netlab.PDAggregate)
	waitHostAddr(t, ctx, lan)

	var fd int
	if err := netlab.InNamespace(netlab.NSLanV6, func() (err error) {
		fd, err = ratshark.Socket(netlab.HostIf)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	// Solicit an RA rather than wait up to MaxRtrAdvInterval for one.
	if _, err := l.Exec(ctx, netlab.NSLanV6, "rdisc6", "-1", "-q", netlab.HostIf); err != nil {
		t.Fatalf("rdisc6: %v", err)
	}
	mac, err := net.ParseMAC(netlab.MACGizmoLAN)
	if err != nil {
		t.Fatal(err)
	}
	frame := ratshark.Read(t, fd, mac, 30*time.Second)
	lines := dropRetiredPIOs(t, ratshark.Decode(ctx, t, frame), lan)

	// The values that depend on time or on this lab's random ULA are
	// checked on their own, then replaced by placeholders.
	ula := findULA(t, lines)
	dns := state.DNSAddrsIn(ula, netlab.GizmoLANIPv4)
	for i, line := range lines {
		if i > 0 && i+2 < len(lines) && strings.HasPrefix(lines[i-1], "Router address flag(R)") && lines[i+2] == "Prefix: "+lan.Addr().String() {
			// The delegated /64's lifetimes run down with the lab's short
			// lease (valid 60 s): RFC 9096 §3.4 caps them by what is left.
			valid := lifetime(t, line, "Valid Lifetime: ")
			preferred := lifetime(t, lines[i+1], "Preferred Lifetime: ")
			if valid <= 0 || valid > 60 || preferred > valid {
				t.Errorf("LAN /64 lifetimes preferred %d, valid %d: want 0 < preferred ≤ valid ≤ 60 (the lease's)", preferred, valid)
			}
			lines[i], lines[i+1] = "Valid Lifetime: (lease)", "Preferred Lifetime: (lease)"
		}
	}
	got := strings.Split(strings.ReplaceAll(strings.Join(lines, "\n"), ula.Masked().Addr().String(), "ULA::"), "\n")
	want := ratshark.RA{
		MAC:            netlab.MACGizmoLAN,
		RouterLifetime: 2700,
		MTU:            1500,
		LAN:            ratshark.PIO{Net: lan.Addr().String(), Valid: "(lease)", Preferred: "(lease)"},
		ULA:            ratshark.PIO{Net: "ULA::", Valid: "5400", Preferred: "2700"},
		ULARoute:       "ULA::",
		RouteLifetime:  2700,
		Pref64:         "2001:db8:64::",
		RDNSS:          strings.ReplaceAll(dns.RDNSS.String(), ula.Masked().Addr().String(), "ULA::"),
		DNSLifetime:    int(optionLifetime(l).Seconds()),
		Domain:         "home.arpa",
		Pref64Scaled:   int(optionLifetime(l).Seconds()) / 8,
	}.Lines()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tshark -V decoding of the gizmo's RA in %s (-want +got):\n%s", netlab.NSLanV6, diff)
	}
}

// optionLifetime is the RDNSS/DNSSL/PREF64 lifetime the gizmo advertises:
// 3 × MaxRtrAdvInterval (RFC 8106 §5.1), from the -ra-interval it runs with.
func optionLifetime(l *netlab.Lab) time.Duration {
	interval := 200 * time.Second // the daemon's default
	argv := l.GizmoArgv()
	for i, a := range argv {
		if v, ok := strings.CutPrefix(a, "-ra-interval="); ok {
			interval, _ = time.ParseDuration(v)
		} else if a == "-ra-interval" && i+1 < len(argv) {
			interval, _ = time.ParseDuration(argv[i+1])
		}
	}
	return 3 * interval
}

// findULA returns the ULA /48 from the RA's ULA PIO (RFC 4193: fd00::/8).
func findULA(t *testing.T, lines []string) netip.Prefix {
	t.Helper()
	for _, line := range lines {
		if s, ok := strings.CutPrefix(line, "ICMPv6 Option (Prefix information : fd"); ok {
			p, err := netip.ParsePrefix("fd" + strings.TrimSuffix(s, ")"))
			if err != nil {
				t.Fatal(err)
			}
			return netip.PrefixFrom(p.Addr(), 48).Masked()
		}
	}
	t.Fatalf("no ULA PIO in the RA:\n%s", strings.Join(lines, "\n"))
	return netip.Prefix{}
}

func lifetime(t *testing.T, line, prefix string) int {
	t.Helper()
	v, err := strconv.Atoi(strings.TrimPrefix(line, prefix))
	if err != nil || !strings.HasPrefix(line, prefix) {
		t.Fatalf("%q is not %q and a number", line, prefix)
	}
	return v
}

// TestRenumberingReachesLAN: the ISP renumbers; the LAN host gets the new
// prefix (sent at once on the plan change, within one RA interval), and the
// old one is deprecated (preferred lifetime 0), never the new one
// (RFC 9096 §3.5; odhcpd bug #387).
func TestRenumberingReachesLAN(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 3*time.Minute)
	old := lanPrefix(t, ctx, l, netlab.PDAggregate)
	waitHostAddr(t, ctx, old)
	pool, err := l.Renumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lan := lanPrefix(t, ctx, l, pool)
	waitHostAddr(t, ctx, lan)
	// The old prefix's addresses are deprecated or already gone; none of
	// them is still preferred.
	out, err := l.Exec(ctx, netlab.NSLanV6, "ip", "-6", "-o", "addr", "show", "dev", netlab.HostIf, "scope", "global")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		a, err := netip.ParsePrefix(f[3])
		if err != nil || !old.Contains(a.Addr()) {
			continue
		}
		if !strings.Contains(line, "deprecated") && !strings.Contains(line, "preferred_lft 0sec") {
			t.Errorf("an address in the old prefix %s is still preferred:\n%s", old, line)
		}
	}
}

// TestRestartKeepsHostAddresses: a requested restart (SIGTERM) sends the
// final RA with router lifetime 0 (RFC 4861 §6.2.5) but keeps the prefixes,
// and the restarted gizmo gets the same delegation back (persisted DUID and
// lease): the host keeps its address and gets its default route back.
func TestRestartKeepsHostAddresses(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 3*time.Minute)
	lan := lanPrefix(t, ctx, l, netlab.PDAggregate)
	before := waitHostAddr(t, ctx, lan)
	if err := l.GizmoRestart(ctx); err != nil {
		t.Fatal(err)
	}
	want := "default via " + netlab.GizmoLANLinkLocal.String() + " dev " + netlab.HostIf + " proto ra"
	if _, err := l.WaitExec(ctx, netlab.NSLanV6, func(out string) bool { return strings.Contains(out, want) },
		"ip", "-6", "route", "show", "default"); err != nil {
		t.Fatalf("no %q after the restart: %v", want, err)
	}
	after := waitHostAddr(t, ctx, lan)
	addrs, err := netlab.Addrs(ctx, netlab.NSLanV6, netlab.HostIf)
	if err != nil {
		t.Fatal(err)
	}
	kept := false
	for _, a := range addrs {
		kept = kept || a.Prefix.Addr() == before && !a.Deprecated && !a.Tentative
	}
	if !kept {
		t.Errorf("the host lost %s across the restart (now %s): %+v", before, after, addrs)
	}
}

// TestMalformedRSIsCounted sends a Router Solicitation that was "forwarded"
// (hop limit 64) and one with a zero-length option from gz-lan-v6: the
// gizmo drops and counts both (RFC 4861 §6.1.1) and keeps running.
func TestMalformedRSIsCounted(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, time.Minute)
	_, crashesBefore := l.GizmoStarts()
	// The drops by reason, summed (no reason has a line before its first
	// drop; the received counter is there from the start).
	invalid := func() (float64, error) {
		body, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/metrics")
		if err != nil {
			return 0, err
		}
		if !strings.Contains(body, "\ngizmo_ra_rs_received_total ") {
			return 0, fmt.Errorf("no gizmo_ra_rs_received_total in /metrics")
		}
		var sum float64
		for _, line := range strings.Split(body, "\n") {
			if rest, ok := strings.CutPrefix(line, "gizmo_ra_rs_invalid_total{"); ok {
				_, v, _ := strings.Cut(rest, "} ")
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return 0, fmt.Errorf("/metrics: %q: %w", line, err)
				}
				sum += n
			}
		}
		return sum, nil
	}
	var before float64
	if err := netlab.WaitFor(ctx, "the gizmo's /metrics", func(context.Context) (bool, error) {
		var err error
		before, err = invalid()
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}

	if err := netlab.WithNDP(netlab.NSLanV6, netlab.HostIf, func(c *ndp.Conn, ifi *net.Interface, ip netip.Addr) error {
		allRouters := netip.MustParseAddr("ff02::2")
		cm := &ipv6.ControlMessage{HopLimit: 64, Src: ip.AsSlice(), IfIndex: ifi.Index}
		if err := c.WriteTo(&ndp.RouterSolicitation{}, cm, allRouters); err != nil {
			return err
		}
		// An option of length 0 (RFC 4861 §6.1.1: must be greater), which
		// the ndp package rightly refuses to build: raw bytes.
		raw, err := icmp.ListenPacket("ip6:ipv6-icmp", ip.String())
		if err != nil {
			return err
		}
		defer raw.Close()
		pc := raw.IPv6PacketConn()
		if err := pc.SetChecksum(true, 2); err != nil {
			return err
		}
		rs := []byte{133, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0}
		_, err = pc.WriteTo(rs, &ipv6.ControlMessage{HopLimit: 255, IfIndex: ifi.Index},
			&net.IPAddr{IP: allRouters.AsSlice(), Zone: netlab.HostIf})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(ctx, "two more invalid RS counted", func(context.Context) (bool, error) {
		n, err := invalid()
		return err == nil && n >= before+2, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, crashes := l.GizmoStarts(); crashes != crashesBefore {
		t.Errorf("the gizmo exited unrequested %d times during the test", crashes-crashesBefore)
	}
}

// TestStatelessDHCPv6OnLAN asks the gizmo's stateless DHCPv6 server from
// gz-lan-v6 with ISC dhclient -S (Information-request): it answers with the
// DNS service's DHCPv6 address and home.arpa (RFC 8415 §18.3.6), and the
// gizmo's ULA address as NTP server (RFC 5908 §4).
func TestStatelessDHCPv6OnLAN(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, time.Minute)
	ula := waitHostAddr(t, ctx, netip.MustParsePrefix("fd00::/8"))
	wantDNS := state.DNSAddrsIn(netip.PrefixFrom(ula, 48).Masked(), netlab.GizmoLANIPv4).DHCPv6

	dir := t.TempDir()
	env := filepath.Join(dir, "env")
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nenv | grep '^new_dhcp6_' | sort > "+env+".tmp && mv "+env+".tmp "+env+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// -1: one exchange, then exit; the script only records what it got, so
	// the host's own configuration stays untouched.
	if out, err := l.Exec(ctx, netlab.NSLanV6, "dhclient", "-S", "-d", "-1", "-lf", filepath.Join(dir, "leases"),
		"-pf", filepath.Join(dir, "pid"), "-sf", script, netlab.HostIf); err != nil {
		t.Fatalf("dhclient -S: %v\n%s", err, out)
	}
	b, err := os.ReadFile(env)
	if err != nil {
		t.Fatalf("dhclient got no Reply: %v", err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.HasPrefix(line, "new_dhcp6_server_id=") && !strings.HasPrefix(line, "new_dhcp6_client_id=") {
			got = append(got, line)
		}
	}
	// dhclient has no name for OPTION_NTP_SERVER and prints its bytes: one
	// NTP_SUBOPTION_SRV_ADDR (1), 16 octets long, with the address.
	var ntp []string
	for _, b := range append([]byte{0, 1, 0, 16}, state.RouterULA(netip.PrefixFrom(ula, 48).Masked()).AsSlice()...) {
		ntp = append(ntp, strconv.FormatUint(uint64(b), 16))
	}
	want := []string{
		"new_dhcp6_domain_search=home.arpa.",
		"new_dhcp6_info_refresh_time=3600",
		"new_dhcp6_name_servers=" + wantDNS.String(),
		"new_dhcp6_unknown_56=" + strings.Join(ntp, ":"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stateless DHCPv6 on the LAN (-want +got):\n%s", diff)
	}
}

// dropRetiredPIOs removes the Prefix Information options of prefixes other
// than the current LAN /64 and the ULA, after checking that each is
// deprecated (RFC 9096 §3: a retired prefix is advertised with preferred
// lifetime 0 until it is invalid). Earlier tests in this package renumber
// the lab, so such options may still be on the wire.
func dropRetiredPIOs(t *testing.T, lines []string, lan netip.Prefix) []string {
	t.Helper()
	const header = "ICMPv6 Option (Prefix information : "
	var out []string
	for i := 0; i < len(lines); i++ {
		pfx, ok := strings.CutPrefix(lines[i], header)
		if !ok {
			out = append(out, lines[i])
			continue
		}
		pfx = strings.TrimSuffix(pfx, ")")
		if p, err := netip.ParsePrefix(pfx); err != nil || p == lan || strings.HasPrefix(pfx, "fd") {
			out = append(out, lines[i])
			continue
		}
		end := i + 1
		for end < len(lines) && !strings.HasPrefix(lines[end], "ICMPv6 Option (") {
			end++
		}
		if !slices.Contains(lines[i:end], "Preferred Lifetime: 0") {
			t.Errorf("RFC 9096 §3: PIO %s is neither the LAN /64 nor deprecated:\n%s", pfx, strings.Join(lines[i:end], "\n"))
		}
		i = end - 1
	}
	return out
}
