package dns64

import (
	"net/netip"
	"testing"
)

func TestRFC6052Layouts(t *testing.T) {
	// RFC 6052 §2.4, the examples table, all for 192.0.2.33.
	v4 := netip.MustParseAddr("192.0.2.33")
	for _, tc := range []struct {
		name, prefix, want string
	}{
		{"RFC 6052 2.2: /32", "2001:db8::/32", "2001:db8:c000:221::"},
		{"RFC 6052 2.2: /40 splits around the u octet", "2001:db8:100::/40", "2001:db8:1c0:2:21::"},
		{"RFC 6052 2.2: /48 splits around the u octet", "2001:db8:122::/48", "2001:db8:122:c000:2:2100::"},
		{"RFC 6052 2.2: /56 splits around the u octet", "2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"},
		{"RFC 6052 2.2: /64 starts after the u octet", "2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"},
		{"RFC 6052 2.2: /96", "2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"},
		{"RFC 6052 2.1: well-known prefix", "64:ff9b::/96", "64:ff9b::192.0.2.33"},
		{"RFC 6052 2.2: host bits of the prefix are ignored", "2001:db8:122:344:ffff:ffff::/64", "2001:db8:122:344:c0:2:2100:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := netip.MustParsePrefix(tc.prefix)
			got, err := Embed(p, v4)
			if err != nil {
				t.Fatal(err)
			}
			if want := netip.MustParseAddr(tc.want); got != want {
				t.Fatalf("Embed(%s, %s) = %s, want %s", p, v4, got, want)
			}
			back, err := Extract(p, got)
			if err != nil {
				t.Fatal(err)
			}
			if back != v4 {
				t.Fatalf("Extract(%s, %s) = %s, want %s", p, got, back, v4)
			}
		})
	}
}

func TestRFC6052Rejects(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.33")
	for _, p := range []string{"2001:db8::/33", "2001:db8::/128", "192.0.2.0/24"} {
		if _, err := Embed(netip.MustParsePrefix(p), v4); err == nil {
			t.Errorf("Embed with prefix %s: no error", p)
		}
	}
	if _, err := Embed(WellKnownPrefix, netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("Embed of an IPv6 address: no error")
	}
	if _, err := Extract(WellKnownPrefix, netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("Extract of an address outside the prefix: no error")
	}
}

func TestRFC6052WellKnownPrefixOnlyGlobal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix netip.Prefix
		v4     string
		want   bool
	}{
		{"RFC 6052 3.1: WKP carries global IPv4", WellKnownPrefix, "8.8.8.8", true},
		{"RFC 6052 3.1: WKP never carries RFC 1918", WellKnownPrefix, "10.1.2.3", false},
		{"RFC 6052 3.1: WKP never carries documentation space", WellKnownPrefix, "198.51.100.80", false},
		{"RFC 7050 2.2: WKP carries ipv4only.arpa", WellKnownPrefix, "192.0.0.170", true},
		{"RFC 6052 3.1: network-specific prefix carries anything", netip.MustParsePrefix("2001:db8:64::/96"), "10.1.2.3", true},
	} {
		if got := mappable(tc.prefix, netip.MustParseAddr(tc.v4)); got != tc.want {
			t.Errorf("%s: mappable(%s, %s) = %v, want %v", tc.name, tc.prefix, tc.v4, got, tc.want)
		}
	}
}
