package firewall

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/services/fastpath"
	"codeberg.org/monostack/gizmo/services/nat64"
)

// runNAT64 runs the NAT64 in tp's router, on a thread that stays in the
// namespace, translating 2001:db8:64::/96 through the router's WAN IPv4.
func runNAT64(t *testing.T, tp *topo) (svc *nat64.Service, stop func()) {
	t.Helper()
	s, err := nat64.New(nat64.Config{})
	if err != nil {
		t.Fatal(err)
	}
	testns.IP(t, "-n", tp.router, "route", "add", "default", "via", topoWAN4)
	var lanIdx, wanIdx int
	testns.Inside(t, tp.router, func() {
		l, err1 := net.InterfaceByName("lan0")
		w, err2 := net.InterfaceByName("uplink0")
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		lanIdx, wanIdx = l.Index, w.Index
	})
	stopRun := testns.Start(t, tp.router, s.Run)
	s.Update(nat64.Plan{
		Pool4:       a(topoRouterW4),
		Pref64:      netip.MustParsePrefix("2001:db8:64::/96"),
		LANPrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000:100::/64")},
		Router6:     a(topoRouterL6),
		LANIfindex:  lanIdx, WANIfindex: wanIdx,
		LANMTU: 1500, WANMTU: 1500,
	})
	// Loading the NAT64's programs takes the verifier seconds on a busy
	// machine; the limit only keeps a broken test from hanging.
	testns.WaitFor(t, "the NAT64 to apply its plan", 60*time.Second, func() (bool, string) {
		st := s.Stats()
		return st.Enabled, fmt.Sprintf("%+v", st.Counters)
	})
	return s, func() {
		if err := stopRun(); err != nil {
			t.Errorf("nat64 Run: %v", err)
		}
	}
}

// Both eBPF datapaths on the same tcx hooks, in either order: the NAT64
// returns TCX_NEXT for native IPv6, the fast path returns it for what is
// not an offloaded flow, so each sees what it needs.
func TestFastpathBesideNAT64(t *testing.T) {
	testns.NeedRoot(t)
	for _, order := range []string{"nat64 first", "fastpath first"} {
		t.Run(order, func(t *testing.T) {
			tp := newTopo(t)
			plan := topoPlan()
			tp.firewall(t, plan)
			var (
				nat  *nat64.Service
				stop func()
			)
			if order == "nat64 first" {
				nat, stop = runNAT64(t, tp)
				t.Cleanup(stop)
			}
			fp := startFastpath(t, tp, plan.LANPrefixes)
			fp.Update(fastpath.Plan{LANPrefixes: plan.LANPrefixes, Exclude: []netip.Prefix{netip.MustParsePrefix("2001:db8:64::/96")}})
			if order == "fastpath first" {
				nat, stop = runNAT64(t, tp)
				t.Cleanup(stop)
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("nat64 counters: %v", nonZero(nat.Stats().Counters))
					t.Logf("fast path: %+v", fp.Stats())
				}
			})
			udpEcho(t, tp.wan, "["+topoWAN6+"]:9999")
			udpEcho(t, tp.wan, topoWAN4+":9999")

			native := udpClient(t, tp.lan, "["+topoLANHost6+"]:40000", "["+topoWAN6+"]:9999")
			pingPong(t, native, 50, 64)
			if st := fp.Stats(); st.Packets < 2*50-4 {
				t.Errorf("native IPv6: %d packets on the fast path, want nearly all of 100", st.Packets)
			}
			before := fp.Stats()
			translated := udpClient(t, tp.lan, "["+topoLANHost6+"]:40001", "[2001:db8:64::c000:201]:9999")
			pingPong(t, translated, 50, 64)
			after := fp.Stats()
			if after.Packets != before.Packets {
				t.Errorf("%d NAT64 packets went through the fast path", after.Packets-before.Packets)
			}
			// The NAT64's replies leave lan0 as IPv6 and the learner
			// sees them; with the NAT64 prefix excluded they leave no
			// entry. Wait for a reaper pass to count the established table.
			time.Sleep(3 * 200 * time.Millisecond) // a reaper pass after the NAT64 traffic (ReapInterval 200 ms)
			after = fp.Stats()
			for i := 0; after.Offloaded == 0 && i < 100; i++ {
				time.Sleep(20 * time.Millisecond)
				after = fp.Stats()
			}
			if after.Flows != 1 || after.Offloaded != 1 {
				t.Errorf("fast path has %d flows, %d offloaded; want only the native one", after.Flows, after.Offloaded)
			}
			// Only ahead of the NAT64 does the fast path see the
			// LAN's packets to the NAT64 prefix at all.
			if order == "fastpath first" && after.ToStack["excluded"] == 0 {
				t.Errorf("no packet to the NAT64 prefix counted as excluded: %v", nonZero(after.ToStack))
			}
		})
	}
}
