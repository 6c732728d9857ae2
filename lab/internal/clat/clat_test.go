package clat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
)

func pio(p string, preferred time.Duration, auto bool) *ndp.PrefixInformation {
	pp := netip.MustParsePrefix(p)
	return &ndp.PrefixInformation{
		PrefixLength:                   uint8(pp.Bits()),
		OnLink:                         true,
		AutonomousAddressConfiguration: auto,
		ValidLifetime:                  2 * time.Hour,
		PreferredLifetime:              preferred,
		Prefix:                         pp.Addr(),
	}
}

func pref64(p string, lt time.Duration) *ndp.PREF64 {
	return &ndp.PREF64{Lifetime: lt, Prefix: netip.MustParsePrefix(p)}
}

func TestChoose(t *testing.T) {
	nsp := "2001:db8:64::/96"
	for _, tc := range []struct {
		name string
		opts []ndp.Option
		want Translation
		ok   bool
	}{
		{
			name: "PREF64 and a global SLAAC /64 give the CLAT address",
			opts: []ndp.Option{pio("2001:db8:1000::/64", time.Hour, true), pref64(nsp, time.Hour)},
			want: Translation{Pref64: netip.MustParsePrefix(nsp), Prefix: netip.MustParsePrefix("2001:db8:1000::/64"),
				CLATAddr: netip.MustParseAddr("2001:db8:1000::c1a7")},
			ok: true,
		},
		{
			name: "RFC 8781 §4: PREF64 with lifetime 0 is not used",
			opts: []ndp.Option{pio("2001:db8:1000::/64", time.Hour, true), pref64(nsp, 0)},
		},
		{
			name: "no PREF64, no CLAT",
			opts: []ndp.Option{pio("2001:db8:1000::/64", time.Hour, true)},
		},
		{
			name: "RFC 9096: a deprecated prefix is skipped for the new one",
			opts: []ndp.Option{pio("2001:db8:1000::/64", 0, true), pio("2001:db8:1100::/64", time.Hour, true), pref64(nsp, time.Hour)},
			want: Translation{Pref64: netip.MustParsePrefix(nsp), Prefix: netip.MustParsePrefix("2001:db8:1100::/64"),
				CLATAddr: netip.MustParseAddr("2001:db8:1100::c1a7")},
			ok: true,
		},
		{
			name: "global beats ULA; non-autonomous prefixes are not for SLAAC",
			opts: []ndp.Option{pio("fd00:1:2:3::/64", time.Hour, true), pio("2001:db8:1200::/64", time.Hour, false),
				pio("2001:db8:1000::/64", time.Hour, true), pref64(nsp, time.Hour)},
			want: Translation{Pref64: netip.MustParsePrefix(nsp), Prefix: netip.MustParsePrefix("2001:db8:1000::/64"),
				CLATAddr: netip.MustParseAddr("2001:db8:1000::c1a7")},
			ok: true,
		},
		{
			name: "ULA only",
			opts: []ndp.Option{pio("fd00:1:2:3::/64", time.Hour, true), pref64(nsp, time.Hour)},
			want: Translation{Pref64: netip.MustParsePrefix(nsp), Prefix: netip.MustParsePrefix("fd00:1:2:3::/64"),
				CLATAddr: netip.MustParseAddr("fd00:1:2:3::c1a7")},
			ok: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Choose(&ndp.RouterAdvertisement{Options: tc.opts})
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("Choose (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTaygaConf(t *testing.T) {
	got := TaygaConf("clat", Translation{
		Pref64:   netip.MustParsePrefix("2001:db8:64::/96"),
		CLATAddr: netip.MustParseAddr("2001:db8:1000::c1a7"),
	})
	want := `# gizmo lab CLAT (written by lab/internal/clat)
tun-device clat
ipv4-addr 192.0.0.2
prefix 2001:db8:64::/96
map 192.0.0.1 2001:db8:1000::c1a7
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TaygaConf (-want +got):\n%s", diff)
	}
}

// TestMerge: on an existing network the router's RA has the /64 and the
// gizmo's the PREF64 (and an on-link /64 without SLAAC, which is no CLAT
// prefix); together they give the translation, and a router's newer RA
// replaces its older one.
func TestMerge(t *testing.T) {
	router := netip.MustParseAddr("fe80::ff:fe00:101")
	gizmo := netip.MustParseAddr("fe80::ff:fe00:201")
	nsp := "2001:db8:1000:100::/96"
	latest := map[netip.Addr]*ndp.RouterAdvertisement{
		router: {Options: []ndp.Option{pio("2001:db8:0:1::/64", time.Hour, true)}},
		gizmo:  {Options: []ndp.Option{pio("2001:db8:1000:100::/64", time.Minute, false), pref64(nsp, time.Minute)}},
	}
	for _, ra := range latest {
		if _, ok := Choose(ra); ok {
			t.Fatalf("one router's RA alone gives a translation: %+v", ra)
		}
	}
	got, ok := Choose(Merge(latest))
	want := Translation{Pref64: netip.MustParsePrefix(nsp), Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"),
		CLATAddr: netip.MustParseAddr("2001:db8:0:1::c1a7")}
	if !ok || got != want {
		t.Errorf("Choose(Merge) = %+v, %v; want %+v", got, ok, want)
	}
	// RFC 8781 §4: the gizmo withdraws its PREF64 (lifetime 0).
	latest[gizmo] = &ndp.RouterAdvertisement{Options: []ndp.Option{pio("2001:db8:1000:100::/64", 0, false), pref64(nsp, 0)}}
	if got, ok := Choose(Merge(latest)); ok {
		t.Errorf("translation %+v after the PREF64 was withdrawn", got)
	}
}
