package derive

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

func TestLineOf(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	later := now.Add(time.Hour)
	v6 := func(st *state.State) {
		st.WAN.Up = true
		st.WAN.Router, st.WAN.RouterLifetimeUntil = netip.MustParseAddr("fe80::1"), later
	}
	v4 := func(st *state.State) {
		st.WAN.IPv4 = &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24"), Expires: later}
	}
	aftr := func(st *state.State) {
		st.WAN.AFTRName, st.WAN.AFTR = "aftr.example.test", netip.MustParseAddr("2001:db8:0:5::1")
	}
	all := func(fs ...func(*state.State)) func(*state.State) {
		return func(st *state.State) {
			for _, f := range fs {
				f(st)
			}
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*state.State)
		want state.Line
	}{
		{"nothing heard: unknown", func(*state.State) {}, state.LineUnknown},
		{"IPv6 and an IPv4 lease: dual-stack", all(v6, v4), state.LineDualStack},
		{"an IPv4 lease only: ipv4-only", v4, state.LineIPv4Only},
		{"RFC 6333: IPv6 and a resolved AFTR: ds-lite", all(v6, aftr), state.LineDSLite},
		{"an AFTR named but not resolved yet: not known", all(v6, func(st *state.State) { st.WAN.AFTRName = "aftr.example.test" }), state.LineUnknown},
		{"a native IPv4 lease wins over the AFTR (RFC 6333 §5: DS-Lite is for lines without IPv4)", all(v6, v4, aftr), state.LineDualStack},
		{"an expired IPv4 lease is no IPv4", all(v6, v4, aftr, func(st *state.State) { st.WAN.IPv4.Expires = now }), state.LineDSLite},
		{"a delegation is IPv6 too", all(aftr, func(st *state.State) {
			st.Delegated = &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), ValidUntil: later}
		}), state.LineDSLite},
		{"RFC 8781: IPv6 and the ISP's PREF64: ipv6-only-nat64", all(v6, func(st *state.State) {
			st.WAN.UpstreamPref64 = netip.MustParsePrefix("2001:db8:46::/96")
		}), state.LineIPv6OnlyNAT64},
		{"an AFTR without IPv6 upstream: not known", aftr, state.LineUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.State{}
			tc.edit(st)
			if got := LineOf(st, now); got != tc.want {
				t.Errorf("LineOf = %q, want %q", got, tc.want)
			}
		})
	}
}
