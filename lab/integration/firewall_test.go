package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/services/firewall"
)

// labFirewall reads the daemon's ruleset in gz-gizmo: its counters, and
// the LAN host's address to aim at.
type labFirewall struct {
	l       *netlab.Lab
	svc     *firewall.Service // only reads counters; the daemon owns the table
	lanHost netip.Addr        // gz-lan-v6's SLAAC address in the LAN /64
}

func setupLabFirewall(t *testing.T) *labFirewall {
	t.Helper()
	l := LabWithGizmo(t)
	ctx := testContext(t, 90*time.Second)
	lan := lanPrefix(t, ctx, l, netlab.PDAggregate)
	host := waitHostAddr(t, ctx, lan)
	err := netlab.WaitFor(ctx, "the daemon's table inet gizmo", func(ctx context.Context) (bool, error) {
		_, err := l.Exec(ctx, netlab.NSGizmo, "nft", "list", "table", "inet", firewall.TableName)
		return err == nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := os.Open("/run/netns/" + netlab.NSGizmo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	svc, err := firewall.New(firewall.Config{NetNS: int(ns.Fd())})
	if err != nil {
		t.Fatal(err)
	}
	return &labFirewall{l: l, svc: svc, lanHost: host}
}

func (fw *labFirewall) counter(t *testing.T, name string) uint64 {
	t.Helper()
	c, err := fw.svc.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c[name].Packets
}

// moves fails the test unless fn makes the named counter grow.
func (fw *labFirewall) moves(t *testing.T, name string, fn func()) {
	t.Helper()
	before := fw.counter(t, name)
	fn()
	if after := fw.counter(t, name); after <= before {
		t.Errorf("counter %s did not move (%d → %d)", name, before, after)
	}
}

// putRules replaces the inbound rules through the daemon's API, with the
// appliance password from its state dir, and returns the rules it had.
func putRules(t *testing.T, l *netlab.Lab, body string) string {
	t.Helper()
	ctx := testContext(t, 10*time.Second)
	old, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/api/firewall/rules")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.DashboardAPI(ctx, http.MethodPut, "/api/firewall/rules", body); err != nil {
		t.Fatalf("rules %s: %v", body, err)
	}
	return old
}

// dialFails is true when a TCP connection from ns to addr does not come
// up; a dropped SYN shows as the timeout, and the callers check the drop
// counter as well.
func dialFails(ns string, addr netip.AddrPort) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := netlab.DialContext(ctx, ns, "tcp", addr.String())
	if err == nil {
		c.Close()
	}
	return err != nil
}

// listenOn accepts TCP connections on port in ns, and closes them at once,
// until the test ends.
func listenOn(t *testing.T, ns string, port int) {
	t.Helper()
	serveOn(t, ns, port, func(c net.Conn) { c.Close() })
}

// serveOn accepts TCP connections on port in ns until the test ends and
// hands each to serve on a goroutine of its own; serve closes it.
func serveOn(t *testing.T, ns string, port int, serve func(net.Conn)) {
	t.Helper()
	testns.ServeTCP(t, ns, "tcp", fmt.Sprintf("[::]:%d", port), serve)
}

// addAddr gives gz-lan-v6 an extra address (removed at the end), as
// `ip token set ::80` would in every prefix it learns.
func addAddr(t *testing.T, l *netlab.Lab, a netip.Addr, bits int) {
	t.Helper()
	p := netip.PrefixFrom(a, bits).String()
	if out, err := l.Exec(context.Background(), netlab.NSLanV6, "ip", "addr", "add", p, "dev", netlab.HostIf, "nodad"); err != nil {
		t.Fatalf("ip addr add %s: %v\n%s", p, err, out)
	}
	t.Cleanup(func() {
		_, _ = l.Exec(context.Background(), netlab.NSLanV6, "ip", "addr", "del", p, "dev", netlab.HostIf)
	})
}

// Issue 6, done when: from gz-inet, inbound traffic to a LAN host is
// dropped by default; it is allowed after adding a token rule (tcp to ::80
// on a host that uses that token), and still allowed after the ISP
// renumbers.
func TestFirewallInboundDefaultDenyTokenRuleRenumbering(t *testing.T) {
	fw := setupLabFirewall(t)
	l := fw.l
	listenOn(t, netlab.NSLanV6, 8081)
	plain := netip.AddrPortFrom(fw.lanHost, 8081)
	fw.moves(t, firewall.CounterDropFwdWAN, func() {
		if !dialFails(netlab.NSInet, plain) {
			t.Errorf("gz-inet reached %v without a rule", plain)
		}
	})
	// Outbound works, and its replies come back in.
	if _, err := netlab.HTTPGet(testContext(t, 10*time.Second), netlab.NSLanV6, "http://["+netlab.V6OnlyServer.String()+"]/"); err != nil {
		t.Errorf("gz-lan-v6 → the IPv6-only server: %v", err)
	}

	old := putRules(t, l, `[{"name":"lab web","token":"::80","ports":["tcp/8081"]}]`)
	t.Cleanup(func() { putRules(t, l, old) })
	tok := state.WithIID(netip.PrefixFrom(fw.lanHost, 64), 0x80)
	addAddr(t, l, tok, 64)
	reach := func(a netip.Addr) {
		t.Helper()
		ctx := testContext(t, 30*time.Second)
		dst := netip.AddrPortFrom(a, 8081)
		fw.moves(t, firewall.CounterInboundToken, func() {
			err := netlab.WaitFor(ctx, "gz-inet reaching "+dst.String(), func(context.Context) (bool, error) {
				return !dialFails(netlab.NSInet, dst), nil
			})
			if err != nil {
				t.Errorf("with the token rule: %v", err)
			}
		})
	}
	reach(tok)
	if !dialFails(netlab.NSInet, plain) {
		t.Errorf("the token rule opened %v too", plain)
	}

	// The ISP renumbers; the rule names no prefix and follows.
	ctx := testContext(t, 3*time.Minute)
	pool, err := l.Renumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lan := lanPrefix(t, ctx, l, pool)
	waitHostAddr(t, ctx, lan)
	newTok := state.WithIID(lan, 0x80)
	addAddr(t, l, newTok, 64)
	reach(newTok)
}

// Issue 6, done when: the dashboard's and gokrazy's ports cannot be
// reached from gz-inet or gz-isp.
func TestFirewallManagementNotOnWAN(t *testing.T) {
	fw := setupLabFirewall(t)
	addrs, err := netlab.Addrs(context.Background(), netlab.NSGizmo, netlab.GizmoWAN)
	if err != nil {
		t.Fatal(err)
	}
	var targets []netip.Addr
	for _, a := range addrs {
		if a.Prefix.Addr().IsGlobalUnicast() {
			targets = append(targets, a.Prefix.Addr())
		}
	}
	if len(targets) == 0 {
		t.Fatal("the gizmo has no global address on uplink0")
	}
	for _, ns := range []string{netlab.NSISP, netlab.NSInet} {
		for _, a := range targets {
			for _, port := range []uint16{80, 8080} {
				dst := netip.AddrPortFrom(a, port)
				fw.moves(t, firewall.CounterDropMgmtWAN, func() {
					if !dialFails(ns, dst) {
						t.Errorf("%s reached the management port %v", ns, dst)
					}
				})
			}
		}
	}
}

// Issue 6, done when: spoofed sources are dropped and counted (BCP 38 on
// the LAN side).
func TestFirewallSpoofedLANSourceDropped(t *testing.T) {
	fw := setupLabFirewall(t)
	bogus := netip.MustParseAddr("2001:db8:9999::5")
	addAddr(t, fw.l, bogus, 128)
	fw.moves(t, firewall.CounterDropSpoofLAN, func() {
		sendUDPFrom(t, bogus, 9, "spoofed")
	})
}

// sendUDPFrom sends one datagram from gz-lan-v6, from its address src, to
// the IPv6-only server's port.
func sendUDPFrom(t *testing.T, src netip.Addr, port int, payload string) {
	t.Helper()
	err := netlab.InNamespace(netlab.NSLanV6, func() error {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: src.AsSlice()}, &net.UDPAddr{IP: netlab.V6OnlyServer.AsSlice(), Port: port})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(payload))
		return err
	})
	if err != nil {
		t.Fatalf("UDP from %s to port %d: %v", src, port, err)
	}
}

// ulaOf is the gizmo's ULA /48, from the ULA address on its lan0.
// (dns64_test.go uses it too.)
func ulaOf(t *testing.T, l *netlab.Lab) netip.Prefix {
	t.Helper()
	addrs, err := netlab.Addrs(context.Background(), netlab.NSGizmo, netlab.GizmoLAN)
	if err != nil {
		t.Fatalf("ip addr in %s: %v", netlab.NSGizmo, err)
	}
	ula := netip.MustParsePrefix("fc00::/7")
	for _, a := range addrs {
		if ula.Contains(a.Prefix.Addr()) {
			return netip.PrefixFrom(a.Prefix.Addr(), 48).Masked()
		}
	}
	return netip.Prefix{}
}
