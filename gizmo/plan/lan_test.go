package plan

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/lanif"
	"github.com/google/go-cmp/cmp"
)

func TestLAN(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ula := netip.MustParsePrefix("fd12:3456:789a::/48")
	legacy := netip.MustParsePrefix("203.0.113.129/25")
	base := func() *state.State {
		return &state.State{ULA: ula, LAN: state.LAN{Legacy4: legacy, DNS: state.DNSAddrsIn(ula, legacy)}}
	}
	mgmt := []lanif.Addr{
		{Prefix: netip.MustParsePrefix("fd12:3456:789a::1/64")},
		{Prefix: netip.MustParsePrefix("fd12:3456:789a::53/64"), NoPrefixRoute: true},
		{Prefix: netip.MustParsePrefix("fd12:3456:789a::35/64"), NoPrefixRoute: true},
	}
	for _, tc := range []struct {
		name  string
		state func() *state.State
		want  []lanif.Addr
	}{
		{"no delegation: management ULA and legacy IPv4 only", base,
			append(append([]lanif.Addr{}, mgmt...), lanif.Addr{Prefix: legacy})},
		{"RFC 7084 L-2: the first /64 of the delegation on the LAN, bounded by its lifetimes", func() *state.State {
			s := base()
			s.Delegated = &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:4500::/56"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(2 * time.Hour)}
			return s
		}, append(append([]lanif.Addr{}, mgmt...),
			lanif.Addr{Prefix: netip.MustParsePrefix("2001:db8:1000:4500::1/64"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(2 * time.Hour)},
			lanif.Addr{Prefix: legacy})},
		{"RFC 9096 §3: a retired prefix stays, deprecated, until it is invalid; an expired one goes", func() *state.State {
			s := base()
			s.Retired = []state.DelegatedPrefix{
				{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), ValidUntil: now.Add(time.Minute)},
				{Prefix: netip.MustParsePrefix("2001:db8:1000:200::/56"), ValidUntil: now.Add(-time.Minute)},
			}
			return s
		}, append(append([]lanif.Addr{}, mgmt...),
			lanif.Addr{Prefix: netip.MustParsePrefix("2001:db8:1000:100::1/64"), PreferredUntil: now, ValidUntil: now.Add(time.Minute)},
			lanif.Addr{Prefix: legacy})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := LAN(tc.state(), now)
			if diff := cmp.Diff(tc.want, got.Addrs, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("LAN addresses (-want +got):\n%s", diff)
			}
		})
	}
}
