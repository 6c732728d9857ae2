package plan

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dslite"
)

// dsliteState is a DS-Lite line: IPv6 with a SLAAC address on the WAN and
// a delegation, no IPv4 lease, an AFTR named and resolved.
func dsliteState(now time.Time) *state.State {
	st := nat64State(now)
	st.WAN.IPv4 = nil
	st.WAN.Interface = "uplink0"
	st.WAN.Addrs = []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1::b4/64")}
	st.WAN.Router, st.WAN.RouterLifetimeUntil = netip.MustParseAddr("fe80::1"), now.Add(time.Hour)
	st.WAN.RDNSS = []netip.Addr{netip.MustParseAddr("2001:db8:0:1::53")}
	st.WAN.DHCPv6DNS = []netip.Addr{netip.MustParseAddr("2001:db8:0:1::53"), netip.MustParseAddr("2001:db8:0:2::53")}
	st.WAN.AFTRName, st.WAN.AFTR = "aftr.example.test", netip.MustParseAddr("2001:db8:0:5::1")
	st.Pref64Source = state.Pref64Flag
	return st
}

func TestDSLitePlan(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	aftr := netip.MustParseAddr("2001:db8:0:5::1")
	for _, c := range []struct {
		name  string
		edit  func(*state.State)
		check func(t *testing.T, p dslite.Plan)
	}{
		{"RFC 6333 §5: no IPv4 and an AFTR: the softwire from the WAN address", nil, func(t *testing.T, p dslite.Plan) {
			want := dslite.Softwire{AFTR: aftr, B4: netip.MustParseAddr("2001:db8:0:1::b4"), Interface: "uplink0", Ifindex: 4, MTU: 1500}
			if p.Softwire != want {
				t.Errorf("softwire %+v, want %+v", p.Softwire, want)
			}
		}},
		{"RFC 6334 §4: resolved through the ISP's resolvers, RDNSS first, each once", nil, func(t *testing.T, p dslite.Plan) {
			want := []netip.AddrPort{netip.MustParseAddrPort("[2001:db8:0:1::53]:53"), netip.MustParseAddrPort("[2001:db8:0:2::53]:53")}
			if p.AFTRName != "aftr.example.test" || !slices.Equal(p.Resolvers, want) {
				t.Errorf("name %q resolvers %v", p.AFTRName, p.Resolvers)
			}
		}},
		{"no WAN address: the B4 is the gizmo's address in the delegated /64", func(st *state.State) { st.WAN.Addrs = nil }, func(t *testing.T, p dslite.Plan) {
			if p.Softwire.B4 != netip.MustParseAddr("2001:db8:1000::1") {
				t.Errorf("B4 %v", p.Softwire.B4)
			}
		}},
		{"a ULA on the WAN is no B4", func(st *state.State) {
			st.WAN.Addrs = []netip.Prefix{netip.MustParsePrefix("fd00:9::1/64")}
			st.Delegated = nil
		}, func(t *testing.T, p dslite.Plan) {
			if p.Softwire.Enabled() {
				t.Errorf("softwire from %v", p.Softwire.B4)
			}
		}},
		{"a native IPv4 lease wins: no softwire, the name still resolved", func(st *state.State) {
			st.WAN.IPv4 = &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.150/24")}
		}, func(t *testing.T, p dslite.Plan) {
			if p.Softwire.Enabled() || p.AFTRName == "" {
				t.Errorf("plan %+v", p)
			}
		}},
		{"the AFTR not resolved yet: resolve, no softwire", func(st *state.State) { st.WAN.AFTR = netip.Addr{} }, func(t *testing.T, p dslite.Plan) {
			if p.Softwire.Enabled() || p.AFTRName == "" {
				t.Errorf("plan %+v", p)
			}
		}},
		{"no AFTR named: nothing", func(st *state.State) { st.WAN.AFTRName = "" }, func(t *testing.T, p dslite.Plan) {
			if !p.Equal(dslite.Plan{}) {
				t.Errorf("plan %+v", p)
			}
		}},
		{"the WAN down: no softwire", func(st *state.State) { st.WAN.Up = false }, func(t *testing.T, p dslite.Plan) {
			if p.Softwire.Enabled() {
				t.Errorf("plan %+v", p)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := edited(dsliteState(now), c.edit)
			c.check(t, DSLitePlan(st, false, now))
		})
	}
	t.Run("the existing-network mode has no line of its own", func(t *testing.T) {
		if p := DSLitePlan(dsliteState(now), true, now); !p.Equal(dslite.Plan{}) {
			t.Errorf("plan %+v", p)
		}
	})
}

// TestDSLiteIPv4 checks that on a DS-Lite line there is IPv4 again for
// every plan that needs it: the NAT64 translates to the softwire's
// 192.0.0.2 within its MTU, the NAT44 goes to the same address, DNS64
// synthesizes and the RA announces PREF64.
func TestDSLiteIPv4(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := dsliteState(now)
	b4v4 := netip.MustParseAddr("192.0.0.2")

	n := NAT64(st, false, now)
	if !n.Enabled() || n.Pool4 != b4v4 {
		t.Errorf("RFC 6333 §5.7: NAT64 pool %v, want %v", n.Pool4, b4v4)
	}
	if n.WANMTU != 1460 {
		t.Errorf("RFC 6333 §5.3: NAT64 WAN MTU %d, want the softwire's 1460", n.WANMTU)
	}
	if !slices.Contains(n.Deny4, dslite.Prefix4) {
		t.Errorf("the softwire's /29 is a NAT64 destination: %v", n.Deny4)
	}
	fw, err := Firewall(st, now)
	if err != nil {
		t.Fatal(err)
	}
	if fw.WANIPv4 != b4v4 {
		t.Errorf("NAT44 to %v, want %v", fw.WANIPv4, b4v4)
	}
	if d := DNS64(st, now); d.Pref64 != st.Pref64 {
		t.Errorf("DNS64 synthesizes into %v, want %v (there is IPv4)", d.Pref64, st.Pref64)
	}
	if r := RA(st, RAOptions{MaxInterval: 10 * time.Second}, now); r.Pref64 != st.Pref64 {
		t.Errorf("RFC 8781: PREF64 %v in the RA, want %v", r.Pref64, st.Pref64)
	}

	st.WAN.AFTR = netip.Addr{}
	// The LAN pool may still run; the WAN pool needs IPv4 or a softwire.
	if p := NAT64(st, false, now); p.Pool4.IsValid() {
		t.Errorf("a NAT64 WAN pool %v without IPv4 and without a softwire", p.Pool4)
	}
	st = dsliteState(now)
	st.WAN.MTU = 1492
	if got := NAT64(st, false, now).WANMTU; got != 1452 {
		t.Errorf("a PPPoE WAN: NAT64 WAN MTU %d, want 1452", got)
	}
}
