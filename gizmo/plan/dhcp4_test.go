package plan

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dhcp4"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestDHCP4(t *testing.T) {
	a := netip.MustParseAddr
	legacy := netip.MustParsePrefix("203.0.113.129/25")
	lab := func() *state.State {
		return &state.State{LAN: state.LAN{Legacy4: legacy, DNS: state.DNSAddrs{DHCPv4: a("203.0.113.129")}}}
	}
	labPlan := func() dhcp4.Plan {
		return dhcp4.Plan{
			Server:                 legacy,
			PoolStart:              a("203.0.113.130"),
			PoolEnd:                a("203.0.113.254"),
			Router:                 a("203.0.113.129"),
			DNS:                    []netip.Addr{a("203.0.113.129")},
			Domain:                 "home.arpa",
			LeaseTime:              dhcp4.DefaultLeaseTime,
			V6OnlyWait:             1800 * time.Second,
			DefaultV6OnlyPreferred: true,
		}
	}
	// on is the lab with the legacy network gizmo (the gizmo's address
	// and its length), poolOn its plan with the pool from start to end.
	on := func(gizmo string) func() *state.State {
		return func() *state.State {
			s := lab()
			s.LAN.Legacy4 = netip.MustParsePrefix(gizmo)
			s.LAN.DNS.DHCPv4 = s.LAN.Legacy4.Addr()
			return s
		}
	}
	poolOn := func(gizmo, start, end string) func() dhcp4.Plan {
		return func() dhcp4.Plan {
			p := labPlan()
			p.Server = netip.MustParsePrefix(gizmo)
			p.PoolStart, p.PoolEnd = a(start), a(end)
			p.Router, p.DNS = p.Server.Addr(), []netip.Addr{p.Server.Addr()}
			return p
		}
	}
	host := func(p state.HostPolicy) *state.Host { return &state.Host{Policy: p} }
	for _, tc := range []struct {
		name  string
		state func() *state.State
		// served are the time service's addresses (TimeServed).
		served []netip.Addr
		want   func() dhcp4.Plan
	}{
		{"lab network: pool is the /25 without network, broadcast and the gizmo", lab, nil, labPlan},
		{"RFC 2132 §8.3: option 42 names the gizmo's legacy address where its time service serves",
			lab, []netip.Addr{a("fd12:3456:789a::1"), a("203.0.113.129")},
			func() dhcp4.Plan { p := labPlan(); p.NTP = []netip.Addr{a("203.0.113.129")}; return p }},
		{"no option 42 while the time service does not serve the legacy address",
			lab, []netip.Addr{a("fd12:3456:789a::1")}, labPlan},
		{"no legacy network: disabled", func() *state.State { return &state.State{} }, []netip.Addr{a("203.0.113.129")}, func() dhcp4.Plan { return dhcp4.Plan{} }},
		{"gizmo in the middle of the range: the server skips it, the range stays whole",
			on("192.0.2.100/24"), nil, poolOn("192.0.2.100/24", "192.0.2.1", "192.0.2.254")},
		{"a network larger than a /16 gets a /16's worth of pool",
			on("198.18.0.1/15"), nil, poolOn("198.18.0.1/15", "198.18.0.2", "198.19.0.1")},
		{"no DHCPv4 DNS address: no option 6", func() *state.State { s := lab(); s.LAN.DNS.DHCPv4 = netip.Addr{}; return s }, nil,
			func() dhcp4.Plan { p := labPlan(); p.DNS = nil; return p }},
		{"per-host policy and reservations; RFC 8925 default on for unknown hosts",
			func() *state.State {
				s := lab()
				s.Hosts = map[string]*state.Host{
					"02:00:00:00:00:01": host(state.HostPolicy{V6OnlyPreferred: false, IPv4: a("203.0.113.200")}),
					"02:00:00:00:00:02": host(state.HostPolicy{V6OnlyPreferred: true}),
					// Same reservation: the lower MAC keeps it.
					"02:00:00:00:00:03": host(state.HostPolicy{IPv4: a("203.0.113.200")}),
					// Outside the network, or the gizmo's own: ignored.
					"02:00:00:00:00:04": host(state.HostPolicy{IPv4: a("192.0.2.5")}),
					"02:00:00:00:00:05": host(state.HostPolicy{IPv4: a("203.0.113.129")}),
				}
				return s
			}, nil,
			func() dhcp4.Plan {
				p := labPlan()
				p.Hosts = map[string]dhcp4.HostPolicy{
					"02:00:00:00:00:01": {Reserved: a("203.0.113.200")},
					"02:00:00:00:00:02": {V6OnlyPreferred: true},
					"02:00:00:00:00:03": {},
					"02:00:00:00:00:04": {},
					"02:00:00:00:00:05": {},
				}
				return p
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DHCP4(tc.state(), 1800*time.Second, tc.served)
			if diff := cmp.Diff(tc.want(), got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("the plan does not validate: %v", err)
			}
		})
	}
}

// FuzzDHCP4 feeds the plan any legacy network and any reservations the
// policy store might hold: the plan it makes must always validate, keep the
// gizmo's own address out of the pool ends, and never reserve one address
// twice.
func FuzzDHCP4(f *testing.F) {
	f.Add([]byte{203, 0, 113, 129}, uint8(25), []byte{203, 0, 113, 200, 203, 0, 113, 200, 192, 0, 2, 1})
	f.Add([]byte{192, 0, 2, 1}, uint8(30), []byte{192, 0, 2, 3, 192, 0, 2, 2})
	f.Add([]byte{198, 51, 100, 0}, uint8(16), []byte{})
	f.Fuzz(func(t *testing.T, own []byte, bits uint8, reservations []byte) {
		if len(own) != 4 {
			return
		}
		st := &state.State{LAN: state.LAN{Legacy4: netip.PrefixFrom(netip.AddrFrom4([4]byte(own)), int(bits%40))}}
		st.Hosts = map[string]*state.Host{}
		for i := 0; i+4 <= len(reservations) && i < 4*64; i += 4 {
			mac := fmt.Sprintf("02:00:00:00:00:%02x", i/4)
			st.Hosts[mac] = &state.Host{Policy: state.HostPolicy{IPv4: netip.AddrFrom4([4]byte(reservations[i : i+4]))}}
		}
		p := DHCP4(st, 1800*time.Second, TimeServed(Network{Legacy4: st.LAN.Legacy4}))
		if err := p.Validate(); err != nil {
			t.Fatalf("plan for %v does not validate: %v", st.LAN.Legacy4, err)
		}
		if !p.Enabled() {
			return
		}
		if p.PoolStart == p.Server.Addr() || p.PoolEnd == p.Server.Addr() {
			t.Errorf("pool %s-%s starts or ends at the gizmo %s", p.PoolStart, p.PoolEnd, p.Server.Addr())
		}
		seen := map[netip.Addr]bool{}
		for _, h := range p.Hosts {
			if h.Reserved.IsValid() {
				if seen[h.Reserved] || h.Reserved == p.Server.Addr() {
					t.Errorf("reservation %s twice or the gizmo's", h.Reserved)
				}
				seen[h.Reserved] = true
			}
		}
	})
}
