package plan

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dhcp6pd"
	"github.com/google/go-cmp/cmp"
)

var netNow = time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)

// netState is a LAN with a current delegation, one retired, a ULA, a
// legacy network and a WAN IPv4 lease, all valid at netNow.
func netState() *state.State {
	ula := netip.MustParsePrefix("fd12:3456:789a::/48")
	legacy := netip.MustParsePrefix("203.0.113.129/25")
	return &state.State{
		ULA: ula,
		LAN: state.LAN{Legacy4: legacy, DNS: state.DNSAddrsIn(ula, legacy)},
		WAN: state.WAN{IPv4: &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24"), Expires: netNow.Add(time.Hour)}},
		Delegated: &state.DelegatedPrefix{
			Prefix: netip.MustParsePrefix("2001:db8:1000:200::/56"), PreferredUntil: netNow.Add(time.Hour), ValidUntil: netNow.Add(2 * time.Hour),
		},
		Retired: []state.DelegatedPrefix{
			{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: netNow.Add(-time.Minute), ValidUntil: netNow.Add(time.Minute)},
		},
	}
}

// lans lists the view's prefixes by role, for comparing.
type lans struct {
	Delegated, Retired, Shared []netip.Prefix
	Management                 netip.Prefix
	IPv4                       bool
}

func lansOf(n Network) lans {
	l := lans{Retired: []netip.Prefix{}, Management: n.Management, IPv4: n.IPv4 != nil, Shared: n.SharedLANs()}
	if n.Delegated != nil {
		l.Delegated = []netip.Prefix{n.Delegated.Prefix}
	}
	for _, r := range n.Retired {
		l.Retired = append(l.Retired, r.Prefix)
	}
	return l
}

func TestNetworkOf(t *testing.T) {
	pfx := netip.MustParsePrefix
	cur, old := pfx("2001:db8:1000:200::/56"), pfx("2001:db8:1000:100::/56")
	mgmt := pfx("fd12:3456:789a::/64")
	shared := &state.UpstreamPrefix{Prefix: pfx("2001:db8:0:1::/64"), ValidUntil: netNow.Add(time.Hour)}
	// every is what netState has; the others lack one part, or have the
	// shared /64 too.
	every := lans{Delegated: []netip.Prefix{cur}, Retired: []netip.Prefix{old}, Management: mgmt, IPv4: true}
	noCurrent, noRetired, noIPv4, noManagement, withShared := every, every, every, every, every
	noCurrent.Delegated, noRetired.Retired, noIPv4.IPv4, noManagement.Management = nil, nil, false, netip.Prefix{}
	withShared.Shared = []netip.Prefix{shared.Prefix}
	for _, tc := range []struct {
		name string
		edit func(st *state.State)
		want lans
	}{
		{"every prefix valid: current, retired, management, IPv4 lease", func(*state.State) {},
			every},
		// Which prefixes are usable is state.UsableDelegation's, tested
		// there; NetworkOf keeps to it.
		{"a unique local prefix (RFC 4193) is no delegation",
			func(st *state.State) { st.Delegated.Prefix = pfx("fd00:1000:200::/48") },
			noCurrent},
		{"RFC 8415 §18.2.10.1: a delegation past its ValidUntil is unusable",
			func(st *state.State) { st.Delegated.ValidUntil = netNow },
			noCurrent},
		{"a retired ULA is no delegation either",
			func(st *state.State) { st.Retired[0].Prefix = pfx("fd00:1000:100::/56") },
			noRetired},
		{"RFC 9096 §3: a retired delegation goes at its ValidUntil",
			func(st *state.State) { st.Retired[0].ValidUntil = netNow },
			noRetired},
		{"a retired delegation must be usable too",
			func(st *state.State) { st.Retired[0].Prefix = pfx("2001:db8:1000:100::/80") },
			noRetired},
		{"the current delegation wins over a retired entry with its /64",
			func(st *state.State) {
				st.Retired = append(st.Retired, state.DelegatedPrefix{Prefix: cur, ValidUntil: netNow.Add(time.Hour)})
			},
			every},
		{"two retired entries with one /64: the first counts",
			func(st *state.State) {
				st.Retired = append(st.Retired, state.DelegatedPrefix{Prefix: pfx("2001:db8:1000:100::/60"), ValidUntil: netNow.Add(time.Hour)})
			},
			every},
		{"RFC 7278 §4.3: the shared /64 counts until its ValidUntil",
			func(st *state.State) { st.Shared = shared },
			withShared},
		{"a shared /64 past its ValidUntil is gone",
			func(st *state.State) { s := *shared; s.ValidUntil = netNow; st.Shared = &s },
			every},
		{"RFC 9096 §3.5: a retired shared /64 counts until its ValidUntil",
			func(st *state.State) { st.SharedRetired = shared },
			withShared},
		{"a /64 shared again is not also retired",
			func(st *state.State) { st.Shared, st.SharedRetired = shared, shared },
			withShared},
		{"the IPv4 lease is valid only while it has not expired",
			func(st *state.State) { st.WAN.IPv4.Expires = netNow },
			noIPv4},
		{"an IPv4 lease without an expiry holds",
			func(st *state.State) { st.WAN.IPv4.Expires = time.Time{} },
			every},
		{"an IPv4 lease without an address is none",
			func(st *state.State) { st.WAN.IPv4.Addr = netip.Prefix{} },
			noIPv4},
		{"no ULA: no management /64",
			func(st *state.State) { st.ULA = netip.Prefix{} },
			noManagement},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := netState()
			tc.edit(st)
			got := lansOf(NetworkOf(st, netNow))
			if tc.want.Retired == nil {
				tc.want.Retired = []netip.Prefix{}
			}
			if d := cmp.Diff(tc.want, got, pfxCmp); d != "" {
				t.Errorf("NetworkOf (-want +got):\n%s", d)
			}
		})
	}
}

// The gizmo's own addresses: ::1 in every LAN /64 and in the ULA /64, and
// the DNS service's per-source addresses.
func TestNetworkOfRouterAddrs(t *testing.T) {
	n := NetworkOf(netState(), netNow)
	a := netip.MustParseAddr
	if n.Delegated.LAN != netip.MustParsePrefix("2001:db8:1000:200::/64") || n.Delegated.Router != a("2001:db8:1000:200::1") {
		t.Errorf("current: LAN %v router %v", n.Delegated.LAN, n.Delegated.Router)
	}
	if n.Retired[0].Router != a("2001:db8:1000:100::1") {
		t.Errorf("retired router %v", n.Retired[0].Router)
	}
	if n.RouterULA != a("fd12:3456:789a::1") || n.ULA != netip.MustParsePrefix("fd12:3456:789a::/48") {
		t.Errorf("ULA %v router %v", n.ULA, n.RouterULA)
	}
	want := state.DNSAddrs{RDNSS: a("fd12:3456:789a::53"), DHCPv6: a("fd12:3456:789a::35"), DHCPv4: a("203.0.113.129")}
	if n.DNS != want {
		t.Errorf("DNS %+v, want %+v", n.DNS, want)
	}
}

// The plans accept exactly the delegations the DHCPv6-PD client accepts:
// one rule, checked where the prefix arrives and again where it is used.
func TestUsableDelegationIsTheClientsPolicy(t *testing.T) {
	for _, p := range []string{
		"2001:db8:1000::/56", "2001:db8::/32", "2001:db8::/28", "2001:db8:1::/64", "2001:db8:1::/80",
		"fd00:1::/48", "fe80::/64", "ff05::/48", "::/0", "64:ff9b::/96", "2001:db8:1:2::/63",
	} {
		pfx := netip.MustParsePrefix(p)
		if got, client := state.UsableDelegation(pfx), dhcp6pd.DelegationPolicy(pfx) == nil; got != client {
			t.Errorf("%s: the plans say usable=%v, the DHCPv6-PD client accepts=%v", p, got, client)
		}
	}
}
