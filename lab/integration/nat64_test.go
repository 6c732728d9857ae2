package integration

// NAT64 as the LAN hosts see it (issue 4, "Done when: in the lab"): the
// IPv6-only host reaches the IPv4-only server through DNS64 + the eBPF
// NAT64, the CLAT host through tayga + the NAT64 (464XLAT), ping and
// traceroute work (time exceeded translated, RFC 7915 §4.2), a 100 MB TCP
// download and a UDP exchange go through, and path MTU discovery works
// across a 1400-byte WAN link.

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/services/dns64"
)

func labPref64(t *testing.T, v4 string) netip.Addr {
	t.Helper()
	a, err := dns64.Embed(netlab.Pref64, netip.MustParseAddr(v4))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitNAT64 waits until the IPv6-only host gets an answer from the IPv4-only
// server through the NAT64: the gizmo translates only once it holds a
// DHCPv4 lease on the WAN.
func waitNAT64(t *testing.T, ctx context.Context, l *netlab.Lab, url string) string {
	t.Helper()
	var body string
	if err := netlab.WaitFor(ctx, "NAT64 path to "+url, func(ctx context.Context) (bool, error) {
		c, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		b, err := netlab.HTTPGet(c, netlab.NSLanV6, url)
		body = b
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	return body
}

func TestNAT64(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 4*time.Minute)
	server := labPref64(t, "198.51.100.80")
	url := fmt.Sprintf("http://[%s]/", server)

	t.Run("IPv6-only host fetches v4only through DNS64 and NAT64", func(t *testing.T) {
		rdnss := rdnssAddr(t, ctx, l)
		var aaaa []string
		if err := netlab.WaitFor(ctx, "AAAA for v4only", func(ctx context.Context) (bool, error) {
			a, err := dig(ctx, l, netlab.NSLanV6, rdnss, "v4only.example.test", "AAAA")
			aaaa = a
			return err == nil && len(a) > 0, nil
		}); err != nil {
			t.Fatal(err)
		}
		if aaaa[0] != server.String() {
			t.Fatalf("v4only AAAA %v, want %s", aaaa, server)
		}
		body := waitNAT64(t, ctx, l, url)
		// The server sees the gizmo's WAN lease (the pool) as the client.
		if !strings.Contains(body, "server=198.51.100.80 name=v4only client=192.0.2.") {
			t.Errorf("body %q", body)
		}
	})

	t.Run("CLAT host fetches an IPv4 literal (464XLAT)", func(t *testing.T) {
		waitNAT64(t, ctx, l, url)
		var body string
		if err := netlab.WaitFor(ctx, "CLAT path", func(ctx context.Context) (bool, error) {
			c, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			b, err := netlab.HTTPGet(c, netlab.NSLanCLAT, "http://198.51.100.80/")
			body = b
			return err == nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body, "server=198.51.100.80") || !strings.Contains(body, "client=192.0.2.") {
			t.Errorf("body %q", body)
		}
	})

	t.Run("ping and traceroute", func(t *testing.T) {
		waitNAT64(t, ctx, l, url)
		if out, err := l.Exec(ctx, netlab.NSLanV6, "ping", "-c", "3", "-i", "0.2", "-W", "2", server.String()); err != nil {
			t.Fatalf("ping: %v\n%s", err, out)
		}
		out, err := l.Exec(ctx, netlab.NSLanV6, "traceroute", "-n", "-q", "1", "-w", "2", "-m", "6", server.String())
		if err != nil {
			t.Fatalf("traceroute: %v\n%s", err, out)
		}
		// The ISP router's IPv4 time exceeded, translated (RFC 7915
		// §4.2), shows as its address in the NAT64 prefix.
		isp := labPref64(t, "192.0.2.1").String()
		if !strings.Contains(string(out), isp) || !strings.Contains(string(out), server.String()) {
			t.Errorf("traceroute does not show %s and %s:\n%s", isp, server, out)
		}
	})

	t.Run("100 MB TCP download", func(t *testing.T) {
		waitNAT64(t, ctx, l, url)
		const size = 100 << 20
		out, err := l.Exec(ctx, netlab.NSLanV6, "curl", "-sS", "-g", "-o", "/dev/null", "-w", "%{size_download}",
			fmt.Sprintf("http://[%s]/bytes/%d", server, size))
		if err != nil || strings.TrimSpace(string(out)) != fmt.Sprint(size) {
			t.Errorf("downloaded %q: %v", out, err)
		}
	})

	t.Run("UDP: DNS to the ISP's IPv4 resolver", func(t *testing.T) {
		waitNAT64(t, ctx, l, url)
		a, err := dig(ctx, l, netlab.NSLanV6, labPref64(t, "192.0.2.53"), "v4only.example.test", "A")
		if err != nil || len(a) != 1 || a[0] != "198.51.100.80" {
			t.Errorf("A over NAT64 UDP: %v %v", a, err)
		}
	})

	t.Run("PMTUD across a 1400-byte WAN", func(t *testing.T) {
		waitNAT64(t, ctx, l, url)
		setMTU := func(mtu int) {
			for _, x := range []struct{ ns, dev string }{{netlab.NSGizmo, netlab.GizmoWAN}, {netlab.NSISP, netlab.ISPWAN}} {
				if out, err := l.Exec(ctx, x.ns, "ip", "link", "set", x.dev, "mtu", fmt.Sprint(mtu)); err != nil {
					t.Fatalf("mtu: %v\n%s", err, out)
				}
			}
		}
		setMTU(1400)
		t.Cleanup(func() { setMTU(1500) })
		// The gizmo learns the WAN MTU (netlink) and answers a too-big
		// packet with Packet Too Big 1420; the host then fits.
		if err := netlab.WaitFor(ctx, "path MTU 1420 learned", func(ctx context.Context) (bool, error) {
			l.Exec(ctx, netlab.NSLanV6, "ping", "-c", "1", "-W", "1", "-s", "1452", "-M", "do", server.String())
			out, err := l.Exec(ctx, netlab.NSLanV6, "ip", "-6", "route", "get", server.String())
			return err == nil && strings.Contains(string(out), "mtu 1420"), nil
		}); err != nil {
			t.Fatal(err)
		}
		if out, err := l.Exec(ctx, netlab.NSLanV6, "ping", "-c", "1", "-W", "2", "-s", "1372", "-M", "do", server.String()); err != nil {
			t.Errorf("ping at the path MTU: %v\n%s", err, out)
		}
		out, err := l.Exec(ctx, netlab.NSLanV6, "curl", "-sS", "-g", "-o", "/dev/null", "-w", "%{size_download}",
			fmt.Sprintf("http://[%s]/bytes/%d", server, 4<<20))
		if err != nil || strings.TrimSpace(string(out)) != fmt.Sprint(4<<20) {
			t.Errorf("download over the 1400-byte WAN: %q %v", out, err)
		}
	})
}
