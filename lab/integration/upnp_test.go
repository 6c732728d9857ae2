package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/services/firewall"
	"codeberg.org/monostack/gizmo/web"
)

// hostMAC is gz-lan-v6's MAC address, the key of its policy.
func hostMAC(t *testing.T, l *netlab.Lab) string {
	t.Helper()
	out, err := l.Exec(context.Background(), netlab.NSLanV6, "ip", "-j", "link", "show", "dev", netlab.HostIf)
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip link of %s: %v\n%s", netlab.NSLanV6, err, out)
	}
	return links[0].Address
}

// setAppPinholes switches gz-lan-v6's app pinholes through the
// dashboard's API, as the owner does.
func setAppPinholes(t *testing.T, l *netlab.Lab, mac string, on bool) {
	t.Helper()
	body := fmt.Sprintf(`{"app_pinholes":%t}`, on)
	if _, err := l.DashboardAPI(testContext(t, 10*time.Second), http.MethodPut, "/api/hosts/"+mac+"/policy", body); err != nil {
		t.Fatalf("policy %s: %v", body, err)
	}
}

// waitHostSeenWith makes gz-lan-v6 send from addr and waits until the
// gizmo's host table has the address under mac: a pinhole request from an
// address the gizmo has not seen yet is refused (606) before the host's
// policy is even looked at, since no host owns it.
func waitHostSeenWith(t *testing.T, l *netlab.Lab, mac string, addr netip.Addr) {
	t.Helper()
	ctx := testContext(t, time.Minute)
	err := netlab.WaitFor(ctx, fmt.Sprintf("the gizmo to see %s with %s", mac, addr), func(ctx context.Context) (bool, error) {
		l.Exec(ctx, netlab.NSLanV6, "ping", "-c", "1", "-W", "1", "-I", addr.String(), netlab.V6OnlyServer.String())
		var hosts []web.HostJSON
		if err := apiJSON(ctx, l, "/api/hosts", &hosts); err != nil {
			return false, nil
		}
		return slices.ContainsFunc(hosts, func(h web.HostJSON) bool { return h.MAC == mac && slices.Contains(h.Addrs, addr) }), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// upnpc runs miniupnpc's client in gz-lan-v6: discovery over IPv6 SSDP,
// -i because the gizmo offers no IPv4 WANIPConnection (miniupnpc calls
// only such a gateway "connected"), "@" for the address upnpc reaches the
// gizmo from.
func upnpc(t *testing.T, l *netlab.Lab, args ...string) string {
	t.Helper()
	out, err := l.Exec(testContext(t, 30*time.Second), netlab.NSLanV6, append([]string{"upnpc", "-6", "-i"}, args...)...)
	if err != nil {
		t.Fatalf("upnpc %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// TestUPnPPinholeWithinPolicy: `upnpc -6 -A` from gz-lan-v6 opens a
// pinhole that gz-inet can use, and only while the owner lets apps on the
// host open ports: with app_pinholes off (the default) the request is
// refused (703) and the port stays closed; turning the policy off closes
// an open pinhole.
func TestUPnPPinholeWithinPolicy(t *testing.T) {
	fw := setupLabFirewall(t)
	l := fw.l
	const port = 8095
	listenOn(t, netlab.NSLanV6, port)
	listenOn(t, netlab.NSLanV6, port+1)
	dst := netip.AddrPortFrom(fw.lanHost, port)
	mac := hostMAC(t, l)
	t.Cleanup(func() { setAppPinholes(t, l, mac, false) })

	fw.moves(t, firewall.CounterDropFwdWAN, func() {
		if !dialFails(netlab.NSInet, dst) {
			t.Errorf("gz-inet reached %v before any pinhole", dst)
		}
	})

	waitHostSeenWith(t, l, mac, fw.lanHost)
	add := []string{"-A", "", "0", "@", strconv.Itoa(port), "TCP", "600"}
	out := upnpc(t, l, add...)
	if !strings.Contains(out, "Local LAN ip address : "+fw.lanHost.String()) {
		t.Fatalf("upnpc did not reach the gizmo from %s (its global address):\n%s", fw.lanHost, out)
	}
	if !strings.Contains(out, "failed with code 703") {
		t.Errorf("AddPinhole with app pinholes off: want 703 InboundPinholeNotAllowed:\n%s", out)
	}
	if !dialFails(netlab.NSInet, dst) {
		t.Errorf("gz-inet reached %v after a refused request", dst)
	}

	setAppPinholes(t, l, mac, true)
	if out := upnpc(t, l, "-S"); !strings.Contains(out, "Inbound Pinhole Allowed: Yes") {
		t.Errorf("GetFirewallStatus after the owner allowed app pinholes:\n%s", out)
	}
	out = upnpc(t, l, add...)
	if !strings.Contains(out, "Pinhole ID = ") {
		t.Fatalf("AddPinhole with app pinholes on:\n%s", out)
	}
	ctx := testContext(t, 30*time.Second)
	fw.moves(t, firewall.CounterInboundHost, func() {
		if err := netlab.WaitFor(ctx, "gz-inet reaching "+dst.String(), func(context.Context) (bool, error) {
			return !dialFails(netlab.NSInet, dst), nil
		}); err != nil {
			t.Errorf("through the pinhole: %v", err)
		}
	})
	if other := netip.AddrPortFrom(fw.lanHost, port+1); !dialFails(netlab.NSInet, other) {
		t.Errorf("the pinhole for %d opened %v too", port, other)
	}

	// The dashboard's API lists it.
	body, err := netlab.HTTPGet(testContext(t, 10*time.Second), netlab.NSGizmo, "http://[::1]/api/hosts/"+mac)
	if err != nil {
		t.Fatal(err)
	}
	var h web.HostJSON
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Pinholes) != 1 || h.Pinholes[0].Port != port || h.Pinholes[0].Address != fw.lanHost || h.Pinholes[0].Protocol != "tcp" {
		t.Errorf("/api/hosts/%s pinholes: %+v", mac, h.Pinholes)
	}

	// The owner turns it off: the pinhole closes.
	setAppPinholes(t, l, mac, false)
	if err := netlab.WaitFor(testContext(t, 30*time.Second), "the pinhole closing", func(context.Context) (bool, error) {
		return dialFails(netlab.NSInet, dst), nil
	}); err != nil {
		t.Errorf("after the policy was turned off: %v", err)
	}
}
