package plan

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/ra"
	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
)

var (
	raNow    = time.Unix(1_700_000_000, 0)
	raULA    = netip.MustParsePrefix("fd12:3456:789a::/48")
	raPref64 = netip.MustParsePrefix("2001:db8:64::/96")
	raMAC    = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x53, 0x01}
	raDNS    = state.DNSAddrsIn(raULA, netip.MustParsePrefix("203.0.113.129/25"))
	addrCmp  = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	pfxCmp   = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })
)

// raState is a gizmo with a working uplink, a /56 delegation, a ULA and the
// lab's PREF64.
func raState() *state.State {
	return &state.State{
		WAN: state.WAN{
			Up:                  true,
			Router:              netip.MustParseAddr("fe80::1"),
			RouterLifetimeUntil: raNow.Add(30 * time.Minute),
		},
		LAN: state.LAN{MTU: 1500, HardwareAddr: raMAC, DNS: raDNS},
		Delegated: &state.DelegatedPrefix{
			Prefix:         netip.MustParsePrefix("2001:db8:1000:100::/56"),
			PreferredUntil: raNow.Add(time.Hour),
			ValidUntil:     raNow.Add(2 * time.Hour),
		},
		ULA:          raULA,
		Pref64:       raPref64,
		Pref64Source: state.Pref64Flag,
	}
}

// raWant is the plan for raState with the default interval.
func raWant() ra.Plan {
	return ra.Plan{
		RouterLifetime: 2700 * time.Second,
		HopLimit:       64,
		Other:          true,
		Prefixes: []ra.Prefix{
			{
				Prefix: netip.MustParsePrefix("2001:db8:1000:100::/64"), OnLink: true, Autonomous: true,
				PreferredUntil: raNow.Add(time.Hour), ValidUntil: raNow.Add(2 * time.Hour),
				MaxPreferred: 2700 * time.Second, MaxValid: 5400 * time.Second,
			},
			{
				Prefix: netip.MustParsePrefix("fd12:3456:789a::/64"), OnLink: true, Autonomous: true,
				MaxPreferred: 2700 * time.Second, MaxValid: 5400 * time.Second,
			},
		},
		Routes: []ra.Route{
			{Prefix: raULA, Lifetime: 2700 * time.Second},
			{Prefix: raPref64, Lifetime: 2700 * time.Second},
		},
		RDNSS: []netip.Addr{raDNS.RDNSS}, RDNSSLifetime: 1800 * time.Second,
		DNSSL: []string{"home.arpa"}, DNSSLLifetime: 1800 * time.Second,
		Pref64: raPref64, Pref64Lifetime: 1800 * time.Second,
		MTU:             1500,
		SourceLinkLayer: raMAC,
	}
}

func TestRA(t *testing.T) {
	retired := func(prefix string, validFor time.Duration) ra.Prefix {
		return ra.Prefix{
			Prefix: netip.MustParsePrefix(prefix), OnLink: true, Autonomous: true,
			ValidUntil: raNow.Add(validFor), MaxValid: 5400 * time.Second,
		}
	}
	for _, tc := range []struct {
		name  string
		state func(*state.State)
		opt   RAOptions
		want  func(*ra.Plan)
	}{
		{
			name: "RFC 9096 3.4: PIO for the first /64 of the delegation and the ULA /64, lifetimes capped, default router",
		},
		{
			name: "RFC 4861 6.2.1: a shorter MaxRtrAdvInterval shortens the RDNSS, DNSSL and PREF64 lifetimes (RFC 8106 5.1: 3 x interval)",
			opt:  RAOptions{MaxInterval: 10 * time.Second},
			want: func(p *ra.Plan) {
				p.MaxInterval = 10 * time.Second
				p.RDNSSLifetime, p.DNSSLLifetime, p.Pref64Lifetime = 30*time.Second, 30*time.Second, 30*time.Second
			},
		},
		{
			name: "RFC 9096 3.5: a retired prefix is advertised with preferred lifetime 0 until its valid lifetime runs out",
			state: func(s *state.State) {
				s.Retired = []state.DelegatedPrefix{{
					Prefix:         netip.MustParsePrefix("2001:db8:2000::/56"),
					PreferredUntil: raNow.Add(-time.Minute),
					ValidUntil:     raNow.Add(20 * time.Minute),
				}}
			},
			want: func(p *ra.Plan) {
				p.Prefixes = append(p.Prefixes, retired("2001:db8:2000::/64", 20*time.Minute))
			},
		},
		{
			name: "RFC 9096 3.5: an expired retired prefix is no longer advertised",
			state: func(s *state.State) {
				s.Retired = []state.DelegatedPrefix{{
					Prefix: netip.MustParsePrefix("2001:db8:2000::/56"), ValidUntil: raNow,
				}}
			},
		},
		{
			name: "odhcpd bug 387: a retired entry for the current delegation never deprecates it",
			state: func(s *state.State) {
				s.Retired = []state.DelegatedPrefix{
					{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), ValidUntil: raNow.Add(time.Hour)},
					{Prefix: netip.MustParsePrefix("2001:db8:2000::/56"), ValidUntil: raNow.Add(time.Hour)},
				}
			},
			want: func(p *ra.Plan) {
				p.Prefixes = append(p.Prefixes, retired("2001:db8:2000::/64", time.Hour))
			},
		},
		{
			name: "RFC 9096 3.5: when the delegation is gone, only the retired prefix and the ULA remain",
			state: func(s *state.State) {
				s.Retired = []state.DelegatedPrefix{{Prefix: s.Delegated.Prefix, ValidUntil: raNow.Add(time.Hour)}}
				s.Delegated = nil
			},
			want: func(p *ra.Plan) {
				p.Prefixes = append(p.Prefixes[1:], retired("2001:db8:1000:100::/64", time.Hour))
			},
		},
		{
			name: "RFC 4862 5.5.3: a delegation longer than /64 leaves no /64 for SLAAC and is not advertised",
			state: func(s *state.State) {
				s.Delegated.Prefix = netip.MustParsePrefix("2001:db8:1000:100::/80")
			},
			want: func(p *ra.Plan) { p.Prefixes = p.Prefixes[1:] },
		},
		{
			name: "RFC 9096 3.4: an expired delegation is not advertised",
			state: func(s *state.State) {
				s.Delegated.ValidUntil = raNow
			},
			want: func(p *ra.Plan) { p.Prefixes = p.Prefixes[1:] },
		},
		{
			name:  "RFC 7084 G-4: no default router on the WAN means router lifetime 0",
			state: func(s *state.State) { s.WAN.Router = netip.Addr{} },
			want:  noUpstream,
		},
		{
			name:  "RFC 7084 G-5: the WAN's default router expired means router lifetime 0",
			state: func(s *state.State) { s.WAN.RouterLifetimeUntil = raNow },
			want:  noUpstream,
		},
		{
			name:  "RFC 7084 G-5: a WAN link that is down means router lifetime 0",
			state: func(s *state.State) { s.WAN.Up = false },
			want:  noUpstream,
		},
		{
			name: "IPv4-only upstream: a live IPv4 lease with NAT64 makes the gizmo the default router",
			state: func(s *state.State) {
				s.WAN.Router = netip.Addr{}
				s.Delegated = nil
				s.WAN.IPv4 = &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24"), Expires: raNow.Add(time.Hour)}
			},
			want: func(p *ra.Plan) { p.Prefixes = p.Prefixes[1:] },
		},
		{
			name: "RFC 7084 G-4: an expired IPv4 lease is no upstream either",
			state: func(s *state.State) {
				s.WAN.Router = netip.Addr{}
				s.WAN.IPv4 = &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24"), Expires: raNow}
			},
			want: noUpstream,
		},
		{
			name:  "RFC 8106 5.1: no RDNSS option without a DNS address",
			state: func(s *state.State) { s.LAN.DNS = state.DNSAddrs{} },
			want:  func(p *ra.Plan) { p.RDNSS, p.RDNSSLifetime = nil, 0 },
		},
		{
			name:  "RFC 8781 4: no PREF64 option and no NAT64 route without a NAT64 prefix",
			state: func(s *state.State) { s.Pref64 = netip.Prefix{} },
			want: func(p *ra.Plan) {
				p.Pref64, p.Pref64Lifetime = netip.Prefix{}, 0
				p.Routes = p.Routes[:1]
			},
		},
		{
			name: "RFC 4193: no ULA PIO or RIO before the ULA exists",
			state: func(s *state.State) {
				s.ULA = netip.Prefix{}
			},
			want: func(p *ra.Plan) {
				p.Prefixes = p.Prefixes[:1]
				p.Routes = p.Routes[1:]
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := edited(raState(), tc.state)
			want := raWant()
			edited(&want, tc.want)
			checkRA(t, RA(st, tc.opt, raNow), want)
		})
	}
}

// edited is v after edit, a table case's change of its base value (none:
// v as it is).
func edited[T any](v *T, edit func(*T)) *T {
	if edit != nil {
		edit(v)
	}
	return v
}

// A modeCase is a table case of a plan that depends on the mode: the rule
// it checks (name), an edit of the test's base state, whether the gizmo is
// a guest on an existing network, and the plan the rule wants.
type modeCase[P any] struct {
	name     string
	edit     func(*state.State)
	existing bool
	want     P
}

// checkRA compares an RA plan with want and checks that it can be sent.
func checkRA(t *testing.T, got, want ra.Plan) {
	t.Helper()
	if diff := cmp.Diff(want, got, addrCmp, pfxCmp); diff != "" {
		t.Errorf("RA plan (-want +got):\n%s", diff)
	}
	if _, err := ndp.MarshalMessage(got.Message(raNow)); err != nil {
		t.Errorf("plan cannot be sent: %v", err)
	}
}

// noUpstream is the plan's answer to RFC 7084 G-4/G-5: not a default router,
// and no route to a NAT64 prefix that could not forward anything; prefixes
// and DNS stay, so LAN hosts keep talking to each other.
func noUpstream(p *ra.Plan) {
	p.RouterLifetime = 0
	p.Routes = p.Routes[:1]
}

// TestRALifetimesAtSendTime follows one plan through time: the lifetimes in
// each RA are what is left of the DHCPv6-PD lease when the RA is sent, never
// more (RFC 9096 §3.4, RFC 8415 §21.22).
func TestRALifetimesAtSendTime(t *testing.T) {
	st := raState()
	st.Delegated.PreferredUntil = raNow.Add(600 * time.Second)
	st.Delegated.ValidUntil = raNow.Add(1200 * time.Second)
	p := RA(st, RAOptions{}, raNow)
	for _, tc := range []struct {
		name             string
		after            time.Duration
		preferred, valid time.Duration
	}{
		{"RFC 9096 3.4: right after the Reply the whole lease is left", 0, 600 * time.Second, 1200 * time.Second},
		{"RFC 9096 3.4: later RAs carry what is left", 500 * time.Second, 100 * time.Second, 700 * time.Second},
		{"RFC 4862 5.5.3: past the preferred deadline the prefix is deprecated", 900 * time.Second, 0, 300 * time.Second},
		{"RFC 9096 3.4: past the valid deadline both lifetimes are 0", 1300 * time.Second, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := p.Message(raNow.Add(tc.after))
			var pio *ndp.PrefixInformation
			for _, o := range m.Options {
				if pi, ok := o.(*ndp.PrefixInformation); ok && pi.Prefix == netip.MustParseAddr("2001:db8:1000:100::") {
					pio = pi
				}
			}
			if pio == nil {
				t.Fatal("no PIO for the LAN /64")
			}
			if pio.PreferredLifetime != tc.preferred || pio.ValidLifetime != tc.valid {
				t.Errorf("lifetimes = %v/%v, want %v/%v", pio.PreferredLifetime, pio.ValidLifetime, tc.preferred, tc.valid)
			}
		})
	}
}
