package derive

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

var (
	onLinkULA      = netip.MustParsePrefix("fd12:3456:789a::/48")
	onLinkULA64    = netip.MustParsePrefix("fd12:3456:789a:64::/64")
	onLinkDelegate = netip.MustParsePrefix("2001:db8:1000:100::/64")
)

// existingState is a one-port gizmo whose port came up at t0, with a ULA
// and no delegation.
func existingState() *state.State {
	return &state.State{ULA: onLinkULA, WAN: state.WAN{Up: true, LinkUpSince: t0}}
}

func TestOnLinkPrefix(t *testing.T) {
	for _, tc := range []struct {
		name     string
		change   func(st *state.State)
		existing bool
		at       time.Duration // after t0
		want     netip.Prefix
	}{
		{"a router's LAN hosts reach the NAT64 by their default route: no on-link /64", func(st *state.State) {
			st.Delegated = delegation(t0)
		}, false, time.Hour, netip.Prefix{}},
		{"RFC 6724 2.1: the first /64 of a delegation, global, wins", func(st *state.State) {
			st.Delegated = delegation(t0)
		}, true, 0, onLinkDelegate},
		{"a delegation wins over the ULA /64 already in force", func(st *state.State) {
			st.Delegated = delegation(t0)
			st.OnLink = onLinkULA64
		}, true, time.Hour, onLinkDelegate},
		{"RFC 8415 18.2.10.1: an expired delegation is none; the ULA /64 after the hold-off", func(st *state.State) {
			st.Delegated = delegation(t0)
			st.Delegated.ValidUntil = t0.Add(time.Minute)
		}, true, time.Hour, onLinkULA64},
		{"RFC 4862 5.5.3 d: a delegation longer than /64 has no /64 to announce", func(st *state.State) {
			st.Delegated = delegation(t0)
			st.Delegated.Prefix = netip.MustParsePrefix("2001:db8:1000:100::/80")
		}, true, time.Hour, onLinkULA64},
		{"no delegation yet: the ULA waits for the hold-off, a delegation may be on its way", func(*state.State) {}, true, OnLinkHoldoff - time.Second, netip.Prefix{}},
		{"no delegation after the hold-off: subnet 0x64 of the ULA", func(*state.State) {}, true, OnLinkHoldoff, onLinkULA64},
		{"the ULA /64 in force stays without a new hold-off (a link flap)", func(st *state.State) {
			st.OnLink = onLinkULA64
			st.WAN.LinkUpSince = t0.Add(time.Hour)
		}, true, time.Hour, onLinkULA64},
		{"port down since start: no hold-off has run", func(st *state.State) {
			st.WAN = state.WAN{}
		}, true, time.Hour, netip.Prefix{}},
		{"RFC 4193: no ULA, no delegation: nothing to announce", func(st *state.State) {
			st.ULA = netip.Prefix{}
		}, true, time.Hour, netip.Prefix{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := existingState()
			tc.change(st)
			if got := OnLinkPrefix(st, tc.existing, t0.Add(tc.at)); got != tc.want {
				t.Errorf("OnLinkPrefix = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestDeriveOnLink follows a one-port gizmo through a start without a
// delegation, a delegation that arrives, one that changes, and its loss.
func TestDeriveOnLink(t *testing.T) {
	st := existingState()
	s := Settings{ExistingNetwork: true}
	step := func(name string, at time.Duration, want netip.Prefix, withdrawn ...netip.Prefix) {
		t.Helper()
		now := t0.Add(at)
		Derive(st, s, now)
		if st.OnLink != want {
			t.Errorf("%s: OnLink = %v, want %v", name, st.OnLink, want)
		}
		var got []netip.Prefix
		for _, w := range st.OnLinkWithdrawn {
			got = append(got, w.Prefix)
			if !w.Until.After(now) || w.Until.After(now.Add(MaxRetiredValid)) {
				t.Errorf("%s: %v withdrawn until %v; want within ND_VALID_LIMIT of %v", name, w.Prefix, w.Until, now)
			}
		}
		if len(got) != len(withdrawn) {
			t.Errorf("%s: withdrawn %v, want %v", name, got, withdrawn)
			return
		}
		for i := range got {
			if got[i] != withdrawn[i] {
				t.Errorf("%s: withdrawn %v, want %v", name, got, withdrawn)
			}
		}
	}
	step("hold-off", time.Second, netip.Prefix{})
	if st.Pref64Source != state.Pref64Default || st.LAN.DNS.RDNSS != state.DNSAddrsIn(onLinkULA, netip.Prefix{}).RDNSS {
		t.Errorf("before an on-link /64: PREF64 %v (%s), RDNSS %v; want the defaults", st.Pref64, st.Pref64Source, st.LAN.DNS.RDNSS)
	}
	step("ULA after the hold-off", OnLinkHoldoff, onLinkULA64)
	if st.Pref64 != netip.MustParsePrefix("fd12:3456:789a:64::/96") || st.Pref64Source != state.Pref64OnLink {
		t.Errorf("RFC 6052 2.2: PREF64 %v (%s), want the /96 in the on-link /64", st.Pref64, st.Pref64Source)
	}
	if want := netip.MustParseAddr("fd12:3456:789a:64:1::53"); st.LAN.DNS.RDNSS != want {
		t.Errorf("RDNSS %v, want %v in the on-link /64", st.LAN.DNS.RDNSS, want)
	}
	if want := netip.MustParseAddr("fd12:3456:789a::35"); st.LAN.DNS.DHCPv6 != want {
		t.Errorf("DHCPv6 DNS %v, want %v: only the RDNSS address moves", st.LAN.DNS.DHCPv6, want)
	}

	NewDelegation(st, *delegation(t0), t0.Add(time.Minute))
	step("RFC 4861 6.3.4: a delegation arrives, the ULA /64 is withdrawn", time.Minute, onLinkDelegate, onLinkULA64)
	if st.Pref64 != netip.MustParsePrefix("2001:db8:1000:100::/96") || st.LAN.DNS.RDNSS != netip.MustParseAddr("2001:db8:1000:100:1::53") {
		t.Errorf("PREF64 %v, RDNSS %v: want both in the delegated /64", st.Pref64, st.LAN.DNS.RDNSS)
	}

	changed := state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:2000::/56"), PreferredUntil: t0.Add(time.Hour), ValidUntil: t0.Add(2 * time.Hour)}
	NewDelegation(st, changed, t0.Add(2*time.Minute))
	step("the delegation changes: the old /64 is withdrawn too", 2*time.Minute,
		netip.MustParsePrefix("2001:db8:2000::/64"), onLinkULA64, onLinkDelegate)

	LostDelegation(st, changed.Prefix, t0.Add(3*time.Minute))
	step("the delegation is lost: back to the ULA at once, which is no longer withdrawn", 3*time.Minute,
		onLinkULA64, onLinkDelegate, netip.MustParsePrefix("2001:db8:2000::/64"))

	step("ND_VALID_LIMIT later nothing is withdrawn any more", 3*time.Minute+MaxRetiredValid, onLinkULA64)
}

func TestDeriveOnLinkFlagWins(t *testing.T) {
	st := existingState()
	flagged := netip.MustParsePrefix("2001:db8:46::/96")
	Derive(st, Settings{ExistingNetwork: true, Pref64: flagged}, t0.Add(OnLinkHoldoff))
	if st.Pref64 != flagged || st.Pref64Source != state.Pref64Flag {
		t.Errorf("-pref64 %v: PREF64 %v (%s), want the flag's", flagged, st.Pref64, st.Pref64Source)
	}
	if st.OnLink != onLinkULA64 || st.LAN.DNS.RDNSS != state.OnLinkDNS(onLinkULA64) {
		t.Errorf("with -pref64 the DNS64 still sits in the on-link /64: OnLink %v, RDNSS %v", st.OnLink, st.LAN.DNS.RDNSS)
	}
	Derive(st, Settings{}, t0.Add(time.Hour))
	if st.OnLink.IsValid() || st.LAN.DNS.RDNSS != state.DNSAddrsIn(onLinkULA, netip.Prefix{}).RDNSS {
		t.Errorf("outside the existing-network mode: OnLink %v, RDNSS %v", st.OnLink, st.LAN.DNS.RDNSS)
	}
}
