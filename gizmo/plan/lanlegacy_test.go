package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/nat64"
)

// lanLegacyState is the lab's LAN: a laptop that went IPv6-only, a printer
// and a camera that are IPv4-only, and a dual-stack TV that kept its lease.
func lanLegacyState(now time.Time) *state.State {
	st := nat64State(now)
	st.Pref64Source = state.Pref64Flag
	on := state.DefaultHostPolicy()
	off := state.DefaultHostPolicy()
	off.LANReachable = false
	st.Hosts = map[string]*state.Host{
		"02:00:00:00:00:01": {MAC: "02:00:00:00:00:01", Hostname: "laptop", GotV6OnlyPreferred: true, Policy: on,
			Addrs: map[netip.Addr]time.Time{netip.MustParseAddr("2001:db8:1000::100"): now}},
		"02:00:00:00:00:02": {MAC: "02:00:00:00:00:02", Hostname: "printer", IPv4Lease: netip.MustParseAddr("203.0.113.130"), Policy: on,
			Addrs: map[netip.Addr]time.Time{netip.MustParseAddr("fe80::2"): now}},
		"02:00:00:00:00:03": {MAC: "02:00:00:00:00:03", Hostname: "camera", IPv4Lease: netip.MustParseAddr("203.0.113.131"), Policy: off,
			Addrs: map[netip.Addr]time.Time{}},
		"02:00:00:00:00:04": {MAC: "02:00:00:00:00:04", Hostname: "tv", IPv4Lease: netip.MustParseAddr("203.0.113.132"), Policy: on,
			Addrs: map[netip.Addr]time.Time{netip.MustParseAddr("2001:db8:1000::44"): now}},
	}
	// A remembered host, not seen in this run, with a reservation.
	offReserved := off
	offReserved.IPv4 = netip.MustParseAddr("203.0.113.200")
	st.Remembered = map[string]state.HostRecord{"02:00:00:00:00:05": {Hostname: "nas", Policy: offReserved}}
	return st
}

func TestLANLegacy(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ula96 := netip.MustParsePrefix("fd00:1:2:46::/96")
	lab := netip.MustParsePrefix("2001:db8:64::/96")
	for _, c := range []struct {
		name  string
		edit  func(*state.State)
		check func(t *testing.T, st *state.State)
	}{
		{"RFC 6052 §3.1: a network-specific PREF64 of the gizmo's own carries the LAN's devices (the lab)", nil,
			func(t *testing.T, st *state.State) {
				l := NAT64(st, false, now).LANLegacy
				if l.Addr4 != netip.MustParsePrefix("203.0.113.129/25") || l.Prefix != lab {
					t.Errorf("LAN pool %v under %v, want the gizmo's LAN address under the PREF64", l.Addr4, l.Prefix)
				}
			}},
		{"RFC 6052 §3.1: with the well-known prefix the devices are under the ULA's /96",
			func(st *state.State) { st.Pref64, st.Pref64Source = state.WellKnownPref64, state.Pref64Default },
			func(t *testing.T, st *state.State) {
				p := NAT64(st, false, now)
				if p.LANLegacy.Prefix != ula96 || p.Pref64 != state.WellKnownPref64 {
					t.Errorf("LAN pool under %v beside %v, want %v beside the well-known prefix", p.LANLegacy.Prefix, p.Pref64, ula96)
				}
			}},
		{"RFC 6052 §3.1: the well-known prefix and no ULA: no LAN pool",
			func(st *state.State) { st.Pref64, st.ULA = state.WellKnownPref64, netip.Prefix{} },
			func(t *testing.T, st *state.State) {
				if p := NAT64(st, false, now); p.LANLegacy.Enabled() || !p.Pool4.IsValid() {
					t.Errorf("LAN pool %+v, WAN pool %v", p.LANLegacy, p.Pool4)
				}
			}},
		{"RFC 8781: a network-specific PREF64 from the upstream leads to its NAT64, so the ULA's /96",
			func(st *state.State) { st.Pref64Source = state.Pref64Upstream },
			func(t *testing.T, st *state.State) {
				if got := NAT64(st, false, now).LANLegacy.Prefix; got != ula96 {
					t.Errorf("LAN pool under %v, want %v", got, ula96)
				}
			}},
		{"no legacy IPv4 network: no LAN pool", func(st *state.State) { st.LAN.Legacy4 = netip.Prefix{} },
			func(t *testing.T, st *state.State) {
				if NAT64(st, false, now).LANLegacy.Enabled() || DNS64(st, now).LocalSynthesized != nil {
					t.Error("a LAN pool without a legacy network")
				}
			}},
		{"existing network: the one port is no LAN of the gizmo's", nil,
			func(t *testing.T, st *state.State) {
				if NAT64(st, true, now).LANLegacy.Enabled() {
					t.Error("a LAN pool in the existing-network mode")
				}
			}},
		{"the WAN pool's ports and the LAN pool's do not overlap", nil,
			func(t *testing.T, st *state.State) {
				p := NAT64(st, false, now)
				lan := p.LANLegacy.Ports
				if lan == (nat64.PortRange{}) {
					lan = nat64.DefaultLANPorts
				}
				for _, w := range []nat64.PortRange{p.PortsLow, p.PortsHigh} {
					if lan.Min <= w.Max && w.Min <= lan.Max {
						t.Errorf("LAN pool ports %+v overlap %+v", lan, w)
					}
				}
			}},
		{"reachable off: the lease and the reservation are refused, of seen and remembered hosts", nil,
			func(t *testing.T, st *state.State) {
				got := NAT64(st, false, now).LANLegacy.Refused
				want := []netip.Addr{netip.MustParseAddr("203.0.113.131"), netip.MustParseAddr("203.0.113.200")}
				if !slices.Equal(got, want) {
					t.Errorf("refused %v, want %v", got, want)
				}
			}},
		{"more refused devices than the NAT64 holds: no LAN pool rather than one let through",
			func(st *state.State) {
				st.LAN.Legacy4 = netip.MustParsePrefix("10.0.0.1/16")
				off := state.DefaultHostPolicy()
				off.LANReachable = false
				for i := range nat64.MaxLANRefused + 1 {
					off.IPv4 = netip.AddrFrom4([4]byte{10, 0, byte(1 + i>>8), byte(i)})
					st.Remembered[fmt.Sprintf("02:00:00:01:%02x:%02x", i>>8, i&0xff)] = state.HostRecord{Policy: off}
				}
			},
			func(t *testing.T, st *state.State) {
				if NAT64(st, false, now).LANLegacy.Enabled() {
					t.Error("a LAN pool that cannot refuse every refused device")
				}
			}},
		{"RFC 6147 §5.1.7: an IPv4-only device's name has an AAAA under the LAN pool's prefix; §5.1.1: a dual-stack one keeps its own; a refused one has none", nil,
			func(t *testing.T, st *state.State) {
				got := DNS64(st, now).LocalSynthesized
				want := map[string][]netip.Addr{"printer.home.arpa.": {netip.MustParseAddr("2001:db8:64::cb00:7182")}}
				if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("synthesized (-want +got):\n%s", diff)
				}
			}},
		{"RFC 6052 §3.1: with the well-known prefix the name's AAAA is under the ULA's /96",
			func(st *state.State) { st.Pref64, st.Pref64Source = state.WellKnownPref64, state.Pref64Default },
			func(t *testing.T, st *state.State) {
				got := DNS64(st, now).LocalSynthesized["printer.home.arpa."]
				if want := netip.MustParseAddr("fd00:1:2:46::cb00:7182"); len(got) != 1 || got[0] != want {
					t.Errorf("printer's AAAA %v, want %v", got, want)
				}
			}},
		{"the WAN down: the printer keeps its AAAA and its LAN pool", func(st *state.State) { st.WAN.Up = false },
			func(t *testing.T, st *state.State) {
				if len(DNS64(st, now).LocalSynthesized["printer.home.arpa."]) != 1 || !NAT64(st, false, now).LANLegacy.Enabled() {
					t.Error("the LAN pool follows the WAN")
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := edited(lanLegacyState(now), c.edit)
			c.check(t, st)
		})
	}
}
