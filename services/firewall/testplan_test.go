package firewall

import "net/netip"

// labPlan is the plan for the lab (lab/README.md): a /56 from the ISP's
// 2001:db8:1000::/36, the legacy pool 203.0.113.128/25, the WAN lease
// from 192.0.2.100-199 and a SLAAC address in the WAN link's /64.
func labPlan() Plan {
	return Plan{
		WAN:         "uplink0",
		LAN:         []string{"lan0"},
		Delegated:   netip.MustParsePrefix("2001:db8:1000:100::/56"),
		LANPrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000:100::/64"), netip.MustParsePrefix("fd12:3456:789a::/64")},
		ULA:         netip.MustParsePrefix("fd12:3456:789a::/48"),
		Legacy4:     netip.MustParsePrefix("203.0.113.128/25"),
		WANIPv4:     netip.MustParseAddr("192.0.2.100"),
		WANIPv6:     []netip.Addr{netip.MustParseAddr("2001:db8:0:1::100")},
		NAT44Ports:  PortRange{Min: 32768, Max: 65535},
		ManagementPorts: []Port{
			{TCP, 22}, {TCP, 53}, {UDP, 53}, {UDP, 67}, {TCP, 80}, {UDP, 547}, {TCP, 8080},
		},
		TokenRules:  []TokenRule{{Token: netip.MustParseAddr("::80"), Ports: []Port{{TCP, 80}, {TCP, 443}}}},
		PrefixRules: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000:110::/64")},
		HostRules: []HostRule{{
			Host:  "02:00:00:00:00:01",
			Addrs: []netip.Addr{netip.MustParseAddr("2001:db8:1000:100::1234"), netip.MustParseAddr("2001:db8:1000:100:a1b2:c3d4:e5f6:789")},
			Ports: []Port{{UDP, 51820}},
		}},
	}
}
