package wan

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/mdlayher/ndp"
)

var (
	t0      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	router1 = netip.MustParseAddr("fe80::1")
	router2 = netip.MustParseAddr("fe80::2")
)

func ra(lifetime time.Duration, opts ...ndp.Option) *ndp.RouterAdvertisement {
	return &ndp.RouterAdvertisement{CurrentHopLimit: 64, RouterLifetime: lifetime, Options: opts}
}

func view(u *upstream, now time.Time) Upstream {
	var v Upstream
	u.fill(&v, now)
	return v
}

func TestUpstreamFromRA(t *testing.T) {
	u := newUpstream()
	u.linkMTU = 1500
	skipped := u.apply(ra(30*time.Minute,
		ndp.NewMTU(1492),
		&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true,
			ValidLifetime: 2 * time.Hour, PreferredLifetime: time.Hour, Prefix: netip.MustParseAddr("2001:db8:0:1::")},
		&ndp.RecursiveDNSServer{Lifetime: 10 * time.Minute, Servers: []netip.Addr{netip.MustParseAddr("2001:db8:0:1::53")}},
		&ndp.RouteInformation{PrefixLength: 48, Preference: ndp.High, RouteLifetime: time.Hour, Prefix: netip.MustParseAddr("2001:db8:ffff::")},
		&ndp.PREF64{Lifetime: 20 * time.Minute, Prefix: netip.MustParsePrefix("2001:db8:64::/96")},
	), router1, t0)
	if len(skipped) != 0 {
		t.Fatalf("skipped %v", skipped)
	}
	got := view(u, t0)
	want := Upstream{
		MTU:    1492,
		Router: router1, RouterLifetimeUntil: t0.Add(30 * time.Minute),
		Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"), OnLink: true, Autonomous: true,
			PreferredUntil: t0.Add(time.Hour), ValidUntil: t0.Add(2 * time.Hour)}},
		RDNSS:       []netip.Addr{netip.MustParseAddr("2001:db8:0:1::53")},
		Pref64:      netip.MustParsePrefix("2001:db8:64::/96"),
		Pref64Until: t0.Add(20 * time.Minute),
		Routes:      []Route{{Prefix: netip.MustParsePrefix("2001:db8:ffff::/48"), Preference: 1, ValidUntil: t0.Add(time.Hour)}},
	}
	if d := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); d != "" {
		t.Errorf("view (-want +got):\n%s", d)
	}

	// RFC 8106 §5.1 and RFC 4861 §6.3.4: each item expires on its own.
	later := view(u, t0.Add(15*time.Minute))
	if len(later.RDNSS) != 0 || !later.Pref64.IsValid() {
		t.Errorf("after 15 min: RDNSS %v (want expired), PREF64 %v (want kept)", later.RDNSS, later.Pref64)
	}
	if next := u.nextExpiry(t0); !next.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("next expiry %v, want the RDNSS lifetime", next.Sub(t0))
	}
	// A lifetime that already ended does not count as the next expiry,
	// or the service would wake up in a loop.
	u.apply(ra(0), router2, t0)
	if next := u.nextExpiry(t0); !next.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("next expiry %v with a zero-lifetime router, want the RDNSS lifetime", next.Sub(t0))
	}
	u.expire(t0.Add(31 * time.Minute))
	late := view(u, t0.Add(31*time.Minute))
	if late.Router.IsValid() || late.Pref64.IsValid() || len(late.Prefixes) != 1 {
		t.Errorf("after 31 min: router %v PREF64 %v prefixes %v", late.Router, late.Pref64, late.Prefixes)
	}
}

func TestUpstreamRules(t *testing.T) {
	pio := func(p string, pref, valid time.Duration) *ndp.PrefixInformation {
		pp := netip.MustParsePrefix(p)
		return &ndp.PrefixInformation{PrefixLength: uint8(pp.Bits()), OnLink: true, AutonomousAddressConfiguration: true,
			PreferredLifetime: pref, ValidLifetime: valid, Prefix: pp.Addr()}
	}
	tests := []struct {
		name    string
		ras     []*ndp.RouterAdvertisement
		srcs    []netip.Addr
		skipped []string
		check   func(t *testing.T, v Upstream)
	}{
		{
			name: "RFC 4862 5.5.3: PIO with preferred > valid is ignored",
			ras:  []*ndp.RouterAdvertisement{ra(time.Hour, pio("2001:db8:0:1::/64", 2*time.Hour, time.Hour))},
			srcs: []netip.Addr{router1}, skipped: []string{raBadPIO},
			check: noPrefixes,
		},
		{
			name: "RFC 4861 6.3.4: link-local PIO is ignored",
			ras:  []*ndp.RouterAdvertisement{ra(time.Hour, pio("fe80::/64", time.Hour, time.Hour))},
			srcs: []netip.Addr{router1}, skipped: []string{raLinkLocalPIO},
			check: noPrefixes,
		},
		{
			name: "RFC 4861 6.3.4: MTU below 1280 is ignored",
			ras:  []*ndp.RouterAdvertisement{ra(time.Hour, ndp.NewMTU(1000))},
			srcs: []netip.Addr{router1}, skipped: []string{raBadMTU},
			check: linkMTU,
		},
		{
			name: "RFC 4861 6.3.4: MTU above the link MTU is ignored",
			ras:  []*ndp.RouterAdvertisement{ra(time.Hour, ndp.NewMTU(9000))},
			srcs: []netip.Addr{router1}, skipped: []string{raBadMTU},
			check: linkMTU,
		},
		{
			name: "RFC 4861 6.3.4: an RA without an option keeps what an earlier RA said",
			ras: []*ndp.RouterAdvertisement{
				ra(time.Hour, rdnss53(time.Hour)),
				ra(time.Hour),
			},
			srcs:  []netip.Addr{router1, router1},
			check: rdnssCount(1),
		},
		{
			name: "RFC 8106 5.1: RDNSS lifetime 0 removes the server",
			ras: []*ndp.RouterAdvertisement{
				ra(time.Hour, rdnss53(time.Hour)),
				ra(time.Hour, rdnss53(0)),
			},
			srcs:  []netip.Addr{router1, router1},
			check: rdnssCount(0),
		},
		{
			name: "RFC 4191 2.3: route lifetime 0 removes the route",
			ras: []*ndp.RouterAdvertisement{
				ra(time.Hour, &ndp.RouteInformation{PrefixLength: 48, RouteLifetime: time.Hour, Prefix: netip.MustParseAddr("2001:db8:ffff::")}),
				ra(time.Hour, &ndp.RouteInformation{PrefixLength: 48, RouteLifetime: 0, Prefix: netip.MustParseAddr("2001:db8:ffff::")}),
			},
			srcs: []netip.Addr{router1, router1},
			check: func(t *testing.T, v Upstream) {
				if len(v.Routes) != 0 {
					t.Errorf("routes %v", v.Routes)
				}
			},
		},
		{
			name: "RFC 4861 4.6.2: PIO valid lifetime 0 removes the prefix",
			ras: []*ndp.RouterAdvertisement{
				ra(time.Hour, pio("2001:db8:0:1::/64", time.Hour, time.Hour)),
				ra(time.Hour, pio("2001:db8:0:1::/64", 0, 0)),
			},
			srcs:  []netip.Addr{router1, router1},
			check: noPrefixes,
		},
		{
			name: "RFC 8781 4: PREF64 lifetime 0 withdraws it",
			ras: []*ndp.RouterAdvertisement{
				ra(time.Hour, &ndp.PREF64{Lifetime: time.Hour, Prefix: netip.MustParsePrefix("2001:db8:64::/96")}),
				ra(time.Hour, &ndp.PREF64{Lifetime: 0, Prefix: netip.MustParsePrefix("2001:db8:64::/96")}),
			},
			srcs: []netip.Addr{router1, router1},
			check: func(t *testing.T, v Upstream) {
				if v.Pref64.IsValid() {
					t.Errorf("PREF64 %v", v.Pref64)
				}
			},
		},
		{
			name: "RFC 4861 6.3.4: router lifetime 0 is not a default router, but its options count",
			ras: []*ndp.RouterAdvertisement{
				ra(0, rdnss53(time.Hour)),
			},
			srcs: []netip.Addr{router1},
			check: func(t *testing.T, v Upstream) {
				if v.Router.IsValid() || len(v.RDNSS) != 1 {
					t.Errorf("router %v RDNSS %v", v.Router, v.RDNSS)
				}
			},
		},
		{
			name: "RFC 4191 2.2: the high-preference router is the default router",
			ras: []*ndp.RouterAdvertisement{
				{RouterLifetime: time.Hour, RouterSelectionPreference: ndp.High},
				{RouterLifetime: time.Hour, RouterSelectionPreference: ndp.Low},
			},
			srcs: []netip.Addr{router1, router2},
			check: func(t *testing.T, v Upstream) {
				if v.Router != router1 || v.RouterPreference != 1 {
					t.Errorf("router %v preference %d, want %v high", v.Router, v.RouterPreference, router1)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream()
			u.linkMTU = 1500
			var skipped []string
			for i, r := range tt.ras {
				for _, e := range u.apply(r, tt.srcs[i], t0) {
					skipped = append(skipped, reasonOf(e))
				}
			}
			if d := cmp.Diff(tt.skipped, skipped); d != "" {
				t.Errorf("skipped (-want +got):\n%s", d)
			}
			tt.check(t, view(u, t0))
		})
	}
}

func TestParseRA(t *testing.T) {
	good, err := ndp.MarshalMessage(ra(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := ndp.MarshalMessage(&ndp.RouterSolicitation{})
	tests := []struct {
		name   string
		b      []byte
		src    netip.Addr
		hop    int
		reason string
	}{
		{"RFC 4861 6.1.2: valid RA", good, router1, 255, ""},
		{"RFC 4861 6.1.2: source must be link-local", good, netip.MustParseAddr("2001:db8::1"), 255, raSourceNotLL},
		{"RFC 4861 6.1.2: hop limit must be 255", good, router1, 64, raHopLimit},
		{"RFC 4861 6.1.2: truncated RA", good[:10], router1, 255, raMalformed},
		{"not an RA", rs, router1, 255, raNotRA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseRA(tt.b, tt.src, tt.hop)
			if tt.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if reasonOf(err) != tt.reason {
				t.Errorf("err %v, want reason %s", err, tt.reason)
			}
		})
	}
}

func TestFromSelf(t *testing.T) {
	own := net.HardwareAddr{0x02, 0, 0, 0, 0x02, 0x01}
	other := net.HardwareAddr{0x02, 0, 0, 0, 0x01, 0x01}
	for _, tt := range []struct {
		name string
		ra   *ndp.RouterAdvertisement
		want bool
	}{
		{"the gizmo's own RA, looped back on the one port, carries its MAC", ra(0, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: own}), true},
		{"another router's RA", ra(time.Hour, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: other}), false},
		{"an RA without a source link-layer address", ra(time.Hour), false},
		{"a target link-layer address is no sender's", ra(time.Hour, &ndp.LinkLayerAddress{Direction: ndp.Target, Addr: own}), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := fromSelf(tt.ra, own); got != tt.want {
				t.Errorf("fromSelf = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzRA runs the whole RA path from bytes: validation, merge, view. It must
// not panic, the view must stay consistent, and the same RA from many
// sources must leave every table within its bound and every entry within
// MaxOptionLifetime.
func FuzzRA(f *testing.F) {
	for _, r := range []*ndp.RouterAdvertisement{
		ra(time.Hour, ndp.NewMTU(1492),
			&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true,
				ValidLifetime: 2 * time.Hour, PreferredLifetime: time.Hour, Prefix: netip.MustParseAddr("2001:db8:0:1::")},
			&ndp.RecursiveDNSServer{Lifetime: 10 * time.Minute, Servers: []netip.Addr{netip.MustParseAddr("2001:db8:0:1::53")}},
			&ndp.RouteInformation{PrefixLength: 48, Preference: ndp.High, RouteLifetime: time.Hour, Prefix: netip.MustParseAddr("2001:db8:ffff::")},
			&ndp.PREF64{Lifetime: 20 * time.Minute, Prefix: netip.MustParsePrefix("2001:db8:64::/96")}),
		ra(0, &ndp.RouteInformation{PrefixLength: 0, RouteLifetime: ndp.Infinity, Prefix: netip.IPv6Unspecified()}),
	} {
		b, err := ndp.MarshalMessage(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{134, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		u := newUpstream()
		u.linkMTU = 1500
		r, err := parseRA(b, router1, 255)
		if err != nil {
			return
		}
		u.apply(r, router1, t0)
		u.apply(r, router2, t0.Add(time.Second))
		for i := range 3 * MaxRouters {
			u.apply(r, llAddr(100+i), t0.Add(time.Second))
		}
		limits := map[string]int{tableRouters: MaxRouters, tablePrefixes: MaxPrefixes, tableRDNSS: MaxRDNSS, tableRoutes: MaxRoutes, tablePref64: MaxPref64}
		for table, n := range u.sizes() {
			if n > limits[table] {
				t.Fatalf("%s holds %d entries, bound %d", table, n, limits[table])
			}
		}
		if next := u.nextExpiry(t0.Add(time.Second)); next != farFuture && next.After(t0.Add(time.Second+MaxOptionLifetime)) {
			t.Fatalf("an entry lasts until %v, past MaxOptionLifetime", next)
		}
		for _, at := range []time.Time{t0, t0.Add(time.Hour), u.nextExpiry(t0)} {
			u.expire(at)
			v := view(u, at)
			if v.MTU < 1280 || v.MTU > 1500 {
				t.Fatalf("MTU %d outside 1280..1500", v.MTU)
			}
			for _, p := range v.Prefixes {
				if p.Prefix.Addr().IsLinkLocalUnicast() || p.PreferredUntil.After(p.ValidUntil) || !at.Before(p.ValidUntil) {
					t.Fatalf("bad prefix %+v at %v", p, at)
				}
			}
			if v.Pref64.IsValid() && v.Pref64.Bits() != 96 && v.Pref64.Bits()%8 != 0 {
				t.Fatalf("bad PREF64 %v", v.Pref64)
			}
		}
	})
}

// llAddr is the link-local address fe80::<i>, one attacker's source.
func llAddr(i int) netip.Addr {
	b := netip.MustParseAddr("fe80::").As16()
	b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return netip.AddrFrom16(b)
}

// gua is 2001:db8:<a>:<b>::<c>, a distinct global address per i.
func gua(i int) netip.Addr {
	b := netip.MustParseAddr("2001:db8::").As16()
	b[4], b[5], b[6], b[7], b[15] = byte(i>>8), byte(i), 0, 1, 0x53
	return netip.AddrFrom16(b)
}

// floodRA is what one source of an RA flood sends: a default route and
// one of each option, every lifetime infinite, all different per source.
func floodRA(i int) *ndp.RouterAdvertisement {
	p := gua(i).As16()
	return ra(time.Hour,
		&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true,
			ValidLifetime: ndp.Infinity, PreferredLifetime: ndp.Infinity, Prefix: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, p[4], p[5], 0, 2})},
		&ndp.RecursiveDNSServer{Lifetime: ndp.Infinity, Servers: []netip.Addr{gua(i)}},
		&ndp.RouteInformation{PrefixLength: 48, RouteLifetime: ndp.Infinity, Prefix: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, p[4], p[5]})},
		&ndp.PREF64{Lifetime: 8191 * 8 * time.Second, Prefix: netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, p[4], p[5], 0, 0x64}), 96)},
	)
}

// realRA is the real upstream router's RA.
func realRA() *ndp.RouterAdvertisement {
	return ra(30*time.Minute,
		ndp.NewMTU(1492),
		&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true,
			ValidLifetime: 2 * time.Hour, PreferredLifetime: time.Hour, Prefix: netip.MustParseAddr("2001:db8:0:1::")},
		&ndp.RecursiveDNSServer{Lifetime: 10 * time.Minute, Servers: []netip.Addr{netip.MustParseAddr("2001:db8:0:1::53")}},
		&ndp.RouteInformation{PrefixLength: 48, RouteLifetime: time.Hour, Prefix: netip.MustParseAddr("2001:db8:ffff::")},
		&ndp.PREF64{Lifetime: 20 * time.Minute, Prefix: netip.MustParsePrefix("2001:db8:64::/96")},
	)
}

func TestUpstreamBoundedUnderFlood(t *testing.T) {
	u := newUpstream()
	u.linkMTU = 1500
	u.apply(realRA(), router1, t0)
	const sources = 5000
	for i := range sources {
		at := t0.Add(time.Duration(i+1) * time.Millisecond)
		u.apply(floodRA(i+1000), llAddr(i+1000), at)
		if i%500 == 0 {
			// The real router keeps advertising through the flood.
			u.apply(realRA(), router1, at)
		}
	}
	now := t0.Add(10 * time.Second)
	u.expire(now)
	v := view(u, now)

	for table, limit := range map[string]int{tableRouters: MaxRouters, tablePrefixes: MaxPrefixes, tableRDNSS: MaxRDNSS, tableRoutes: MaxRoutes, tablePref64: MaxPref64} {
		if n := u.sizes()[table]; n != limit {
			t.Errorf("%s: %d entries, want the bound %d", table, n, limit)
		}
		// Every source beyond the bound cost an eviction or a refusal.
		if u.full[table] < sources-uint64(limit) {
			t.Errorf("%s: %d counted full, want at least %d", table, u.full[table], sources-limit)
		}
	}
	t.Run("RFC 4861 6.3.6: the real router stays the default router", func(t *testing.T) {
		if v.Router != router1 || v.MTU != 1492 {
			t.Errorf("router %v MTU %d, want %v and its MTU 1492", v.Router, v.MTU, router1)
		}
	})
	t.Run("the chosen router's options survive the flood", func(t *testing.T) {
		if len(v.RDNSS) == 0 || v.RDNSS[0] != netip.MustParseAddr("2001:db8:0:1::53") {
			t.Errorf("RDNSS %v, want the real router's first", v.RDNSS)
		}
		if v.Pref64 != netip.MustParsePrefix("2001:db8:64::/96") {
			t.Errorf("PREF64 %v, want the real router's", v.Pref64)
		}
		has := func(ps []Prefix, p string) bool {
			for _, x := range ps {
				if x.Prefix == netip.MustParsePrefix(p) {
					return true
				}
			}
			return false
		}
		if !has(v.Prefixes, "2001:db8:0:1::/64") {
			t.Errorf("prefixes %v lack the real router's", v.Prefixes)
		}
		found := false
		for _, r := range v.Routes {
			found = found || r.Prefix == netip.MustParsePrefix("2001:db8:ffff::/48")
		}
		if !found {
			t.Errorf("routes %v lack the real router's", v.Routes)
		}
	})
	t.Run("RFC 4861 4.6.2: infinite lifetimes are clamped to MaxOptionLifetime", func(t *testing.T) {
		for table := range map[string]bool{tablePrefixes: true, tableRDNSS: true, tableRoutes: true} {
			if u.clamped[table] == 0 {
				t.Errorf("%s: no lifetime counted as clamped", table)
			}
		}
		for _, p := range v.Prefixes {
			if p.ValidUntil.After(now.Add(MaxOptionLifetime)) || p.PreferredUntil.After(p.ValidUntil) {
				t.Errorf("prefix %v valid until %v, preferred until %v: beyond the clamp", p.Prefix, p.ValidUntil, p.PreferredUntil)
			}
		}
		for _, r := range v.Routes {
			if r.ValidUntil.After(now.Add(MaxOptionLifetime)) {
				t.Errorf("route %v valid until %v: beyond the clamp", r.Prefix, r.ValidUntil)
			}
		}
		// A day after the flood stopped, only what the real router
		// still announces is left.
		later := t0.Add(MaxOptionLifetime + time.Minute)
		u.apply(realRA(), router1, later)
		u.expire(later)
		if s := u.sizes(); s[tablePrefixes] != 1 || s[tableRDNSS] != 1 || s[tableRoutes] != 1 || s[tablePref64] != 1 {
			t.Errorf("a day after the flood: tables %v, want only the real router's entries", s)
		}
	})
}

func TestUpstreamBounds(t *testing.T) {
	rdnssRA := func(lifetime time.Duration, servers ...netip.Addr) *ndp.RouterAdvertisement {
		return ra(time.Hour, &ndp.RecursiveDNSServer{Lifetime: lifetime, Servers: servers})
	}
	t.Run("RFC 8106 5.3.1: a full table evicts another router's entry that ends first", func(t *testing.T) {
		u := newUpstream()
		u.apply(rdnssRA(time.Hour, gua(1)), router1, t0) // router1 is chosen
		for i := range MaxRDNSS - 1 {
			u.apply(ra(0, &ndp.RecursiveDNSServer{Lifetime: time.Duration(i+1) * time.Minute, Servers: []netip.Addr{gua(100 + i)}}), llAddr(100+i), t0)
		}
		u.apply(ra(0, &ndp.RecursiveDNSServer{Lifetime: time.Hour, Servers: []netip.Addr{gua(200)}}), llAddr(200), t0)
		if _, ok := u.rdnss[gua(100)]; ok {
			t.Error("the entry ending first is still there")
		}
		if _, ok := u.rdnss[gua(1)]; !ok {
			t.Error("the chosen router's entry was evicted")
		}
		if _, ok := u.rdnss[gua(200)]; !ok || u.full[tableRDNSS] != 1 {
			t.Errorf("the new entry: present %v, full counted %d", ok, u.full[tableRDNSS])
		}
	})
	t.Run("a stranger never displaces the chosen router's entries", func(t *testing.T) {
		u := newUpstream()
		var mine []netip.Addr
		for i := range MaxRDNSS {
			mine = append(mine, gua(i))
		}
		u.apply(rdnssRA(time.Hour, mine...), router1, t0)
		u.apply(rdnssRA(time.Hour, gua(99)), router2, t0)
		if _, ok := u.rdnss[gua(99)]; ok || len(u.rdnss) != MaxRDNSS || u.full[tableRDNSS] != 1 {
			t.Errorf("stranger admitted %v, table %d, full %d; want refused and counted", ok, len(u.rdnss), u.full[tableRDNSS])
		}
	})
	t.Run("the chosen router's own new entry replaces its own that ends first", func(t *testing.T) {
		u := newUpstream()
		for i := range MaxRDNSS {
			u.apply(rdnssRA(time.Duration(i+1)*time.Minute, gua(i)), router1, t0)
		}
		u.apply(rdnssRA(time.Hour, gua(99)), router1, t0)
		if _, ok := u.rdnss[gua(0)]; ok {
			t.Error("the chosen router's oldest entry stayed")
		}
		if _, ok := u.rdnss[gua(99)]; !ok {
			t.Error("the chosen router's new entry was refused")
		}
	})
	t.Run("RFC 4861 6.3.4: the router table keeps the chosen router and at least two", func(t *testing.T) {
		u := newUpstream()
		u.apply(ra(time.Hour), router1, t0)
		for i := range 100 {
			u.apply(ra(time.Hour), llAddr(1000+i), t0.Add(time.Duration(i+1)*time.Second))
		}
		if len(u.routers) != MaxRouters || u.routers[router1] == nil || u.chosen != router1 {
			t.Errorf("%d routers, router1 kept %v, chosen %v", len(u.routers), u.routers[router1] != nil, u.chosen)
		}
		if MaxRouters < 2 {
			t.Errorf("MaxRouters %d: RFC 4861 §6.3.4 says retain at least two", MaxRouters)
		}
	})
	t.Run("RFC 4861 6.3.6: an equal-preference router does not take over; a higher one does", func(t *testing.T) {
		u := newUpstream()
		u.apply(ra(time.Hour), router1, t0)
		u.apply(ra(time.Hour), router2, t0.Add(time.Second))
		if v := view(u, t0.Add(time.Second)); v.Router != router1 {
			t.Errorf("router %v after an equal one appeared, want %v", v.Router, router1)
		}
		u.apply(&ndp.RouterAdvertisement{RouterLifetime: time.Hour, RouterSelectionPreference: ndp.High}, router2, t0.Add(2*time.Second))
		if v := view(u, t0.Add(2*time.Second)); v.Router != router2 {
			t.Errorf("router %v after a high-preference one appeared, want %v", v.Router, router2)
		}
	})
	t.Run("RFC 4861 6.3.5: when the chosen router's lifetime ends, another takes over", func(t *testing.T) {
		u := newUpstream()
		u.apply(ra(time.Minute), router1, t0)
		u.apply(ra(time.Hour), router2, t0)
		later := t0.Add(2 * time.Minute)
		u.expire(later)
		if v := view(u, later); v.Router != router2 {
			t.Errorf("router %v, want %v", v.Router, router2)
		}
	})
	t.Run("RFC 8781: the chosen router's PREF64 wins over a newer one from another router", func(t *testing.T) {
		u := newUpstream()
		u.apply(ra(time.Hour, &ndp.PREF64{Lifetime: time.Hour, Prefix: netip.MustParsePrefix("2001:db8:64::/96")}), router1, t0)
		u.apply(ra(0, &ndp.PREF64{Lifetime: time.Hour, Prefix: netip.MustParsePrefix("2001:db8:66::/96")}), router2, t0.Add(time.Second))
		if v := view(u, t0.Add(time.Second)); v.Pref64 != netip.MustParsePrefix("2001:db8:64::/96") {
			t.Errorf("PREF64 %v, want the default router's", v.Pref64)
		}
	})
	t.Run("RFC 8106 5.1: an infinite RDNSS lifetime ends after MaxOptionLifetime", func(t *testing.T) {
		u := newUpstream()
		u.apply(rdnssRA(ndp.Infinity, gua(1)), router1, t0)
		if e := u.rdnss[gua(1)]; !e.until.Equal(t0.Add(MaxOptionLifetime)) || u.clamped[tableRDNSS] != 1 {
			t.Errorf("RDNSS until %v (clamped %d), want %v", e.until, u.clamped[tableRDNSS], t0.Add(MaxOptionLifetime))
		}
		if next := u.nextExpiry(t0); next.After(t0.Add(MaxOptionLifetime)) {
			t.Errorf("next expiry %v: past the clamp", next)
		}
	})
}

// rdnss53 is an RDNSS option (RFC 8106 §5.1) for 2001:db8::53.
func rdnss53(lifetime time.Duration) *ndp.RecursiveDNSServer {
	return &ndp.RecursiveDNSServer{Lifetime: lifetime, Servers: []netip.Addr{netip.MustParseAddr("2001:db8::53")}}
}

// rdnssCount is the check that the view holds n DNS servers.
func rdnssCount(n int) func(*testing.T, Upstream) {
	return func(t *testing.T, v Upstream) {
		t.Helper()
		if len(v.RDNSS) != n {
			t.Errorf("RDNSS %v, want %d servers", v.RDNSS, n)
		}
	}
}

// noPrefixes and linkMTU are the checks of the cases whose RA option is
// ignored: no prefix, and the link's own MTU.
func noPrefixes(t *testing.T, v Upstream) {
	t.Helper()
	if len(v.Prefixes) != 0 {
		t.Errorf("prefixes %v", v.Prefixes)
	}
}

func linkMTU(t *testing.T, v Upstream) {
	t.Helper()
	if v.MTU != 1500 {
		t.Errorf("MTU %d, want the link's 1500", v.MTU)
	}
}
