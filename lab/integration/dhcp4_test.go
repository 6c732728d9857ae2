package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// IPv4 as legacy on the LAN (issue 5): gz-lan-legacy's dhcpcd gets a lease
// from the gizmo and reaches the IPv4 internet through NAT44; gz-lan-v6's
// dhcpcd asks for option 108 (RFC 8925), gets it and configures no IPv4;
// turning that host's policy off through the API gives it a lease at its
// next attempt.

var inet4 = regexp.MustCompile(`inet (203\.0\.113\.\d+)/25`)

// hostIPv4 waits until the host's eth0 has a legacy LAN address.
func hostIPv4(t *testing.T, ctx context.Context, l *netlab.Lab, ns string) string {
	t.Helper()
	out, err := l.WaitExec(ctx, ns, func(o string) bool { return inet4.MatchString(o) }, "ip", "-4", "addr", "show", "dev", netlab.HostIf)
	if err != nil {
		t.Fatalf("%s never got a legacy IPv4 address: %v\n%s", ns, err, out)
	}
	return inet4.FindStringSubmatch(out)[1]
}

// dhcpcdLease reads the lease dhcpcd stored (the raw DHCPACK) for a host.
func dhcpcdLease(t *testing.T, l *netlab.Lab, name string) *dhcpv4.DHCPv4 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.RunDir(), name, netlab.HostIf+".lease"))
	if err != nil {
		t.Fatalf("dhcpcd lease of %s: %v", name, err)
	}
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		t.Fatalf("dhcpcd lease of %s: %v", name, err)
	}
	return m
}

// apiHost fetches GET /api/hosts/{mac} from inside gz-gizmo.
func apiHost(t *testing.T, ctx context.Context, mac string) (host struct {
	IPv4Lease          string `json:"ipv4_lease"`
	GotV6OnlyPreferred bool   `json:"got_v6only_preferred"`
	Hostname           string `json:"hostname"`
}) {
	t.Helper()
	body, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/api/hosts/"+mac)
	if err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if err := json.Unmarshal([]byte(body), &host); err != nil {
		t.Fatalf("GET /api/hosts/%s: %v: %s", mac, err, body)
	}
	return host
}

// setV6OnlyPreferred changes a host's policy through the API, with the
// appliance password the daemon generated in its state dir.
func setV6OnlyPreferred(t *testing.T, ctx context.Context, l *netlab.Lab, mac string, on bool) {
	t.Helper()
	if _, err := l.DashboardAPI(ctx, http.MethodPut, "/api/hosts/"+mac+"/policy", fmt.Sprintf(`{"v6only_preferred":%v}`, on)); err != nil {
		t.Fatalf("policy v6only_preferred=%v: %v", on, err)
	}
}

// flap takes the host's link down and up: a new network attachment, after
// which dhcpcd starts DHCPv4 over (RFC 8925 §3.2 ends the V6ONLY_WAIT on
// such an event).
func flap(t *testing.T, ctx context.Context, l *netlab.Lab, ns string) {
	t.Helper()
	for _, state := range []string{"down", "up"} {
		if out, err := l.Exec(ctx, ns, "ip", "link", "set", netlab.HostIf, state); err != nil {
			t.Fatalf("ip link set %s: %v\n%s", state, err, out)
		}
	}
}

func TestDHCP4LegacyHostGetsLease(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 2*time.Minute)
	ip := hostIPv4(t, ctx, l, netlab.NSLanLegacy)

	if out, err := l.WaitExec(ctx, netlab.NSLanLegacy, func(o string) bool { return strings.Contains(o, "via 203.0.113.129") },
		"ip", "-4", "route", "show", "default"); err != nil {
		t.Errorf("no default route via the gizmo: %v\n%s", err, out)
	}
	ack := dhcpcdLease(t, l, "dhcpcd-lan-legacy")
	if dns := ack.DNS(); len(dns) != 1 || dns[0].String() != "203.0.113.129" {
		t.Errorf("DNS (option 6) = %v, want the gizmo's legacy address 203.0.113.129", dns)
	}
	if d := ack.DomainName(); d != "home.arpa" {
		t.Errorf("domain (option 15) = %q, want home.arpa", d)
	}
	if _, ok := ack.IPv6OnlyPreferred(); ok {
		t.Error("option 108 sent to a host that did not ask for it")
	}
	err := netlab.WaitFor(ctx, "the gizmo's API reports the lease", func(ctx context.Context) (bool, error) {
		return apiHost(t, ctx, netlab.MACLanLegacy).IPv4Lease == ip, nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestDHCP4LegacyHostReachesIPv4Internet: with its lease, the legacy host
// fetches from the IPv4-only server through the gizmo's NAT44 (the
// firewall's part of issue 5).
func TestDHCP4LegacyHostReachesIPv4Internet(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, time.Minute)
	hostIPv4(t, ctx, l, netlab.NSLanLegacy)
	url := "http://" + netlab.V4OnlyServer.String() + "/"
	err := netlab.WaitFor(ctx, "GET "+url+" from gz-lan-legacy", func(ctx context.Context) (bool, error) {
		_, err := netlab.HTTPGet(ctx, netlab.NSLanLegacy, url)
		return err == nil, nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestDHCP4V6OnlyHostGetsOption108(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, time.Minute)
	logPath := filepath.Join(l.RunDir(), "dhcpcd-lan-v6", "dhcpcd.log")
	err := netlab.WaitFor(ctx, "dhcpcd on gz-lan-v6 logs option 108", func(context.Context) (bool, error) {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "IPv6-Only Preferred received (1800 seconds)"), nil
	})
	if err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("%v\n%s", err, b)
	}
	if out, _ := l.Exec(ctx, netlab.NSLanV6, "ip", "-4", "addr", "show", "dev", netlab.HostIf); strings.Contains(string(out), "inet ") {
		t.Errorf("gz-lan-v6 configured IPv4 despite option 108:\n%s", out)
	}
	h := apiHost(t, ctx, netlab.MACLanV6)
	if !h.GotV6OnlyPreferred || h.IPv4Lease != "" {
		t.Errorf("API: got_v6only_preferred=%v ipv4_lease=%q, want true and none", h.GotV6OnlyPreferred, h.IPv4Lease)
	}
}

func TestDHCP4PolicyOffGivesLease(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 2*time.Minute)
	// The host is v6-only to begin with (the test above checks it).
	setV6OnlyPreferred(t, ctx, l, netlab.MACLanV6, false)
	t.Cleanup(func() {
		// Back to the default, and back to v6-only for the tests after.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		setV6OnlyPreferred(t, ctx, l, netlab.MACLanV6, true)
		flap(t, ctx, l, netlab.NSLanV6)
		if _, err := l.WaitExec(ctx, netlab.NSLanV6, func(o string) bool { return !strings.Contains(o, "inet ") },
			"ip", "-4", "addr", "show", "dev", netlab.HostIf); err != nil {
			t.Errorf("gz-lan-v6 kept IPv4 after the policy went back on: %v", err)
		}
	})
	// dhcpcd waits at least MIN_V6ONLY_WAIT (300 s, RFC 8925 §3.2) after
	// option 108 whatever the server sends, so the next attempt is the next
	// network attachment.
	flap(t, ctx, l, netlab.NSLanV6)
	ip := hostIPv4(t, ctx, l, netlab.NSLanV6)
	err := netlab.WaitFor(ctx, "the API reports the new lease", func(ctx context.Context) (bool, error) {
		h := apiHost(t, ctx, netlab.MACLanV6)
		return h.IPv4Lease == ip && !h.GotV6OnlyPreferred, nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestDHCP4RestartKeepsLeases(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 2*time.Minute)
	ip := hostIPv4(t, ctx, l, netlab.NSLanLegacy)
	if err := l.GizmoRestart(ctx); err != nil {
		t.Fatal(err)
	}
	err := netlab.WaitFor(ctx, "the restarted gizmo still knows the legacy host's lease", func(ctx context.Context) (bool, error) {
		body, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/api/hosts/"+netlab.MACLanLegacy)
		return err == nil && strings.Contains(body, `"ipv4_lease":"`+ip+`"`), nil
	})
	if err != nil {
		t.Error(err)
	}
	// The host renews or rebinds the same address: flap it for an
	// INIT-REBOOT right now, which the server must ACK, not NAK.
	flap(t, ctx, l, netlab.NSLanLegacy)
	if got := hostIPv4(t, ctx, l, netlab.NSLanLegacy); got != ip {
		t.Errorf("after the restart the host has %s, had %s", got, ip)
	}
}
