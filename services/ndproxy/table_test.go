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

const (
	testMaxAge      = 10 * time.Minute
	testUnprovenAge = 30 * time.Second
)

func testTable(limit int) *table { return newTable(limit, testMaxAge, testUnprovenAge) }

// prove and claim are learn's two kinds of evidence.
func prove(tab *table, a netip.Addr, at time.Time) learnResult {
	r, _ := tab.learn(a, at, true)
	return r
}

func claim(tab *table, a netip.Addr, at time.Time) learnResult {
	r, _ := tab.learn(a, at, false)
	return r
}

func TestTable(t *testing.T) {
	const maxAge = testMaxAge
	for _, tc := range []struct {
		name string
		do   func(tab *table)
		at   time.Time
		want []netip.Addr
	}{
		{"RFC 4389 4.1: a proven address in the shared /64 is proxied", func(tab *table) { prove(tab, hostA, t0) }, t0, []netip.Addr{hostA}},
		{"a claimed address is proxied at once, before any proof", func(tab *table) { claim(tab, hostA, t0) }, t0, []netip.Addr{hostA}},
		{"an address outside the shared /64 is not proxied", func(tab *table) { prove(tab, netip.MustParseAddr("2001:db8:0:2::a"), t0) }, t0, nil},
		{"the gizmo's own WAN address is never proxied", func(tab *table) { prove(tab, netip.MustParseAddr("2001:db8:0:1::2"), t0) }, t0, nil},
		{"link-local, ULA and multicast are not learned", func(tab *table) {
			for _, a := range []string{"fe80::1", "fd00::1", "ff02::1", "::"} {
				if prove(tab, netip.MustParseAddr(a), t0) != learnBogus {
					t.Errorf("learn(%s) accepted", a)
				}
			}
		}, t0, nil},
		{"an address without proof for longer than MaxAge is not proxied", func(tab *table) { prove(tab, hostA, t0) }, t0.Add(maxAge + time.Second), nil},
		{"newer proof keeps it", func(tab *table) { prove(tab, hostA, t0); prove(tab, hostA, t0.Add(maxAge)) }, t0.Add(maxAge + time.Second), []netip.Addr{hostA}},
		{"older proof does not shorten it", func(tab *table) { prove(tab, hostA, t0.Add(maxAge)); prove(tab, hostA, t0) }, t0.Add(maxAge + time.Second), []netip.Addr{hostA}},
		{"a claim keeps a proven address no longer than its proof", func(tab *table) { prove(tab, hostA, t0); claim(tab, hostA, t0.Add(maxAge)) }, t0.Add(maxAge + time.Minute), nil},
		{"RFC 4861 7.3.3: a FAILED address is withdrawn", func(tab *table) {
			prove(tab, hostA, t0)
			prove(tab, hostB, t0)
			tab.fail(hostA, t0.Add(time.Minute))
		}, t0.Add(time.Minute), []netip.Addr{hostB}},
		{"evidence from before the failure does not bring it back", func(tab *table) {
			prove(tab, hostA, t0)
			tab.fail(hostA, t0.Add(time.Minute))
			if r := prove(tab, hostA, t0.Add(30*time.Second)); r != learnStale {
				t.Errorf("learn = %v, want learnStale", r)
			}
		}, t0.Add(time.Minute), nil},
		{"evidence from after the failure does", func(tab *table) {
			prove(tab, hostA, t0)
			tab.fail(hostA, t0.Add(time.Minute))
			prove(tab, hostA, t0.Add(2*time.Minute))
		}, t0.Add(2 * time.Minute), []netip.Addr{hostA}},
		{"a table full of proven addresses takes no new one", func(tab *table) {
			tab.limit = 1
			prove(tab, hostA, t0)
			if r := claim(tab, hostB, t0); r != learnFull {
				t.Errorf("learn = %v, want learnFull", r)
			}
		}, t0, []netip.Addr{hostA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := testTable(16)
			tc.do(tab)
			if got := tab.want(shared, tc.at); !slices.Equal(got, tc.want) {
				t.Errorf("want() = %v, expected %v", got, tc.want)
			}
		})
	}
}

func TestTableNoPrefixProxiesNothing(t *testing.T) {
	tab := testTable(16)
	prove(tab, hostA, t0)
	if got := tab.want(Plan{}, t0); got != nil {
		t.Errorf("want() without a prefix = %v", got)
	}
}

func TestTablePrune(t *testing.T) {
	tab := testTable(16)
	hostC := netip.MustParseAddr("2001:db8:0:1::c")
	prove(tab, hostA, t0)
	prove(tab, hostB, t0.Add(5*time.Minute))
	claim(tab, hostC, t0.Add(5*time.Minute))
	tab.fail(netip.MustParseAddr("2001:db8:0:1::d"), t0)
	gone, neverProven := tab.prune(t0.Add(11 * time.Minute))
	if !slices.Equal(gone, []netip.Addr{hostA}) || !slices.Equal(neverProven, []netip.Addr{hostC}) {
		t.Errorf("prune forgot %v and unproven %v, want [%v] and [%v]", gone, neverProven, hostA, hostC)
	}
	if len(tab.failed) != 0 {
		t.Errorf("failure records older than MaxAge kept: %v", tab.failed)
	}
	if _, ok := tab.entries[hostB]; !ok {
		t.Errorf("prune forgot %v, proven within MaxAge", hostB)
	}
}

// RFC 4389 §4.1 lets a proxy learn from what the LAN says, but a DAD probe
// is a claim anyone can make for any address: without proof of life (the
// host answering the gizmo's own solicitation) an address is proxied only
// briefly, and claims without proof make room for new ones rather than
// blocking the table for MaxAge.
func TestTableUnprovenClaims(t *testing.T) {
	t.Run("an unproven DAD claim is proxied for a short while only", func(t *testing.T) {
		tab := testTable(16)
		claim(tab, hostA, t0)
		if got := tab.want(shared, t0.Add(testUnprovenAge)); !slices.Contains(got, hostA) {
			t.Errorf("want() = %v within UnprovenMaxAge of the claim", got)
		}
		if got := tab.want(shared, t0.Add(2*time.Minute)); slices.Contains(got, hostA) {
			t.Errorf("want() = %v two minutes after an unanswered DAD claim", got)
		}
	})
	t.Run("repeating a claim does not extend it", func(t *testing.T) {
		tab := testTable(16)
		for i := range 3 {
			claim(tab, hostA, t0.Add(time.Duration(i)*10*time.Second))
		}
		if got := tab.want(shared, t0.Add(testUnprovenAge+time.Second)); slices.Contains(got, hostA) {
			t.Errorf("want() = %v: claims every 10 s kept it past UnprovenMaxAge", got)
		}
	})
	t.Run("proof after a claim keeps it for MaxAge", func(t *testing.T) {
		tab := testTable(16)
		claim(tab, hostA, t0)
		prove(tab, hostA, t0.Add(3*time.Second))
		if got := tab.want(shared, t0.Add(5*time.Minute)); !slices.Contains(got, hostA) {
			t.Errorf("want() = %v five minutes after proof", got)
		}
	})
	t.Run("a table full of unproven claims takes a new one", func(t *testing.T) {
		tab := testTable(4)
		for i := range 4 {
			claim(tab, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 15: byte(0x10 + i)}), t0.Add(time.Duration(i)*time.Millisecond))
		}
		r, evicted := tab.learn(hostA, t0.Add(time.Second), false)
		if r == learnFull {
			t.Fatalf("learn = learnFull; a table of unproven claims refused a new address")
		}
		if want := netip.MustParseAddr("2001:db8:0:1::10"); evicted != want {
			t.Errorf("evicted %v, want the first claim %v", evicted, want)
		}
	})
	t.Run("proven addresses are never evicted for a claim", func(t *testing.T) {
		tab := testTable(2)
		prove(tab, hostA, t0)
		claim(tab, hostB, t0)
		r, evicted := tab.learn(netip.MustParseAddr("2001:db8:0:1::c"), t0.Add(time.Second), false)
		if r != learnNew || evicted != hostB {
			t.Errorf("learn = %v evicting %v, want the unproven %v evicted", r, evicted, hostB)
		}
		if _, ok := tab.entries[hostA]; !ok {
			t.Errorf("the proven %v was evicted", hostA)
		}
	})
}
