package clat

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPlanValidate(t *testing.T) {
	ok := testPlan()
	for _, tc := range []struct {
		name string
		edit func(*Plan)
		err  string
	}{
		{"a full plan is valid", func(*Plan) {}, ""},
		{"the zero plan (off) is valid", func(p *Plan) { *p = Plan{} }, ""},
		{"RFC 6052 §2.2: /80 is no NAT64 prefix length", func(p *Plan) { p.Pref64 = netip.MustParsePrefix("2001:db8:46::/80") }, "length"},
		{"RFC 6052 §2.2: the u octet of a /96 is zero", func(p *Plan) { p.Pref64 = netip.MustParsePrefix("2001:db8:46:0:ff00::/96") }, "bits 64-71"},
		{"an IPv4 prefix is no NAT64 prefix", func(p *Plan) { p.Pref64 = netip.MustParsePrefix("192.0.2.0/24") }, "length"},
		{"RFC 6877 §6.3: the CLAT address is a global IPv6 address", func(p *Plan) { p.Address = netip.MustParseAddr("fe80::1") }, "global"},
		{"the CLAT address cannot be inside the NAT64 prefix", func(p *Plan) { p.Address = to6(remote4) }, "inside"},
		{"the uplink's index is needed", func(p *Plan) { p.WANIfindex = 0 }, "index"},
		{"unreachable entries are IPv4", func(p *Plan) { p.Unreachable = []netip.Prefix{netip.MustParsePrefix("fc00::/7")} }, "IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			err := p.Validate()
			if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Validate = %v, want %q", err, tc.err)
			}
		})
	}
}

// RFC 6877 §5 and RFC 7915 §4.1: clat0 leaves room for the IPv6 header and
// a fragment header, so that the kernel fragments or answers Fragmentation
// Needed for what would not fit the uplink.
func TestPlanMTU(t *testing.T) {
	for _, tc := range []struct{ wan, want int }{{1500, 1472}, {1492, 1464}, {0, 1472}, {9000, 8972}} {
		if got := (Plan{WANMTU: tc.wan}).MTU(); got != tc.want {
			t.Errorf("uplink MTU %d: clat0 %d, want %d", tc.wan, got, tc.want)
		}
	}
}

func TestPlanConfig(t *testing.T) {
	p := testPlan()
	p.Pref64 = netip.MustParsePrefix("2001:db8:46::/64")
	c := p.toConfig(7)
	if c.Pref64Len != 64 || c.Pref64Mask[7] != 0xff || c.Pref64Mask[8] != 0xff || c.Pref64Mask[9] != 0 {
		t.Errorf("/64: length %d mask % x; want the first 8 bytes and the u octet", c.Pref64Len, c.Pref64Mask)
	}
	if c.Router6 != testCLAT6.As16() || c.Pool4 != be32(IPv4) || c.LanIfindex != 1 || c.WanIfindex != 7 || c.LanMtu != 1500 || c.WanMtu != 1472 {
		t.Errorf("config %+v", c)
	}
}
