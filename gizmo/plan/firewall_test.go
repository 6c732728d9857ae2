package plan

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/firewall"
	"github.com/google/go-cmp/cmp"
)

var (
	fwNow = time.Unix(1_700_000_000, 0)
	fwA   = netip.MustParseAddr
	fwP   = netip.MustParsePrefix
)

// fwState is the lab after the ISP delegated 2001:db8:1000:100::/56, with
// a server that uses the token ::80 and a host with two privacy addresses.
func fwState() *state.State {
	return &state.State{
		WAN: state.WAN{
			Interface: "uplink0",
			IPv4:      &state.IPv4Lease{Addr: fwP("192.0.2.100/24")},
			Addrs:     []netip.Prefix{fwP("2001:db8:0:1::100/64")},
		},
		LAN: state.LAN{Interface: "lan0", Legacy4: fwP("203.0.113.129/25")},
		Delegated: &state.DelegatedPrefix{
			Prefix: fwP("2001:db8:1000:100::/56"), PreferredUntil: fwNow.Add(time.Hour), ValidUntil: fwNow.Add(2 * time.Hour),
		},
		ULA: fwP("fd12:3456:789a::/48"),
		Hosts: map[string]*state.Host{
			"02:00:00:00:00:01": {
				MAC: "02:00:00:00:00:01",
				Addrs: map[netip.Addr]time.Time{
					fwA("2001:db8:1000:100:a1b2:c3d4:e5f6:789"):  fwNow.Add(-time.Minute),         // privacy, current
					fwA("2001:db8:1000:100:1111:2222:3333:4444"): fwNow.Add(-time.Hour),           // privacy, older
					fwA("2001:db8:1000:100:dead:beef:0:1"):       fwNow.Add(-30 * 24 * time.Hour), // stale
					fwA("fe80::1234"):                            fwNow,                           // link-local
					fwA("fd12:3456:789a::99"):                    fwNow,                           // ULA
					fwA("203.0.113.140"):                         fwNow,                           // legacy
					fwA("2001:db8:9999::1"):                      fwNow,                           // not ours
				},
				Policy: state.HostPolicy{ExposedPorts: []string{"udp/51820", "tcp/22"}},
			},
			"02:00:00:00:00:02": {MAC: "02:00:00:00:00:02", Addrs: map[netip.Addr]time.Time{fwA("2001:db8:1000:100::5"): fwNow}},
		},
		InboundRules: []state.InboundRule{
			{Name: "web", Token: fwA("::80"), Ports: []string{"tcp/80", "tcp/443"}},
			{Name: "servers", Subnet: &state.Subnet{Index: 0x10, Bits: 64}},
		},
	}
}

// TestFirewallPlan includes RFC 3704's WAN addresses: the WAN's IPv4
// lease and its global IPv6 addresses are never a LAN source.
func TestFirewallPlan(t *testing.T) {
	got, err := Firewall(fwState(), fwNow)
	if err != nil {
		t.Fatal(err)
	}
	want := firewall.Plan{
		WAN:             "uplink0",
		LAN:             []string{"lan0"},
		Delegated:       fwP("2001:db8:1000:100::/56"),
		LANPrefixes:     []netip.Prefix{fwP("2001:db8:1000:100::/64"), fwP("fd12:3456:789a::/64")},
		ULA:             fwP("fd12:3456:789a::/48"),
		Legacy4:         fwP("203.0.113.128/25"),
		WANIPv4:         fwA("192.0.2.100"),
		WANIPv6:         []netip.Addr{fwA("2001:db8:0:1::100")},
		NAT44Ports:      NAT44Ports,
		ManagementPorts: ManagementPorts,
		TokenRules:      []firewall.TokenRule{{Token: fwA("::80"), Ports: []firewall.Port{{Proto: firewall.TCP, Port: 80}, {Proto: firewall.TCP, Port: 443}}}},
		PrefixRules:     []netip.Prefix{fwP("2001:db8:1000:110::/64")},
		HostRules: []firewall.HostRule{{
			Host:  "02:00:00:00:00:01",
			Addrs: []netip.Addr{fwA("2001:db8:1000:100:1111:2222:3333:4444"), fwA("2001:db8:1000:100:a1b2:c3d4:e5f6:789")},
			Ports: []firewall.Port{{Proto: firewall.UDP, Port: 51820}, {Proto: firewall.TCP, Port: 22}},
		}},
	}
	if diff := cmp.Diff(want, got, addrCmp, pfxCmp); diff != "" {
		t.Errorf("Firewall (-want +got):\n%s", diff)
	}
	if err := firewall.Validate(got); err != nil {
		t.Errorf("the plan does not validate: %v", err)
	}
}

// Renumbering: the token rule names no prefix and the subnet rule is
// relative, so both follow the new delegation; the old one stays a LAN
// prefix while it is being phased out (RFC 9096).
func TestFirewallPlanRenumbering(t *testing.T) {
	st := fwState()
	old := *st.Delegated
	old.PreferredUntil = fwNow
	st.Retired = []state.DelegatedPrefix{old}
	st.Delegated = &state.DelegatedPrefix{Prefix: fwP("2001:db8:1000:200::/56"), PreferredUntil: fwNow.Add(time.Hour), ValidUntil: fwNow.Add(2 * time.Hour)}
	st.Hosts["02:00:00:00:00:01"].Addrs[fwA("2001:db8:1000:200::abcd")] = fwNow

	got, err := Firewall(st, fwNow)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]netip.Prefix{fwP("2001:db8:1000:210::/64")}, got.PrefixRules, pfxCmp); diff != "" {
		t.Errorf("prefix rules (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]netip.Prefix{fwP("2001:db8:1000:200::/64"), fwP("2001:db8:1000:100::/64"), fwP("fd12:3456:789a::/64")}, got.LANPrefixes, pfxCmp); diff != "" {
		t.Errorf("LAN prefixes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]netip.Prefix{fwP("2001:db8:1000:100::/56")}, got.Retired, pfxCmp); diff != "" {
		t.Errorf("retired (-want +got):\n%s", diff)
	}
	if n := len(got.HostRules[0].Addrs); n != 3 {
		t.Errorf("host addresses = %v, want the two old privacy addresses and the new one", got.HostRules[0].Addrs)
	}
	if len(got.TokenRules) != 1 || got.TokenRules[0].Token != fwA("::80") {
		t.Errorf("token rules = %v", got.TokenRules)
	}

	// Once the old prefix is invalid, it is gone.
	later := fwNow.Add(90 * time.Minute)
	st.Retired[0].ValidUntil = fwNow.Add(time.Hour)
	got, err = Firewall(st, later)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Retired) != 0 || len(got.LANPrefixes) != 2 {
		t.Errorf("after expiry: retired %v, LAN prefixes %v", got.Retired, got.LANPrefixes)
	}
}

func TestFirewallPlanBadRules(t *testing.T) {
	tests := []struct {
		name    string
		rule    state.InboundRule
		wantErr string
	}{
		{"bad port refused", state.InboundRule{Token: fwA("::80"), Ports: []string{"tcp/0"}}, "1-65535"},
		{"unknown protocol refused", state.InboundRule{Token: fwA("::80"), Ports: []string{"sctp/80"}}, "tcp or udp"},
		{"RFC 4291 2.5.1: token longer than 64 bits refused", state.InboundRule{Token: fwA("::1:0:0:0:80"), Ports: []string{"tcp/80"}}, "longer than 64 bits"},
		{"token rule without ports refused", state.InboundRule{Token: fwA("::80")}, "needs ports"},
		{"subnet index outside the delegation refused", state.InboundRule{Subnet: &state.Subnet{Index: 256, Bits: 64}}, "outside the delegated prefix"},
		{"subnet wider than the delegation refused", state.InboundRule{Subnet: &state.Subnet{Index: 0, Bits: 48}}, "outside the delegated prefix"},
		{"subnet rule with ports refused", state.InboundRule{Subnet: &state.Subnet{Index: 1, Bits: 64}, Ports: []string{"tcp/80"}}, "opens everything"},
		{"both token and subnet refused", state.InboundRule{Token: fwA("::80"), Subnet: &state.Subnet{Bits: 64}, Ports: []string{"tcp/80"}}, "not both"},
		{"empty rule refused", state.InboundRule{}, "needs a token or a subnet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := fwState()
			if err := ValidateInboundRule(st, tc.rule, fwNow); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ValidateInboundRule = %v, want %q", err, tc.wantErr)
			}
			// Stored anyway (say, by an older version): the plan leaves the
			// rule out, says why, and keeps the good rules.
			st.InboundRules = append(st.InboundRules, tc.rule)
			p, err := Firewall(st, fwNow)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Firewall error = %v, want %q", err, tc.wantErr)
			}
			if len(p.TokenRules) != 1 || len(p.PrefixRules) != 1 {
				t.Errorf("good rules lost: tokens %v, prefixes %v", p.TokenRules, p.PrefixRules)
			}
			if err := firewall.Validate(p); err != nil {
				t.Errorf("the plan without the bad rule does not validate: %v", err)
			}
		})
	}
}

// Before the ISP delegates anything, the firewall still protects the
// gizmo; subnet rules wait for a prefix without complaint.
func TestFirewallPlanNoDelegation(t *testing.T) {
	st := fwState()
	st.Delegated = nil
	p, err := Firewall(st, fwNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.PrefixRules) != 0 || len(p.HostRules) != 0 || p.Delegated.IsValid() {
		t.Errorf("without a delegation: %+v", p)
	}
	if err := firewall.Validate(p); err != nil {
		t.Errorf("plan does not validate: %v", err)
	}
}

func TestSubnetPrefix(t *testing.T) {
	for _, tc := range []struct {
		d    string
		s    state.Subnet
		want string
	}{
		{"2001:db8:1000:100::/56", state.Subnet{Index: 1, Bits: 64}, "2001:db8:1000:101::/64"},
		{"2001:db8:1000:100::/56", state.Subnet{Index: 255, Bits: 64}, "2001:db8:1000:1ff::/64"},
		{"2001:db8:1000:100::/56", state.Subnet{Index: 3, Bits: 60}, "2001:db8:1000:130::/60"},
		{"2001:db8:1000:100::/56", state.Subnet{Index: 0, Bits: 56}, "2001:db8:1000:100::/56"},
		{"2001:db8:1000::/48", state.Subnet{Index: 1 << 63, Bits: 128}, "2001:db8:1000:0:8000::/128"},
	} {
		got, err := SubnetPrefix(fwP(tc.d), tc.s)
		if err != nil || got != fwP(tc.want) {
			t.Errorf("SubnetPrefix(%s, %+v) = %v, %v; want %s", tc.d, tc.s, got, err, tc.want)
		}
	}
}

// An expired WAN IPv4 lease is no NAT44 source address: the firewall
// masquerades only to an address the gizmo still holds.
func TestFirewallPlanIPv4LeaseExpiry(t *testing.T) {
	st := fwState()
	st.WAN.IPv4.Expires = fwNow.Add(time.Minute)
	if p, _ := Firewall(st, fwNow); p.WANIPv4 != fwA("192.0.2.100") {
		t.Errorf("valid lease: WANIPv4 = %v", p.WANIPv4)
	}
	if p, _ := Firewall(st, fwNow.Add(time.Minute)); p.WANIPv4.IsValid() {
		t.Errorf("expired lease: WANIPv4 = %v, want none", p.WANIPv4)
	}
}
