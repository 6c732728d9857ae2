package fastpath

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netns"

	"codeberg.org/monostack/gizmo/internal/testrun"
)

func TestNewRefusesBadConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no LAN", Config{WAN: "uplink0"}, "two different interfaces"},
		{"one port for both (existing-network mode has no border)", Config{LAN: "lan0", WAN: "lan0"}, "two different interfaces"},
		{"negative table size", Config{LAN: "lan0", WAN: "uplink0", MaxFlows: -1}, "must not be negative"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := New(Config{LAN: "lan0", WAN: "uplink0"}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// A plan the programs cannot hold is refused whole and the old one stays.
func TestApplyRefusesBadPlan(t *testing.T) {
	s, err := New(Config{LAN: "lan0", WAN: "uplink0"})
	if err != nil {
		t.Fatal(err)
	}
	good := Plan{LANPrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000:100::/64")}}
	if err := s.apply(good); err != nil {
		t.Fatal(err)
	}
	var nine []netip.Prefix
	for i := range 9 {
		nine = append(nine, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x10, byte(i)}), 64))
	}
	for _, c := range []struct {
		name string
		p    Plan
	}{
		{"nine LAN prefixes", Plan{LANPrefixes: nine}},
		{"an IPv4 prefix", Plan{LANPrefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.128/25")}}},
		{"an invalid prefix", Plan{LANPrefixes: []netip.Prefix{{}}}},
		{"three excluded prefixes", Plan{LANPrefixes: good.LANPrefixes, Exclude: nine[:3]}},
	} {
		if err := s.apply(c.p); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
		if s.plan.LANPrefixes[0] != good.LANPrefixes[0] || len(s.plan.LANPrefixes) != 1 {
			t.Errorf("%s: the old plan was replaced by %v", c.name, s.plan)
		}
	}
}

// An empty plan turns the fast path off: no program stays on a hook to
// look up packets it cannot offload, and conntrack's TCP window check is
// back. A plan with LAN prefixes turns it on again.
func TestEmptyPlanDetaches(t *testing.T) {
	lan, wan := costLinks(t)
	ns, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	liberal := func() string {
		b, err := os.ReadFile(beLiberal)
		if err != nil {
			return "" // no conntrack in this kernel: nothing to relax
		}
		return strings.TrimSpace(string(b))
	}
	before := liberal()
	attached := func() int {
		n := 0
		for _, ifindex := range []int{lan, wan} {
			for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
				res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: at})
				if err != nil {
					t.Fatalf("query ifindex %d: %v", ifindex, err)
				}
				n += len(res.Programs)
			}
		}
		return n
	}
	s, err := New(Config{LAN: "lan0", WAN: "uplink0", NetNS: int(ns)})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Start(t, "Run", s.Run)
	waitActive := func(want bool) {
		t.Helper()
		for i := 0; s.Stats().Active != want; i++ {
			if i == 500 {
				t.Fatalf("Stats().Active stayed %v", !want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	s.Update(Plan{})
	time.Sleep(200 * time.Millisecond)
	if n := attached(); n != 0 || s.Stats().Active {
		t.Errorf("empty plan: %d programs on the hooks, active %v; want none", n, s.Stats().Active)
	}
	s.Update(Plan{LANPrefixes: []netip.Prefix{lanPrefix}})
	waitActive(true)
	if n := attached(); n != 4 {
		t.Errorf("plan with a LAN prefix: %d programs on the hooks, want 4", n)
	}
	if v := liberal(); before != "" && v != "1" {
		t.Errorf("attached: nf_conntrack_tcp_be_liberal %q, want 1", v)
	}
	s.Update(Plan{})
	waitActive(false)
	if n := attached(); n != 0 {
		t.Errorf("empty plan after a full one: %d programs on the hooks, want none", n)
	}
	if v := liberal(); v != before {
		t.Errorf("detached: nf_conntrack_tcp_be_liberal %q, want it restored to %q", v, before)
	}
}
