package integration

// The mixed LAN as its hosts see it: the IPv6-only host (gz-lan-v6) finds
// the LAN's IPv4-only device (gz-lan-legacy) by its name, gets an AAAA
// under the lab's network-specific PREF64 with the device's lease embedded
// (RFC 6052 §2.2, RFC 6147 §5.1.7), and fetches from the device's web
// server through the NAT64's LAN pool: the device sees the gizmo's LAN
// address as the client. The bytes count as LAN legacy for the IPv6-only
// host. With the device's "reachable from IPv6-only hosts" switched off,
// the name has no AAAA and the NAT64 refuses the device, counted.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// lanLegacyName is gz-lan-legacy's name in the gizmo's DNS.
const lanLegacyName = netlab.LanLegacyHost + ".home.arpa"

// lookupAAAA resolves name as gz-lan-v6 does, through the gizmo's resolver.
func lookupAAAA(ctx context.Context, rdnss netip.Addr, name string) ([]netip.Addr, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return netlab.DialContext(ctx, netlab.NSLanV6, network, netip.AddrPortFrom(rdnss, 53).String())
	}}
	return r.LookupNetIP(ctx, "ip6", name)
}

// fetchByName resolves name through the gizmo and fetches / from gz-lan-v6
// at the first address.
func fetchByName(ctx context.Context, rdnss netip.Addr, name string) (string, error) {
	addrs, err := lookupAAAA(ctx, rdnss, name)
	if err != nil {
		return "", err
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("%s: no AAAA", name)
	}
	return netlab.HTTPGet(ctx, netlab.NSLanV6, fmt.Sprintf("http://[%s]/", addrs[0]))
}

// setLANReachable switches gz-lan-legacy's "reachable from IPv6-only hosts"
// through the API.
func setLANReachable(t *testing.T, ctx context.Context, l *netlab.Lab, on bool) {
	t.Helper()
	if _, err := l.DashboardAPI(ctx, http.MethodPut, "/api/hosts/"+netlab.MACLanLegacy+"/policy", fmt.Sprintf(`{"lan_reachable":%v}`, on)); err != nil {
		t.Fatalf("policy lan_reachable=%v: %v", on, err)
	}
}

// metricValue is the value of one /metrics line that starts with prefix
// (a name with its labels); -1 when there is none.
func metricValue(t *testing.T, ctx context.Context, l *netlab.Lab, prefix string) float64 {
	t.Helper()
	b, err := l.DashboardAPI(ctx, http.MethodGet, "/metrics", "")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix) + ` (\S+)$`)
	m := re.FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("%s: %v", prefix, err)
	}
	return v
}

func TestLANLegacyReachableFromIPv6Only(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 3*time.Minute)
	rdnss := rdnssAddr(t, ctx, l)
	legacy := hostIPv4(t, ctx, l, netlab.NSLanLegacy)
	aaaa := labPref64(t, legacy).String()
	t.Cleanup(func() { setLANReachable(t, context.Background(), l, true) })

	t.Run("RFC 6147 5.1.7: the device's name gets an AAAA under the PREF64 beside its A record", func(t *testing.T) {
		waitAnswer(t, ctx, l, rdnss, lanLegacyName, "AAAA", []string{aaaa})
		waitAnswer(t, ctx, l, rdnss, lanLegacyName, "A", []string{legacy})
	})

	t.Run("the IPv6-only host fetches from the device by name; the device sees the gizmo's LAN address", func(t *testing.T) {
		var body string
		var lastErr error
		if err := netlab.WaitFor(ctx, "HTTP from "+netlab.NSLanV6+" to "+lanLegacyName, func(ctx context.Context) (bool, error) {
			c, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			body, lastErr = fetchByName(c, rdnss, lanLegacyName)
			return lastErr == nil, nil
		}); err != nil {
			t.Fatalf("%v (last error %v)", err, lastErr)
		}
		want := fmt.Sprintf("name=%s client=%s\n", netlab.LanLegacyHost, netlab.GizmoLANIPv4.Addr())
		if !strings.HasSuffix(body, want) {
			t.Errorf("body %q, want it to end in %q", body, want)
		}
		metric := fmt.Sprintf(`gizmo_host_traffic_bytes_total{category="lan_legacy",mac=%q}`, netlab.MACLanV6)
		if err := netlab.WaitFor(ctx, metric, func(ctx context.Context) (bool, error) {
			return metricValue(t, ctx, l, metric) > 0, nil
		}); err != nil {
			t.Errorf("the fetch is not counted as LAN legacy: %v", err)
		}
	})

	t.Run("switched off, the name has no AAAA and the NAT64 refuses the device, counted", func(t *testing.T) {
		refused := `gizmo_nat64_dropped_packets_total{reason="lan_legacy_refused"}`
		before := max(metricValue(t, ctx, l, refused), 0)
		setLANReachable(t, ctx, l, false)
		waitAnswer(t, ctx, l, rdnss, lanLegacyName, "AAAA", nil)
		waitAnswer(t, ctx, l, rdnss, lanLegacyName, "A", []string{legacy})
		url := fmt.Sprintf("http://[%s]/", aaaa)
		if err := netlab.WaitFor(ctx, "the NAT64 refusing "+legacy, func(ctx context.Context) (bool, error) {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := netlab.HTTPGet(c, netlab.NSLanV6, url)
			return err != nil && metricValue(t, ctx, l, refused) > before, nil
		}); err != nil {
			t.Errorf("the device is still reachable, or its refusal is not counted: %v", err)
		}

		setLANReachable(t, ctx, l, true)
		waitAnswer(t, ctx, l, rdnss, lanLegacyName, "AAAA", []string{aaaa})
	})
}
