package ndproxy

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	shared = Plan{Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"), Own: []netip.Addr{netip.MustParseAddr("2001:db8:0:1::2")}}
	hostA  = netip.MustParseAddr("2001:db8:0:1::a")
	hostB  = netip.MustParseAddr("2001:db8:0:1::b")
)

func TestTable(t *testing.T) {
	const maxAge = 10 * time.Minute
	for _, tc := range []struct {
		name string
		do   func(tab *table)
		at   time.Time
		want []netip.Addr
	}{
		{"RFC 4389 4.1: a learned address in the shared /64 is proxied", func(tab *table) { tab.learn(hostA, t0) }, t0, []netip.Addr{hostA}},
		{"an address outside the shared /64 is not proxied", func(tab *table) { tab.learn(netip.MustParseAddr("2001:db8:0:2::a"), t0) }, t0, nil},
		{"the gizmo's own WAN address is never proxied", func(tab *table) { tab.learn(netip.MustParseAddr("2001:db8:0:1::2"), t0) }, t0, nil},
		{"link-local, ULA and multicast are not learned", func(tab *table) {
			for _, a := range []string{"fe80::1", "fd00::1", "ff02::1", "::"} {
				if tab.learn(netip.MustParseAddr(a), t0) != learnBogus {
					t.Errorf("learn(%s) accepted", a)
				}
			}
		}, t0, nil},
		{"an address without evidence for longer than MaxAge is not proxied", func(tab *table) { tab.learn(hostA, t0) }, t0.Add(maxAge + time.Second), nil},
		{"newer evidence keeps it", func(tab *table) { tab.learn(hostA, t0); tab.learn(hostA, t0.Add(maxAge)) }, t0.Add(maxAge + time.Second), []netip.Addr{hostA}},
		{"older evidence does not shorten it", func(tab *table) { tab.learn(hostA, t0.Add(maxAge)); tab.learn(hostA, t0) }, t0.Add(maxAge + time.Second), []netip.Addr{hostA}},
		{"RFC 4861 7.3.3: a FAILED address is withdrawn", func(tab *table) { tab.learn(hostA, t0); tab.learn(hostB, t0); tab.fail(hostA, t0.Add(time.Minute)) }, t0.Add(time.Minute), []netip.Addr{hostB}},
		{"evidence from before the failure does not bring it back", func(tab *table) {
			tab.learn(hostA, t0)
			tab.fail(hostA, t0.Add(time.Minute))
			if r := tab.learn(hostA, t0.Add(30*time.Second)); r != learnStale {
				t.Errorf("learn = %v, want learnStale", r)
			}
		}, t0.Add(time.Minute), nil},
		{"evidence from after the failure does", func(tab *table) {
			tab.learn(hostA, t0)
			tab.fail(hostA, t0.Add(time.Minute))
			tab.learn(hostA, t0.Add(2*time.Minute))
		}, t0.Add(2 * time.Minute), []netip.Addr{hostA}},
		{"a full table takes no new address", func(tab *table) {
			tab.limit = 1
			tab.learn(hostA, t0)
			if r := tab.learn(hostB, t0); r != learnFull {
				t.Errorf("learn = %v, want learnFull", r)
			}
		}, t0, []netip.Addr{hostA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := newTable(16)
			tc.do(tab)
			if got := tab.want(shared, tc.at, maxAge); !slices.Equal(got, tc.want) {
				t.Errorf("want() = %v, expected %v", got, tc.want)
			}
		})
	}
}

func TestTableNoPrefixProxiesNothing(t *testing.T) {
	tab := newTable(16)
	tab.learn(hostA, t0)
	if got := tab.want(Plan{}, t0, time.Hour); got != nil {
		t.Errorf("want() without a prefix = %v", got)
	}
}

func TestTablePrune(t *testing.T) {
	tab := newTable(16)
	tab.learn(hostA, t0)
	tab.learn(hostB, t0.Add(5*time.Minute))
	tab.fail(netip.MustParseAddr("2001:db8:0:1::c"), t0)
	gone := tab.prune(t0.Add(11*time.Minute), 10*time.Minute)
	if !slices.Equal(gone, []netip.Addr{hostA}) {
		t.Errorf("prune forgot %v, want [%v]", gone, hostA)
	}
	if len(tab.failed) != 0 {
		t.Errorf("failure records older than MaxAge kept: %v", tab.failed)
	}
	if _, ok := tab.seen[hostB]; !ok {
		t.Errorf("prune forgot %v, seen within MaxAge", hostB)
	}
}

// RFC 4389 §4.1 lets a proxy learn from what the LAN says, but a DAD probe
// is a claim anyone can make for any address: without proof of life (the
// host answering the gizmo's own solicitation) an address is proxied only
// briefly, and claims without proof make room for new ones rather than
// blocking the table for MaxAge.
func TestTableUnprovenClaims(t *testing.T) {
	const maxAge = 10 * time.Minute
	t.Run("an unproven DAD claim is proxied for a short while only", func(t *testing.T) {
		tab := newTable(16)
		tab.learn(hostA, t0)
		if got := tab.want(shared, t0.Add(2*time.Minute), maxAge); slices.Contains(got, hostA) {
			t.Errorf("want() = %v two minutes after an unanswered DAD claim", got)
		}
	})
	t.Run("a table full of unproven claims takes a new one", func(t *testing.T) {
		tab := newTable(4)
		for i := range 4 {
			tab.learn(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 15: byte(0x10 + i)}), t0)
		}
		if r := tab.learn(hostA, t0.Add(time.Second)); r == learnFull {
			t.Errorf("learn = learnFull; a table of unproven claims refused a new address")
		}
	})
}
