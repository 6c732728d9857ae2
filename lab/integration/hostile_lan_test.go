package integration

// The LAN against a device on it that lies: thousands of Router
// Solicitations from random MACs, link-layer options that name another
// host's MAC, a forged DHCPRELEASE and DHCPDECLINE for another host's
// lease, and a DHCPDISCOVER flood. The attackers are the lab binary's
// rs-flood, nd-spoof, dhcp-forge and dhcp-flood (lab/hostile_lan.go), run
// in a LAN namespace. Every bound must hold and be counted on /metrics,
// and the honest hosts must not notice.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/lab/netlab/netlabtest"
)

// hostTable is the host table's part of GET /api/status.
type hostTable struct {
	Hosts    int  `json:"hosts"`
	Capacity int  `json:"capacity"`
	Full     bool `json:"full"`
	Evicted  int  `json:"evicted"`
	Refused  int  `json:"refused"`
}

func hostTableOf(t *testing.T, ctx context.Context, l *netlab.Lab) hostTable {
	t.Helper()
	var st struct {
		HostTable hostTable `json:"host_table"`
	}
	if err := apiJSON(ctx, l, "/api/status", &st); err != nil {
		t.Fatalf("/api/status: %v", err)
	}
	return st.HostTable
}

// apiHostAddrs are the addresses GET /api/hosts/{mac} lists; none for a
// host the gizmo does not know (404).
func apiHostAddrs(t *testing.T, ctx context.Context, mac string) []netip.Addr {
	t.Helper()
	var h struct {
		Addrs []netip.Addr `json:"addrs"`
	}
	body, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/api/hosts/"+mac)
	if err != nil && strings.Contains(err.Error(), "404") {
		return nil
	}
	if err == nil {
		err = json.Unmarshal([]byte(body), &h)
	}
	if err != nil {
		t.Fatalf("/api/hosts/%s: %v", mac, err)
	}
	return h.Addrs
}

var globalLAN = regexp.MustCompile(`inet6 (2001:db8:1[0-9a-f:]+)/64 scope global`)

func TestHostileLAN(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 10*time.Minute)
	helper := filepath.Join(l.RunDir(), "lab")
	server := rdnssAddr(t, ctx, l)
	legacyIP := hostIPv4(t, ctx, l, netlab.NSLanLegacy)
	// The honest hosts are known before the attacks start: gz-lan-v6's
	// name resolves to its address in the delegated /64.
	out, err := l.WaitExec(ctx, netlab.NSLanV6, func(o string) bool { return globalLAN.MatchString(o) }, "ip", "-6", "addr", "show", "dev", netlab.HostIf)
	if err != nil {
		t.Fatalf("gz-lan-v6 has no address in the delegated /64: %v\n%s", err, out)
	}
	victimAddr := netip.MustParseAddr(globalLAN.FindStringSubmatch(out)[1])
	if _, err := l.Exec(ctx, netlab.NSLanV6, "ping", "-6", "-c", "1", "-W", "2", netlab.V6OnlyServer.String()); err != nil {
		t.Logf("gz-lan-v6 ping to the internet: %v", err)
	}
	if err := netlab.WaitFor(ctx, "lan-v6.home.arpa to carry "+victimAddr.String(), func(ctx context.Context) (bool, error) {
		got, err := dig(ctx, l, netlab.NSLanV6, server, "lan-v6.home.arpa", "AAAA")
		return err == nil && slices.Contains(got, victimAddr.String()), nil
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("an RS and an NA naming gz-lan-v6's MAC from gz-lan-clat attach nothing to gz-lan-v6", func(t *testing.T) {
		bogus := netip.PrefixFrom(victimAddr, 64).Masked().Addr().As16()
		copy(bogus[8:], []byte{0, 0, 0, 0, 0, 0, 0x0b, 0xad})
		attackerAddr := netip.AddrFrom16(bogus)
		before := netlabtest.Metric(t, ctx, `gizmo_neighbors_ignored_frames_total{reason="lladdr_mismatch"}`)
		out, err := l.Exec(ctx, netlab.NSLanCLAT, helper, "nd-spoof", "-victim", netlab.MACLanV6, "-addr", attackerAddr.String())
		if err != nil {
			t.Fatalf("nd-spoof: %v\n%s", err, out)
		}
		t.Logf("%s", out)
		// The kernel's neighbour table believes the RS's option: the
		// attack is real.
		if out, err := l.WaitExec(ctx, netlab.NSGizmo, func(o string) bool { return strings.Contains(o, netlab.MACLanV6) },
			"ip", "-6", "neigh", "show", attackerAddr.String(), "dev", netlab.GizmoLAN); err != nil {
			t.Logf("the gizmo's neighbour table did not take the option (%v): %s", err, out)
		}
		if err := netlab.WaitFor(ctx, "the mismatches counted", func(ctx context.Context) (bool, error) {
			return netlabtest.Metric(t, ctx, `gizmo_neighbors_ignored_frames_total{reason="lladdr_mismatch"}`) >= before+2, nil
		}); err != nil {
			t.Error(err)
		}
		time.Sleep(3 * time.Second) // a replan, and another neighbour event or two
		if got, err := dig(ctx, l, netlab.NSLanV6, server, "lan-v6.home.arpa", "AAAA"); err != nil || slices.Contains(got, attackerAddr.String()) {
			t.Errorf("lan-v6.home.arpa AAAA = %v (%v): carries the attacker's %s", got, err, attackerAddr)
		}
		for _, mac := range []string{netlab.MACLanV6, netlab.MACLanCLAT} {
			if slices.Contains(apiHostAddrs(t, ctx, mac), attackerAddr) {
				t.Errorf("/api/hosts/%s lists %s", mac, attackerAddr)
			}
		}
	})

	t.Run("a forged DHCPRELEASE and DHCPDECLINE for gz-lan-legacy's lease from gz-lan-v6 end nothing", func(t *testing.T) {
		before := netlabtest.Metric(t, ctx, "gizmo_dhcp4_source_mismatch_total")
		releases := netlabtest.Metric(t, ctx, "gizmo_dhcp4_releases_total") + netlabtest.Metric(t, ctx, "gizmo_dhcp4_declines_total")
		for _, typ := range []string{"release", "decline"} {
			out, err := l.Exec(ctx, netlab.NSLanV6, helper, "dhcp-forge", "-type", typ, "-chaddr", netlab.MACLanLegacy, "-ip", legacyIP)
			if err != nil {
				t.Fatalf("dhcp-forge %s: %v\n%s", typ, err, out)
			}
			t.Logf("%s", out)
		}
		if err := netlab.WaitFor(ctx, "the forgeries counted", func(ctx context.Context) (bool, error) {
			return netlabtest.Metric(t, ctx, "gizmo_dhcp4_source_mismatch_total") >= before+2, nil
		}); err != nil {
			t.Error(err)
		}
		if got := netlabtest.Metric(t, ctx, "gizmo_dhcp4_releases_total") + netlabtest.Metric(t, ctx, "gizmo_dhcp4_declines_total"); got != releases {
			t.Errorf("the server acted on the forgeries: releases+declines %v → %v", releases, got)
		}
		if h := apiHost(t, ctx, netlab.MACLanLegacy); h.IPv4Lease != legacyIP {
			t.Errorf("gz-lan-legacy's lease is %q after the forgeries, want %s", h.IPv4Lease, legacyIP)
		}
	})

	t.Run("a DHCPDISCOVER flood from one port is limited and counted; a normal host still gets a lease", func(t *testing.T) {
		limited := netlabtest.Metric(t, ctx, "gizmo_dhcp4_rate_limited_total") + netlabtest.Metric(t, ctx, "gizmo_dhcp4_socket_drops_total")
		offers := netlabtest.Metric(t, ctx, "gizmo_dhcp4_offers_total")
		const own, random = 500, 2000
		out, err := l.Exec(ctx, netlab.NSLanV6, helper, "dhcp-flood", "-count", fmt.Sprint(own), "-random", fmt.Sprint(random))
		if err != nil {
			t.Fatalf("dhcp-flood: %v\n%s", err, out)
		}
		t.Logf("%s", out)
		time.Sleep(2 * time.Second)
		gotLimited := netlabtest.Metric(t, ctx, "gizmo_dhcp4_rate_limited_total") + netlabtest.Metric(t, ctx, "gizmo_dhcp4_socket_drops_total") - limited
		gotOffers := netlabtest.Metric(t, ctx, "gizmo_dhcp4_offers_total") - offers
		t.Logf("rate limited or dropped +%v, offers +%v", gotLimited, gotOffers)
		if gotLimited < (own+random)/2 {
			t.Errorf("only %v of %d DISCOVERs counted as rate limited", gotLimited, own+random)
		}
		if gotOffers > 200 {
			t.Errorf("%v offers for a flood of %d DISCOVERs from one port", gotOffers, own+random)
		}
		flap(t, ctx, l, netlab.NSLanLegacy)
		if got := hostIPv4(t, ctx, l, netlab.NSLanLegacy); got != legacyIP {
			t.Errorf("after the flood gz-lan-legacy has %s, had %s", got, legacyIP)
		}
	})

	t.Run("3000 RS from random MACs: the host table stays bounded and gizmo.json small and unwritten", func(t *testing.T) {
		path := filepath.Join(l.GizmoStateDir(), "gizmo.json")
		before, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		refused := netlabtest.Metric(t, ctx, "gizmo_hosts_refused_total")
		const flood = 3000
		t.Cleanup(func() {
			if err := l.ForgetNeighbours(context.Background()); err != nil {
				t.Error(err)
			}
		})
		out, err := l.Exec(ctx, netlab.NSLanV6, helper, "rs-flood", "-count", fmt.Sprint(flood))
		if err != nil {
			t.Fatalf("rs-flood: %v\n%s", err, out)
		}
		t.Logf("%s", out)
		var ht hostTable
		if err := netlab.WaitFor(ctx, "the flood reaches the host table", func(ctx context.Context) (bool, error) {
			ht = hostTableOf(t, ctx, l)
			return ht.Full, nil
		}); err != nil {
			t.Errorf("%v; host table %+v", err, ht)
		}
		time.Sleep(3 * time.Second) // the rest of the flood, a replan and a flush
		ht = hostTableOf(t, ctx, l)
		t.Logf("host table %+v; gizmo_hosts_refused_total +%v; frames the kernel dropped %v", ht,
			netlabtest.Metric(t, ctx, "gizmo_hosts_refused_total")-refused, netlabtest.Metric(t, ctx, "gizmo_neighbors_socket_drops_total"))
		if ht.Capacity == 0 || ht.Hosts > ht.Capacity {
			t.Errorf("host table %+v: over its capacity", ht)
		}
		if netlabtest.Metric(t, ctx, "gizmo_hosts_refused_total")+netlabtest.Metric(t, ctx, "gizmo_hosts_evicted_total") <= refused {
			t.Error("the flood's hosts that did not fit were not counted")
		}
		after, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
			t.Errorf("gizmo.json was rewritten during the flood (%d → %d bytes)", before.Size(), after.Size())
		}
		if after.Size() > 16<<10 {
			t.Errorf("gizmo.json is %d bytes", after.Size())
		}
		// The honest hosts stay: their names still resolve.
		if got, err := dig(ctx, l, netlab.NSLanV6, server, "lan-v6.home.arpa", "AAAA"); err != nil || !slices.Contains(got, victimAddr.String()) {
			t.Errorf("after the flood lan-v6.home.arpa AAAA = %v (%v), want %s", got, err, victimAddr)
		}
		if h := apiHost(t, ctx, netlab.MACLanLegacy); h.IPv4Lease != legacyIP {
			t.Errorf("after the flood gz-lan-legacy's lease is %q, want %s", h.IPv4Lease, legacyIP)
		}
	})
}
