package plan

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

func TestWANUnreachableRoutes(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cur := netip.MustParsePrefix("2001:db8:1000:200::/56")
	old := netip.MustParsePrefix("2001:db8:1000:100::/56")
	gone := netip.MustParsePrefix("2001:db8:1000:300::/56")
	st := &state.State{
		Delegated: &state.DelegatedPrefix{Prefix: cur, ValidUntil: now.Add(time.Hour)},
		Retired: []state.DelegatedPrefix{
			{Prefix: old, ValidUntil: now.Add(time.Minute)},
			{Prefix: gone, ValidUntil: now.Add(-time.Minute)},
		},
	}
	got := WAN(st, now).Delegated
	if want := []netip.Prefix{cur, old}; !reflect.DeepEqual(got, want) {
		t.Errorf("RFC 7084 WPD-5: unreachable routes for %v, want %v (valid delegations only)", got, want)
	}
	if got := WAN(&state.State{}, now).Delegated; len(got) != 0 {
		t.Errorf("no delegation: routes %v", got)
	}
}
