package zeroconf

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/lab/netlab/netlabtest"
)

// A DAD flood against the ND proxy of the shared-64 deployment (RFC 7278
// §4.3): gz-lan-v6 probes 3000 random addresses of the shared /64 for
// duplicates, which nobody will ever answer for. The proxy installs each
// claim briefly and keeps only those whose host answers its own Neighbor
// Solicitation (RFC 4389 §4.1: the proxy learns which side holds an
// address): the table stays bounded, the unproven claims expire and are
// counted, and the honest host stays reachable from the ISP throughout.
func TestSharedWAN64DADFlood(t *testing.T) {
	l := upScenario(t, "no-pd")
	ctx := testContext(t, 5*time.Minute)
	waitDeployment(t, ctx, l, "shared-64")
	shared, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, netlab.WANPrefix6)
	if err != nil {
		t.Fatalf("gz-lan-v6 has no address in the shared %s: %v", netlab.WANPrefix6, err)
	}
	reach := func(what string) {
		t.Helper()
		if _, err := l.WaitExec(ctx, netlab.NSISP, func(string) bool { return true },
			"ping", "-6", "-c", "1", "-W", "1", shared.String()); err != nil {
			t.Errorf("%s: gz-isp cannot reach the LAN host's %s: %v", what, shared, err)
		}
	}
	// The honest host speaks first and is proven before the flood.
	if _, err := netlab.HTTPGet(ctx, netlab.NSLanV6, "http://["+netlab.V6OnlyServer.String()+"]/"); err != nil {
		t.Fatalf("gz-lan-v6 fetching the IPv6-only server: %v", err)
	}
	reach("before the flood")

	const flood = 3000
	out, err := l.Exec(ctx, netlab.NSLanV6, filepath.Join(l.RunDir(), "lab"), "dad-flood",
		"-prefix", netlab.WANPrefix6.String(), "-count", fmt.Sprint(flood))
	if err != nil {
		t.Fatalf("dad-flood: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	peak := netlabtest.Metric(t, ctx, "gizmo_ndproxy_proxied_addresses")
	t.Logf("proxied right after the flood: %v; DAD probes seen %v", peak, netlabtest.Metric(t, ctx, "gizmo_ndproxy_dad_seen_total"))
	if peak > 1024 {
		t.Errorf("%v addresses proxied after %d DAD probes: the table is 1024", peak, flood)
	}
	reach("during the flood")

	// Unproven claims expire: the proxy is back to the honest host.
	var proxied float64
	if err := netlab.WaitFor(ctx, "the unproven claims to expire", func(ctx context.Context) (bool, error) {
		proxied = netlabtest.Metric(t, ctx, "gizmo_ndproxy_proxied_addresses")
		return proxied <= 4, nil
	}); err != nil {
		t.Errorf("%v; still %v addresses proxied", err, proxied)
	}
	expired := netlabtest.Metric(t, ctx, "gizmo_ndproxy_unproven_expired_total") + netlabtest.Metric(t, ctx, "gizmo_ndproxy_unproven_evicted_total")
	dropped := netlabtest.Metric(t, ctx, "gizmo_ndproxy_dropped_total")
	t.Logf("unproven claims expired or evicted: %v; dropped (no room, no time): %v; DAD probes seen %v", expired, dropped, netlabtest.Metric(t, ctx, "gizmo_ndproxy_dad_seen_total"))
	if expired == 0 || expired+dropped < flood/2 {
		t.Errorf("of %d DAD probes only %v were counted as unproven claims withdrawn and %v as dropped", flood, expired, dropped)
	}
	// Every address the proxy learned went one of the counted ways, but
	// the honest host's.
	if learned := netlabtest.Metric(t, ctx, "gizmo_ndproxy_learned_total"); learned-expired > 4 {
		t.Errorf("learned %v addresses, %v withdrawn unproven: claims went uncounted", learned, expired)
	}
	reach("after the flood")
	if out, err := l.Exec(ctx, netlab.NSGizmo, "ip", "-6", "neigh", "show", "proxy"); err == nil && strings.Count(string(out), "\n") > 8 {
		t.Errorf("the gizmo still has %d proxy entries:\n%s", strings.Count(string(out), "\n"), out)
	}
}
