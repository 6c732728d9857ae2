package ra

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
)

func TestMessage(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x53, 0x01}
	lan := netip.MustParsePrefix("2001:db8:1000::/64")
	for _, tc := range []struct {
		name string
		plan Plan
		want *ndp.RouterAdvertisement
	}{
		{
			name: "RFC 9096 3.4: PIO lifetimes are the smaller of the cap and the time left",
			plan: Plan{
				RouterLifetime: 2700 * time.Second,
				HopLimit:       64,
				Prefixes: []Prefix{{
					Prefix: lan, OnLink: true, Autonomous: true,
					PreferredUntil: now.Add(1000*time.Second + 700*time.Millisecond),
					ValidUntil:     now.Add(time.Hour * 10),
					MaxPreferred:   2700 * time.Second, MaxValid: 5400 * time.Second,
				}},
			},
			want: &ndp.RouterAdvertisement{
				CurrentHopLimit: 64, RouterLifetime: 2700 * time.Second,
				Options: []ndp.Option{&ndp.PrefixInformation{
					PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true,
					PreferredLifetime: 1000 * time.Second, ValidLifetime: 5400 * time.Second,
					Prefix: lan.Addr(),
				}},
			},
		},
		{
			name: "RFC 9096 3.5: past deadlines give lifetime 0, never a negative one",
			plan: Plan{Prefixes: []Prefix{{
				Prefix: lan, OnLink: true, Autonomous: true,
				PreferredUntil: now.Add(-time.Hour), ValidUntil: now.Add(-time.Second),
				MaxPreferred: 2700 * time.Second, MaxValid: 5400 * time.Second,
			}}},
			want: &ndp.RouterAdvertisement{Options: []ndp.Option{&ndp.PrefixInformation{
				PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true, Prefix: lan.Addr(),
			}}},
		},
		{
			name: "RFC 4862 5.5.3c: preferred lifetime never exceeds valid lifetime",
			plan: Plan{Prefixes: []Prefix{{
				Prefix: lan, OnLink: true, Autonomous: true,
				ValidUntil:   now.Add(100 * time.Second),
				MaxPreferred: 2700 * time.Second, MaxValid: 5400 * time.Second,
			}}},
			want: &ndp.RouterAdvertisement{Options: []ndp.Option{&ndp.PrefixInformation{
				PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true,
				PreferredLifetime: 100 * time.Second, ValidLifetime: 100 * time.Second, Prefix: lan.Addr(),
			}}},
		},
		{
			name: "RFC 4191 2.2: a router that is not a default router sends medium preference",
			plan: Plan{RouterPreference: High},
			want: &ndp.RouterAdvertisement{RouterSelectionPreference: ndp.Medium},
		},
		{
			name: "RFC 4861 4.6.4: MTU below the IPv6 minimum is not advertised; options in order",
			plan: Plan{
				RouterLifetime: 1800 * time.Second, RouterPreference: High, Other: true,
				SourceLinkLayer: mac, MTU: 1000,
				Routes: []Route{{Prefix: netip.MustParsePrefix("fd00:1::/48"), Lifetime: time.Hour}},
				RDNSS:  []netip.Addr{netip.MustParseAddr("fd00:1::53"), netip.MustParseAddr("192.0.2.1")},
				DNSSL:  []string{"home.arpa"}, DNSSLLifetime: time.Hour, RDNSSLifetime: time.Hour,
				Pref64: netip.MustParsePrefix("2001:db8:64::/96"), Pref64Lifetime: 1801 * time.Second,
			},
			want: &ndp.RouterAdvertisement{
				OtherConfiguration: true, RouterSelectionPreference: ndp.High, RouterLifetime: 1800 * time.Second,
				Options: []ndp.Option{
					&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac},
					&ndp.RouteInformation{PrefixLength: 48, RouteLifetime: time.Hour, Prefix: netip.MustParseAddr("fd00:1::")},
					&ndp.RecursiveDNSServer{Lifetime: time.Hour, Servers: []netip.Addr{netip.MustParseAddr("fd00:1::53")}},
					&ndp.DNSSearchList{Lifetime: time.Hour, DomainNames: []string{"home.arpa"}},
					&ndp.PREF64{Lifetime: 1800 * time.Second, Prefix: netip.MustParsePrefix("2001:db8:64::/96")},
				},
			},
		},
		{
			name: "RFC 4861 6.3.4: an on-link prefix without SLAAC (L=1, A=0)",
			plan: Plan{Prefixes: []Prefix{{
				Prefix: lan, OnLink: true, MaxPreferred: 30 * time.Second, MaxValid: 30 * time.Second,
			}}},
			want: &ndp.RouterAdvertisement{Options: []ndp.Option{&ndp.PrefixInformation{
				PrefixLength: 64, OnLink: true, PreferredLifetime: 30 * time.Second, ValidLifetime: 30 * time.Second, Prefix: lan.Addr(),
			}}},
		},
		{
			name: "RFC 8106 5.1, RFC 8781 4: withdrawn DNS servers and NAT64 prefixes go out with lifetime 0, each in an option of its own",
			plan: Plan{
				RDNSS: []netip.Addr{netip.MustParseAddr("2001:db8:1000::1:0:0:53")}, RDNSSLifetime: time.Hour,
				RDNSSWithdrawn: []netip.Addr{netip.MustParseAddr("fd00:1:0:64:1::53"), netip.MustParseAddr("2001:db8:1000::1:0:0:53")},
				Pref64:         netip.MustParsePrefix("2001:db8:1000::/96"), Pref64Lifetime: time.Hour,
				Pref64Withdrawn: []netip.Prefix{netip.MustParsePrefix("fd00:1:0:64::/96"), netip.MustParsePrefix("2001:db8:1000::/96")},
			},
			want: &ndp.RouterAdvertisement{Options: []ndp.Option{
				&ndp.RecursiveDNSServer{Lifetime: time.Hour, Servers: []netip.Addr{netip.MustParseAddr("2001:db8:1000::1:0:0:53")}},
				&ndp.RecursiveDNSServer{Servers: []netip.Addr{netip.MustParseAddr("fd00:1:0:64:1::53")}},
				&ndp.PREF64{Lifetime: time.Hour, Prefix: netip.MustParsePrefix("2001:db8:1000::/96")},
				&ndp.PREF64{Prefix: netip.MustParsePrefix("fd00:1:0:64::/96")},
			}},
		},
		{
			name: "RFC 8781 4: a PREF64 of a length it cannot encode is left out",
			plan: Plan{MTU: 1500, Pref64: netip.MustParsePrefix("2001:db8:64::/80")},
			want: &ndp.RouterAdvertisement{Options: []ndp.Option{ndp.NewMTU(1500)}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.plan.Message(now)
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("RA (-want +got):\n%s", diff)
			}
			if _, err := ndp.MarshalMessage(got); err != nil {
				t.Errorf("RA cannot be encoded: %v", err)
			}
		})
	}
}

func TestInterval(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  time.Duration
		want time.Duration
	}{
		{"RFC 4861 6.2.1: default MaxRtrAdvInterval is 600 s", 0, 600 * time.Second},
		{"RFC 4861 6.2.1: MaxRtrAdvInterval no less than 4 s", time.Second, 4 * time.Second},
		{"RFC 4861 6.2.1: MaxRtrAdvInterval no greater than 1800 s", time.Hour, 1800 * time.Second},
		{"RFC 4861 6.2.1: a value in range is kept", 10 * time.Second, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Plan{MaxInterval: tc.max}).Interval(); got != tc.want {
				t.Errorf("Interval() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestWithdrawn checks the final RA of a plan that withdraws everything on
// stop: every lifetime 0, the same prefixes, routes, DNS servers and
// NAT64 prefixes.
func TestWithdrawn(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	onLink := netip.MustParsePrefix("2001:db8:1000::/64")
	dns := netip.MustParseAddr("2001:db8:1000:0:1::53")
	pref64 := netip.MustParsePrefix("2001:db8:1000::/96")
	old := netip.MustParsePrefix("fd00:1:0:64::/96")
	p := Plan{
		WithdrawOnStop: true,
		Prefixes:       []Prefix{{Prefix: onLink, OnLink: true, MaxPreferred: time.Minute, MaxValid: time.Minute}},
		Routes:         []Route{{Prefix: pref64, Lifetime: time.Hour}},
		RDNSS:          []netip.Addr{dns}, RDNSSLifetime: time.Minute,
		RDNSSWithdrawn: []netip.Addr{netip.MustParseAddr("fd00:1:0:64:1::53")},
		DNSSL:          []string{"home.arpa"}, DNSSLLifetime: time.Minute,
		Pref64: pref64, Pref64Lifetime: time.Minute,
		Pref64Withdrawn: []netip.Prefix{old},
	}
	want := &ndp.RouterAdvertisement{Options: []ndp.Option{
		&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, Prefix: onLink.Addr()},
		&ndp.RouteInformation{PrefixLength: 96, Prefix: pref64.Addr()},
		&ndp.RecursiveDNSServer{Servers: []netip.Addr{dns, netip.MustParseAddr("fd00:1:0:64:1::53")}},
		&ndp.DNSSearchList{DomainNames: []string{"home.arpa"}},
		&ndp.PREF64{Prefix: pref64},
		&ndp.PREF64{Prefix: old},
	}}
	got := p.Withdrawn().Message(now)
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("RFC 4861 6.3.4, RFC 4191 2.3, RFC 8106 5.1, RFC 8781 4: final RA (-want +got):\n%s", diff)
	}
	if _, err := ndp.MarshalMessage(got); err != nil {
		t.Errorf("final RA cannot be encoded: %v", err)
	}
	if p.Prefixes[0].MaxValid != time.Minute || p.Routes[0].Lifetime != time.Hour {
		t.Error("Withdrawn changed the plan it was made from")
	}
}
