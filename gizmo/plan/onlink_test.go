package plan

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/lanif"
	"codeberg.org/monostack/gizmo/services/nsresponder"
	"codeberg.org/monostack/gizmo/services/ra"
	"github.com/google/go-cmp/cmp"
)

var (
	onLink     = netip.MustParsePrefix("2001:db8:1000:100::/64")
	onLinkNAT  = netip.MustParsePrefix("2001:db8:1000:100::/96")
	onLinkDNS  = netip.MustParseAddr("2001:db8:1000:100:1::53")
	onLinkOld  = netip.MustParsePrefix("fd12:3456:789a:64::/64")
	existingIP = netip.MustParsePrefix("192.0.2.101/24")
)

// existingState is a one-port gizmo on an existing network as gizmo/derive
// leaves it: a /56 delegated, its first /64 on-link with the NAT64 /96 and
// the DNS64 address in it, a valid IPv4 lease, the network's router with
// a default route.
func existingState() *state.State {
	st := raState()
	st.WAN.IPv4 = &state.IPv4Lease{Addr: existingIP, Expires: raNow.Add(time.Hour)}
	st.WAN.Addrs = []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1:0:ff:fe00:201/64")}
	st.Delegated.Prefix = netip.MustParsePrefix("2001:db8:1000:100::/56")
	st.OnLink = onLink
	st.Pref64, st.Pref64Source = onLinkNAT, state.Pref64OnLink
	st.LAN.DNS.RDNSS = onLinkDNS
	return st
}

// existingWant is the RA plan for existingState with a 10 s interval.
func existingWant() ra.Plan {
	return ra.Plan{
		MaxInterval:    10 * time.Second,
		HopLimit:       64,
		WithdrawOnStop: true,
		Prefixes:       []ra.Prefix{{Prefix: onLink, OnLink: true, MaxPreferred: 30 * time.Second, MaxValid: 30 * time.Second}},
		Routes: []ra.Route{
			{Prefix: raULA, Lifetime: 2700 * time.Second},
			{Prefix: onLinkNAT, Lifetime: 2700 * time.Second},
		},
		RDNSS: []netip.Addr{onLinkDNS}, RDNSSLifetime: 30 * time.Second,
		Pref64: onLinkNAT, Pref64Lifetime: 30 * time.Second,
		MTU:             1500,
		SourceLinkLayer: raMAC,
	}
}

func TestExistingNetworkRA(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state func(*state.State)
		want  func(*ra.Plan)
	}{
		{
			name: "RFC 4861 6.3.4: router lifetime 0 with the network's router up; the NAT64's /64 on-link with A=0, RDNSS in it, PREF64, RIOs",
		},
		{
			name:  "RFC 4861 6.3.4: the NAT64 stops (IPv4 lease gone): the on-link /64, its RIO, RDNSS and PREF64 go out with lifetime 0",
			state: func(s *state.State) { s.WAN.IPv4.Expires = raNow },
			want: func(p *ra.Plan) {
				p.Prefixes[0].MaxPreferred, p.Prefixes[0].MaxValid = 0, 0
				p.Routes[1].Lifetime = 0
				p.RDNSSLifetime, p.Pref64Lifetime = 0, 0
			},
		},
		{
			name:  "RFC 7084 G-4's reasoning: the one port down, nothing to translate to",
			state: func(s *state.State) { s.WAN.Up = false },
			want: func(p *ra.Plan) {
				p.Prefixes[0].MaxPreferred, p.Prefixes[0].MaxValid = 0, 0
				p.Routes[1].Lifetime = 0
				p.RDNSSLifetime, p.Pref64Lifetime = 0, 0
			},
		},
		{
			name: "no on-link /64 chosen yet: no NAT64 or DNS64 that would change a moment later",
			state: func(s *state.State) {
				s.OnLink = netip.Prefix{}
				s.Pref64, s.Pref64Source = state.WellKnownPref64, state.Pref64Default
				s.LAN.DNS = raDNS
			},
			want: func(p *ra.Plan) {
				p.Prefixes, p.Routes = nil, p.Routes[:1]
				p.RDNSS, p.RDNSSLifetime = nil, 0
				p.Pref64, p.Pref64Lifetime = netip.Prefix{}, 0
			},
		},
		{
			name: "RFC 8781: the network's router runs the NAT64: its PREF64 is its own to advertise; the DNS64 stays on-link",
			state: func(s *state.State) {
				s.Pref64, s.Pref64Source = netip.MustParsePrefix("2001:db8:46::/96"), state.Pref64Upstream
			},
			want: func(p *ra.Plan) {
				p.Routes = p.Routes[:1]
				p.Pref64, p.Pref64Lifetime = netip.Prefix{}, 0
			},
		},
		{
			name: "-pref64 outside the on-link /64: its RIO is the way there; the DNS64 stays on-link",
			state: func(s *state.State) {
				s.Pref64, s.Pref64Source = raPref64, state.Pref64Flag
			},
			want: func(p *ra.Plan) {
				p.Routes[1].Prefix = raPref64
				p.Pref64 = raPref64
			},
		},
		{
			name: "RFC 4861 6.3.4, RFC 8106 5.1, RFC 8781 4: a withdrawn /64 goes out with lifetime 0, with its /96's RIO, DNS address and PREF64",
			state: func(s *state.State) {
				s.OnLinkWithdrawn = []state.WithdrawnPrefix{
					{Prefix: onLinkOld, Until: raNow.Add(time.Hour)},
					{Prefix: netip.MustParsePrefix("2001:db8:2000::/64"), Until: raNow},
				}
			},
			want: func(p *ra.Plan) {
				p.Prefixes = append(p.Prefixes, ra.Prefix{Prefix: onLinkOld, OnLink: true})
				p.Routes = append(p.Routes, ra.Route{Prefix: netip.MustParsePrefix("fd12:3456:789a:64::/96")})
				p.RDNSSWithdrawn = []netip.Addr{netip.MustParseAddr("fd12:3456:789a:64:1::53")}
				p.Pref64Withdrawn = []netip.Prefix{netip.MustParsePrefix("fd12:3456:789a:64::/96")}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := edited(existingState(), tc.state)
			want := existingWant()
			edited(&want, tc.want)
			checkRA(t, RA(st, RAOptions{MaxInterval: 10 * time.Second, ExistingNetwork: true}, raNow), want)
		})
	}
}

// TestExistingNetworkRALifetimes: RFC 8106 5.1's 3 x MaxRtrAdvInterval
// for the on-link PIO too, within RFC 9096 3.4's ND_VALID_LIMIT.
func TestExistingNetworkRALifetimes(t *testing.T) {
	st := existingState()
	p := RA(st, RAOptions{MaxInterval: 1800 * time.Second, ExistingNetwork: true}, raNow)
	if pio := p.Prefixes[0]; pio.MaxValid != 5400*time.Second || pio.MaxPreferred != pio.MaxValid || pio.Autonomous || !pio.OnLink {
		t.Errorf("on-link PIO %+v, want L=1 A=0 and 5400 s", pio)
	}
}

func TestNSResponder(t *testing.T) {
	for _, tc := range []modeCase[nsresponder.Plan]{
		{"RFC 4861 7.2.4: the NAT64 /96 in the on-link /64 is answered, as a router's", nil, true,
			nsresponder.Plan{Prefixes: []netip.Prefix{onLinkNAT}, Router: true}},
		{"a router's LAN reaches the NAT64 by its default route", nil, false, nsresponder.Plan{}},
		{"no on-link /64 yet", func(s *state.State) { s.OnLink = netip.Prefix{} }, true, nsresponder.Plan{}},
		{"the NAT64 stopped (IPv4 lease gone): nothing to send there", func(s *state.State) { s.WAN.IPv4 = nil }, true, nsresponder.Plan{}},
		{"-pref64 outside the on-link /64: reached by RIO, not answered", func(s *state.State) {
			s.Pref64, s.Pref64Source = raPref64, state.Pref64Flag
		}, true, nsresponder.Plan{}},
		{"-pref64 inside the on-link /64 is answered", func(s *state.State) {
			s.Pref64, s.Pref64Source = netip.MustParsePrefix("2001:db8:1000:100:0:64::/96"), state.Pref64Flag
		}, true, nsresponder.Plan{Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000:100:0:64::/96")}, Router: true}},
		{"RFC 6052 2.2: a /48 NAT64 prefix holding the /64 is never answered whole", func(s *state.State) {
			s.Pref64, s.Pref64Source = netip.MustParsePrefix("2001:db8:1000::/48"), state.Pref64Flag
		}, true, nsresponder.Plan{}},
		{"RFC 8781: the network's router translates", func(s *state.State) {
			s.Pref64, s.Pref64Source = netip.MustParsePrefix("2001:db8:1000:100::/96"), state.Pref64Upstream
		}, true, nsresponder.Plan{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := edited(existingState(), tc.edit)
			if diff := cmp.Diff(tc.want, NSResponder(st, tc.existing, raNow), pfxCmp); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExistingNetworkLANOnLink(t *testing.T) {
	st := existingState()
	got := ExistingNetworkLAN(st, raNow).Addrs
	dns := lanif.Addr{Prefix: netip.PrefixFrom(onLinkDNS, 64), NoPrefixRoute: true}
	if !slices.Contains(got, dns) {
		t.Errorf("LAN plan %v: want the DNS64's %v without the /64's route", got, dns)
	}
	for _, a := range got {
		if onLinkNAT.Contains(a.Prefix.Addr()) {
			t.Errorf("LAN plan holds %v inside the NAT64 /96", a.Prefix)
		}
		if onLink.Contains(a.Prefix.Addr()) && a != dns {
			t.Errorf("LAN plan holds %v in the on-link /64 besides the DNS64", a.Prefix)
		}
	}
	st.OnLink = netip.Prefix{}
	st.LAN.DNS = raDNS
	if slices.ContainsFunc(ExistingNetworkLAN(st, raNow).Addrs, func(a lanif.Addr) bool { return onLink.Contains(a.Prefix.Addr()) }) {
		t.Errorf("without an on-link /64 the LAN plan holds an address of the delegation")
	}
}
