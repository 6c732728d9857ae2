package fastpath

import (
	"net/netip"
	"strings"
	"testing"
)

func TestNewRefusesBadConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no LAN", Config{WAN: "uplink0"}, "two different interfaces"},
		{"one port for both (existing-network mode has no border)", Config{LAN: "lan0", WAN: "lan0"}, "two different interfaces"},
		{"negative table size", Config{LAN: "lan0", WAN: "uplink0", MaxFlows: -1}, "must not be negative"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := New(Config{LAN: "lan0", WAN: "uplink0"}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// A plan the programs cannot hold is refused whole and the old one stays.
func TestApplyRefusesBadPlan(t *testing.T) {
	s, err := New(Config{LAN: "lan0", WAN: "uplink0"})
	if err != nil {
		t.Fatal(err)
	}
	good := Plan{LANPrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000:100::/64")}}
	if err := s.apply(good); err != nil {
		t.Fatal(err)
	}
	var nine []netip.Prefix
	for i := range 9 {
		nine = append(nine, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x10, byte(i)}), 64))
	}
	for _, c := range []struct {
		name string
		p    Plan
	}{
		{"nine LAN prefixes", Plan{LANPrefixes: nine}},
		{"an IPv4 prefix", Plan{LANPrefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.128/25")}}},
		{"an invalid prefix", Plan{LANPrefixes: []netip.Prefix{{}}}},
		{"three excluded prefixes", Plan{LANPrefixes: good.LANPrefixes, Exclude: nine[:3]}},
	} {
		if err := s.apply(c.p); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
		if s.plan.LANPrefixes[0] != good.LANPrefixes[0] || len(s.plan.LANPrefixes) != 1 {
			t.Errorf("%s: the old plan was replaced by %v", c.name, s.plan)
		}
	}
}
