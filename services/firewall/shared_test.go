package firewall

import (
	"net/netip"
	"testing"
)

// sharedPlan is the lab's no-PD case: no delegation, the upstream /64
// 2001:db8:0:1::/64 shared with the LAN through the ND proxy (RFC 7278).
func sharedPlan() Plan {
	p := labPlan()
	p.Delegated, p.PrefixRules, p.HostRules = netip.Prefix{}, nil, nil
	p.LANPrefixes = []netip.Prefix{q("fd12:3456:789a::/64")}
	p.Shared = []netip.Prefix{q("2001:db8:0:1::/64")}
	return p
}

func TestRenderSharedPrefix(t *testing.T) {
	if err := Validate(sharedPlan()); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	rs := Render(sharedPlan())
	lanShared := a("2001:db8:0:1:0:ff:fe00:210") // a LAN host's address in the shared /64
	ispGlobal := a("2001:db8:0:1::1")            // the upstream router, a WAN-side neighbour
	tests := []struct {
		name    string
		pkt     packet
		want    VerdictKind
		counter string
	}{
		{"BCP 38: a LAN source in the shared /64 is forwarded", packet{iif: lan, oif: wan, src: lanShared, dst: inetHost, proto: TCP, sport: 40000, dport: 443}, Accept, CounterIPv6Forwarded},
		{"RFC 4389: LAN host to a WAN-side neighbour in the shared /64 is forwarded", packet{iif: lan, oif: wan, src: lanShared, dst: ispGlobal, proto: 58, icmpType: 128}, Accept, CounterIPv6Forwarded},
		{"RFC 7278: a WAN-side neighbour in the shared /64 is no spoofer (echo to a LAN host)", packet{iif: wan, oif: lan, src: ispGlobal, dst: lanShared, proto: 58, icmpType: 128}, Accept, ""},
		{"RFC 7278: NS from a WAN-side neighbour for a proxied address reaches the gizmo", packet{iif: wan, src: ispGlobal, dst: a("ff02::1:ff00:210"), proto: 58, icmpType: 135, ct: CtInvalid}, Accept, ""},
		{"RFC 7278: unsolicited tcp from a WAN-side neighbour to a LAN host dropped", packet{iif: wan, oif: lan, src: ispGlobal, dst: lanShared, proto: TCP, sport: 40000, dport: 22}, Drop, CounterDropFwdWAN},
		{"RFC 7084: the ULA from the WAN is still spoofed", packet{iif: wan, oif: lan, src: a("fd12:3456:789a:5::1"), dst: lanShared, proto: 58, icmpType: 128}, Drop, CounterDropSpoofWAN},
		{"BCP 38: a LAN source outside the shared /64 and the ULA dropped", packet{iif: lan, oif: wan, src: a("2001:db8:0:2::5"), dst: inetHost, proto: TCP, sport: 40000, dport: 443}, Drop, CounterDropSpoofLAN},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs.path(tc.pkt).check(t, tc.want, tc.counter)
		})
	}
}

func TestValidateSharedPrefixMustBe64(t *testing.T) {
	p := sharedPlan()
	p.Shared = []netip.Prefix{q("2001:db8:0:1::/60")}
	if err := Validate(p); err == nil {
		t.Error("Validate accepted a shared /60")
	}
}
