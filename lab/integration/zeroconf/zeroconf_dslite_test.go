package zeroconf

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/iperf"
	"codeberg.org/monostack/gizmo/lab/netlab"
)

// RFC 6333 + RFC 6334, a DS-Lite line: the ISP gives IPv6 and a prefix, no
// IPv4 on the WAN, and names its AFTR in DHCPv6 (Kea's option 64,
// aftr.example.test in the lab's BIND). The gizmo resolves the AFTR, runs
// its B4 (services/dslite), and the IPv4 internet is reachable again: from
// gz-lan-v6 by name through DNS64 and the NAT64 (pool 192.0.0.2), and from
// gz-lan-legacy by address through the NAT44, both encapsulated to the
// AFTR in gz-isp, which decapsulates them and masquerades them to its own
// address towards gz-inet. The dashboard names the line.
func TestDSLite(t *testing.T) {
	l := upScenario(t, "ds-lite")
	ctx := testContext(t, 3*time.Minute)

	type dsliteStatus struct {
		status
		Line   string `json:"line"`
		DSLite *struct {
			AFTRName string `json:"aftr_name"`
			AFTR     string `json:"aftr"`
		} `json:"dslite"`
	}
	st := waitStatusAs(t, ctx, "the DS-Lite line", func(s dsliteStatus) bool {
		return s.Line == "ds-lite" && s.DSLite != nil && s.Delegated != nil
	})
	if st.DSLite.AFTRName != netlab.AFTRName || st.DSLite.AFTR != netlab.AFTR6.String() {
		t.Errorf("AFTR %q at %s, want %s at %s", st.DSLite.AFTRName, st.DSLite.AFTR, netlab.AFTRName, netlab.AFTR6)
	}
	if st.WAN.IPv4 != "" {
		t.Errorf("a WAN IPv4 address %s on a DS-Lite line", st.WAN.IPv4)
	}

	t.Run("the dashboard names the line", func(t *testing.T) {
		body, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/")
		if err != nil {
			t.Fatal(err)
		}
		if want := "DS-Lite (AFTR " + netlab.AFTRName + ")"; !strings.Contains(body, want) {
			t.Errorf("the overview does not say %q", want)
		}
	})

	t.Run("gz-lan-v6 reaches the IPv4 internet by name through DNS64, the NAT64 and the softwire", func(t *testing.T) {
		// The NAT64 hands its IPv4 to uplink0 with bpf_redirect; that
		// the B4 on uplink0's egress sees it shows in its counter.
		before := encapsulated(t, ctx)
		body, err := fetchByName(ctx, l, netlab.NSLanV6, rdnss(t, st.status), "v4only.example.test")
		if err != nil {
			t.Fatal(err)
		}
		if after := encapsulated(t, ctx); after < before+3 {
			t.Errorf("the softwire encapsulated %d packets during the fetch, want at least 3 (SYN, ACK, request)", after-before)
		}
		// The AFTR's NAT44 is the source gz-inet sees.
		if !strings.Contains(body, "server="+netlab.V4OnlyServer.String()) || !strings.Contains(body, "client="+netlab.ISPInet4.String()) {
			t.Errorf("v4only answered %q; want server=%s, client=%s (the AFTR's address)", body, netlab.V4OnlyServer, netlab.ISPInet4)
		}
	})

	t.Run("gz-lan-legacy reaches the IPv4 internet by address through the NAT44 and the softwire", func(t *testing.T) {
		body, err := fetchV4Only(ctx, l, netlab.NSLanLegacy)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body, "client="+netlab.ISPInet4.String()) {
			t.Errorf("v4only answered %q; want client=%s (the AFTR's address)", body, netlab.ISPInet4)
		}
	})

	t.Run("a 2 MB download fits the softwire (MSS clamp)", func(t *testing.T) {
		out, err := l.Exec(ctx, netlab.NSLanLegacy, "curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{size_download}",
			"http://"+netlab.V4OnlyServer.String()+"/bytes/2000000")
		if err != nil {
			t.Fatalf("%v %s", err, out)
		}
		if strings.TrimSpace(string(out)) != "2000000" {
			t.Errorf("downloaded %s bytes, want 2000000", out)
		}
	})

	t.Run("/metrics counts the softwire", func(t *testing.T) {
		body, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"gizmo_dslite_running 1", `gizmo_dslite_packets_total{counter="encapsulated"}`, `gizmo_dslite_packets_total{counter="mss_clamped"}`} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

// encapsulated is the B4's count of packets sent into the softwire, from
// the gizmo's /metrics.
func encapsulated(t *testing.T, ctx context.Context) uint64 {
	t.Helper()
	body, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/metrics")
	if err != nil {
		t.Fatal(err)
	}
	const name = `gizmo_dslite_packets_total{counter="encapsulated"} `
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return uint64(n)
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// BenchmarkDSLiteTCP measures TCP throughput (iperf3, one stream, 3 s, as
// the NAT64's bench) from gz-lan-v6 in the ds-lite lab along the B4's path
// against plain IPv6 forwarding, alternating within each of b.N rounds:
//
//	ipv6    to 2001:db8:ffff::10 natively: the gizmo forwards (firewall,
//	        fast path), gz-isp routes
//	dslite  to 198.51.100.80 by its NAT64 address: the gizmo's NAT64 to
//	        192.0.0.2, its B4 into the softwire, the lab's AFTR out of it
//	        and nftables' masquerade in gz-isp
//
// The median of the per-round ratios is reported. Run as root:
//
//	go test -run '^$' -bench DSLiteTCP -benchtime 5x ./lab/integration/zeroconf
func BenchmarkDSLiteTCP(b *testing.B) {
	l := upScenario(b, "ds-lite")
	ctx := testContext(b, 5*time.Minute)
	err := netlab.WaitFor(ctx, "the DS-Lite line", func(ctx context.Context) (bool, error) {
		var s struct {
			Line string `json:"line"`
		}
		return apiJSON(ctx, "/api/status", &s) == nil && s.Line == "ds-lite", nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := netlab.WaitDefaultRoute6(ctx, netlab.NSLanV6, netlab.HostIf); err != nil {
		b.Fatalf("gz-lan-v6 has no default route: %v", err)
	}
	nat64Addr := synthesized(b, netlab.Pref64, netlab.V4OnlyServer)
	for _, a := range []string{netlab.DualServer6.String(), netlab.V4OnlyServer.String()} {
		srv := exec.Command("ip", "netns", "exec", netlab.NSInet, "iperf3", "-s", "-B", a)
		if err := srv.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	}
	var g6, gd, ratios []float64
	for b.Loop() {
		a, err := iperfTCP(ctx, l, netlab.DualServer6.String())
		if err != nil {
			b.Fatal(err)
		}
		d, err := iperfTCP(ctx, l, nat64Addr.String())
		if err != nil {
			b.Fatal(err)
		}
		g6, gd, ratios = append(g6, a), append(gd, d), append(ratios, d/a)
	}
	med := func(v []float64) float64 { s := slices.Sorted(slices.Values(v)); return s[len(s)/2] }
	b.ReportMetric(med(g6), "ipv6-Gbit/s")
	b.ReportMetric(med(gd), "dslite-Gbit/s")
	b.ReportMetric(med(ratios), "dslite/ipv6")
}

// iperfTCP is one TCP run of 3 s from gz-lan-v6 to dst, in Gbit/s. The
// server may not listen yet, the host's route not be there yet: iperf3 -J
// says so in its report, and the run is tried again.
func iperfTCP(ctx context.Context, l *netlab.Lab, dst string) (float64, error) {
	r, err := iperf.Retry(20, 500*time.Millisecond, func() ([]byte, error) {
		return l.Exec(ctx, netlab.NSLanV6, "iperf3", "-c", dst, "-t", "3", "-J")
	})
	if err != nil {
		return 0, fmt.Errorf("iperf3 to %s: %w", dst, err)
	}
	return r.Gbps(), nil
}
