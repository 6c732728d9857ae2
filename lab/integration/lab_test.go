package integration

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// The internet's four HTTP servers answer from gz-isp, and each names
// itself and the client.
func TestInetServesHTTPFromISP(t *testing.T) {
	l := Lab(t)
	ctx := testContext(t, 30*time.Second)
	for _, s := range netlab.Servers() {
		url := "http://" + netip.AddrPortFrom(s.Addr, 80).String() + "/"
		client := netlab.ISPInet4
		if s.Addr.Is6() {
			client = netlab.ISPInet6
		}
		want := "server=" + s.Addr.String() + " name=" + s.Name + " client=" + client.String() + "\n"
		out, err := l.Exec(ctx, netlab.NSISP, "curl", "-sS", "-m", "5", url)
		if err != nil {
			t.Errorf("curl %s: %v", url, err)
			continue
		}
		if diff := cmp.Diff(want, string(out)); diff != "" {
			t.Errorf("curl %s from gz-isp (-want +got):\n%s", url, diff)
		}
		// The same through the library's namespace dialer.
		body, err := netlab.HTTPGet(ctx, netlab.NSISP, url)
		if err != nil {
			t.Errorf("HTTPGet: %v", err)
		} else if body != want {
			t.Errorf("HTTPGet %s = %q, want %q", url, body, want)
		}
	}
}

// The 203.0.113.0/24 split: only the lower /25 is the internet's; the upper
// /25 is the gizmo's legacy LAN and must not be routed to gz-inet.
func TestInetOwnsOnlyLowerHalfOf203(t *testing.T) {
	l := Lab(t)
	ctx := testContext(t, 10*time.Second)
	out, err := l.Exec(ctx, netlab.NSISP, "ip", "-4", "route", "get", "203.0.113.200")
	if err == nil && strings.Contains(string(out), netlab.V4OnlyServer.String()) {
		t.Errorf("gz-isp routes 203.0.113.200 to gz-inet:\n%s", out)
	}
}

// BIND in gz-isp serves example.test (the lab's names) on both addresses.
func TestISPDNSAnswersExampleTest(t *testing.T) {
	l := Lab(t)
	ctx := testContext(t, 30*time.Second)
	for _, tc := range []struct {
		name, qtype, want string
	}{
		{"v4only.example.test", "A", "198.51.100.80"},
		{"v4only.example.test", "AAAA", ""},
		{"dual.example.test", "A", "203.0.113.10"},
		{"dual.example.test", "AAAA", "2001:db8:ffff::10"},
		{"v6only.example.test", "AAAA", "2001:db8:ffff::6"},
		{"v6only.example.test", "A", ""},
		{"mapped.example.test", "AAAA", "::ffff:198.51.100.80"},
		{"mapped.example.test", "A", "198.51.100.80"},
		{"chain.example.test", "A", "v4only.example.test.\n198.51.100.80"},
		{"ipv4only.arpa", "A", "192.0.0.170\n192.0.0.171"},
	} {
		for _, server := range []netip.Addr{netlab.ISPDNS4, netlab.ISPDNS6} {
			out, err := l.Exec(ctx, netlab.NSISP, "dig", "+short", "+time=2", "+tries=2", "@"+server.String(), tc.qtype, tc.name)
			if err != nil {
				t.Errorf("dig %s %s @%s: %v", tc.qtype, tc.name, server, err)
				continue
			}
			got := strings.Join(sortedLines(string(out)), "\n")
			want := strings.Join(sortedLines(tc.want), "\n")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("dig %s %s @%s (-want +got):\n%s", tc.qtype, tc.name, server, diff)
			}
		}
	}
}

func sortedLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	// dig prints a CNAME before its target; keep that order, sort the rest.
	for i := 1; i < len(lines); i++ {
		for j := i; j > 0 && !strings.HasSuffix(lines[j-1], ".") && lines[j] < lines[j-1]; j-- {
			lines[j], lines[j-1] = lines[j-1], lines[j]
		}
	}
	return lines
}

// Recursion is allowed but never leaves the lab: names outside the lab's
// zones are NXDOMAIN from the lab's own root zone.
func TestISPDNSStaysInsideTheLab(t *testing.T) {
	l := Lab(t)
	ctx := testContext(t, 20*time.Second)
	out, err := l.Exec(ctx, netlab.NSISP, "dig", "+time=2", "+tries=1", "@"+netlab.ISPDNS4.String(), "A", "www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "status: NXDOMAIN") || !strings.Contains(string(out), " ra") {
		t.Errorf("want a recursive NXDOMAIN answer:\n%s", out)
	}
}

var rdiscField = regexp.MustCompile(`(?m)^\s*([^:\n]+?)\s*:\s*(\S+)`)

// radvd in gz-isp advertises the WAN prefix and the ISP's DNS (RDNSS,
// RFC 8106), as rdisc6 on the gizmo's uplink hears it.
func TestISPRouterAdvertisement(t *testing.T) {
	l := Lab(t)
	ctx := testContext(t, 30*time.Second)
	out, err := l.Exec(ctx, netlab.NSGizmo, "rdisc6", "-1", "-w", "2000", netlab.GizmoWAN)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range rdiscField.FindAllStringSubmatch(string(out), -1) {
		got[m[1]] = m[2]
	}
	want := map[string]string{
		"Prefix":                 netlab.WANPrefix6.String(),
		"Recursive DNS server":   netlab.ISPDNS6.String(),
		"Stateful address conf.": "No",
		"Stateful other conf.":   "Yes",
	}
	if !strings.Contains(string(out), "from "+netlab.ISPWANLinkLocal.String()) {
		t.Errorf("RA not from %s:\n%s", netlab.ISPWANLinkLocal, out)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("rdisc6 %s = %q, want %q; full output:\n%s", k, got[k], v, out)
		}
	}
}

// dhcpcdOnce runs dhcpcd once on the gizmo's uplink (the gizmo is not
// running) with its own database dir, and returns its output.
func dhcpcdOnce(ctx context.Context, t *testing.T, l *netlab.Lab, dir, conf string, args ...string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "dhcpcd.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	const script = `set -e
mount --bind "$1" /var/lib/dhcpcd
mount -t tmpfs -o mode=0755 gizmo-lab-test /run
mkdir -p /run/dhcpcd
shift
exec dhcpcd "$@"`
	argv := append([]string{"sh", "-c", script, "dhcpcd-test", dir, "-B", "-1", "-t", "20", "-f", "/var/lib/dhcpcd/dhcpcd.conf"}, args...)
	out, err := l.Exec(ctx, netlab.NSGizmo, append(argv, netlab.GizmoWAN)...)
	if err != nil {
		t.Fatalf("dhcpcd: %v", err)
	}
	return string(out)
}

var delegatedRE = regexp.MustCompile(`delegated prefix (\S+)`)

// Kea in gz-isp delegates a /56 from the current pool to a DHCPv6-PD
// client, records it in its lease file, and after Renumber delegates from
// the other pool. With the gizmo running, the gizmo is the client.
func TestKeaDelegatesPrefix(t *testing.T) {
	l := Lab(t)
	ctx := testContext(t, 90*time.Second)
	if sharedHasGizmo {
		var got []netip.Prefix
		err := netlab.WaitFor(ctx, "a delegation to the gizmo in Kea's lease file", func(context.Context) (bool, error) {
			var err error
			got, err = l.DelegatedPrefixes()
			return len(got) > 0, err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range got {
			if p.Bits() != netlab.PDLength || !l.PDPool().Contains(p.Addr()) {
				t.Errorf("delegated %s, want a /%d from %s", p, netlab.PDLength, l.PDPool())
			}
		}
		return
	}
	t.Cleanup(func() {
		// dhcpcd -1 leaves its reject route for the delegation behind.
		_, _ = l.Exec(context.Background(), netlab.NSGizmo, "ip", "-6", "route", "flush", "proto", "dhcp")
	})
	dir := t.TempDir()
	conf := "script /bin/true\nipv6only\nnoipv6rs\ninterface " + netlab.GizmoWAN + "\n  ia_pd 1 -\n"
	delegate := func(pool netip.Prefix) netip.Prefix {
		t.Helper()
		out := dhcpcdOnce(ctx, t, l, dir, conf, "-6")
		m := delegatedRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no delegation in dhcpcd's output:\n%s", out)
		}
		p, err := netip.ParsePrefix(m[1])
		if err != nil {
			t.Fatal(err)
		}
		if p.Bits() != netlab.PDLength || !pool.Contains(p.Addr()) {
			t.Errorf("delegated %s, want a /%d from %s", p, netlab.PDLength, pool)
		}
		leases, err := l.DelegatedPrefixes()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, lp := range leases {
			found = found || lp == p
		}
		if !found {
			t.Errorf("Kea's lease file has %v, not %s", leases, p)
		}
		return p
	}
	first := delegate(netlab.PDPoolA)

	pool, err := l.Renumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pool != netlab.PDPoolB || l.PDPool() != netlab.PDPoolB {
		t.Fatalf("Renumber = %s, PDPool = %s; want %s", pool, l.PDPool(), netlab.PDPoolB)
	}
	// The same client (same DUID, it hints its old prefix) now gets a
	// prefix from the new pool.
	second := delegate(netlab.PDPoolB)
	if second == first {
		t.Errorf("same prefix %s after Renumber", first)
	}
	if pool, err := l.Renumber(ctx); err != nil || pool != netlab.PDPoolA {
		t.Fatalf("Renumber back = %s, %v; want %s", pool, err, netlab.PDPoolA)
	}
}

// Kea's DHCPv4 server leases from 192.0.2.100–199 on the WAN link.
func TestKeaLeasesIPv4(t *testing.T) {
	l := LabWithoutGizmo(t)
	ctx := testContext(t, 60*time.Second)
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = l.Exec(ctx, netlab.NSGizmo, "ip", "-4", "addr", "flush", "dev", netlab.GizmoWAN)
		_, _ = l.Exec(ctx, netlab.NSGizmo, "ip", "-4", "route", "flush", "proto", "dhcp")
	})
	out := dhcpcdOnce(ctx, t, l, t.TempDir(), "script /bin/true\nipv4only\nnoarp\nnoipv4ll\nhostname gizmo\n", "-4")
	m := regexp.MustCompile(`leased (\S+) for`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no lease in dhcpcd's output:\n%s", out)
	}
	a := netip.MustParseAddr(m[1])
	if a.Less(netlab.WANPool4First) || netlab.WANPool4Last.Less(a) {
		t.Errorf("leased %s, outside %s–%s", a, netlab.WANPool4First, netlab.WANPool4Last)
	}
	leases, err := l.KeaLeases4()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, le := range leases {
		found = found || le.Prefix.Addr() == a && le.ClientID == netlab.MACGizmoWAN
	}
	if !found {
		t.Errorf("Kea's lease file has %+v, not %s for %s", leases, a, netlab.MACGizmoWAN)
	}
}

// The CLAT in gz-lan-clat follows the RA: with a PREF64 and a SLAAC /64 it
// runs tayga for <prefix>::c1a7; when the prefix is deprecated for a new
// one (RFC 9096), it moves. This test plays the gizmo's RA itself.
func TestCLATFollowsPREF64(t *testing.T) {
	l := LabWithoutGizmo(t)
	ctx := testContext(t, 60*time.Second)
	var c *ndp.Conn
	var mac net.HardwareAddr
	err := netlab.InNamespace(netlab.NSGizmo, func() error {
		ifi, err := net.InterfaceByName(netlab.GizmoLAN)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		c, _, err = ndp.Listen(ifi, ndp.LinkLocal)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pio := func(p string, preferred time.Duration) *ndp.PrefixInformation {
		return &ndp.PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true,
			ValidLifetime: time.Minute, PreferredLifetime: preferred, Prefix: netip.MustParsePrefix(p).Addr()}
	}
	advertise := func(opts ...ndp.Option) {
		ra := &ndp.RouterAdvertisement{CurrentHopLimit: 64,
			Options: append(opts, &ndp.PREF64{Lifetime: time.Minute, Prefix: netlab.Pref64},
				&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac})}
		if err := c.WriteTo(ra, nil, netip.MustParseAddr("ff02::1")); err != nil {
			t.Fatal(err)
		}
	}
	waitCLAT := func(want string, opts ...ndp.Option) {
		t.Helper()
		state := filepath.Join(l.RunDir(), "clat", "clat.json")
		err := netlab.WaitFor(ctx, "the CLAT at "+want, func(context.Context) (bool, error) {
			advertise(opts...)
			b, err := os.ReadFile(state)
			if err != nil {
				return false, nil
			}
			var tr struct {
				Pref64   string `json:"pref64"`
				CLATAddr string `json:"clat_addr"`
			}
			if err := json.Unmarshal(b, &tr); err != nil {
				return false, err
			}
			return tr.CLATAddr == want && tr.Pref64 == netlab.Pref64.String(), nil
		})
		if err != nil {
			b, _ := os.ReadFile(l.LogPath("clat"))
			t.Fatalf("%v; clat log:\n%s", err, b)
		}
	}
	waitCLAT("2001:db8:1000::c1a7", pio("2001:db8:1000::/64", 30*time.Second))
	// tayga answers pings on its own IPv4 address: it is running.
	if _, err := l.WaitExec(ctx, netlab.NSLanCLAT, func(string) bool { return true }, "ping", "-c", "1", "-W", "1", "192.0.0.2"); err != nil {
		t.Error(err)
	}
	out, err := l.Exec(ctx, netlab.NSLanCLAT, "ip", "-6", "route", "get", "2001:db8:1000::c1a7")
	if err != nil || !strings.Contains(string(out), "dev "+netlab.CLATTun) {
		t.Errorf("route to the CLAT address: %v\n%s", err, out)
	}
	waitCLAT("2001:db8:1100::c1a7", pio("2001:db8:1000::/64", 0), pio("2001:db8:1100::/64", 30*time.Second))
	if _, err := l.WaitExec(ctx, netlab.NSLanCLAT, func(string) bool { return true }, "ping", "-c", "1", "-W", "1", "192.0.0.2"); err != nil {
		t.Error(err)
	}
}
