package plan

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/timesync"
)

func TestTimeSync(t *testing.T) {
	a := netip.MustParseAddr
	ula := netip.MustParsePrefix("fd12:3456:789a::/48")
	legacy := netip.MustParsePrefix("203.0.113.129/25")
	serve := []netip.Addr{a("fd12:3456:789a::1"), a("203.0.113.129")}
	lease := func(expires time.Time, ntp ...netip.Addr) *state.IPv4Lease {
		return &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24"), NTP: ntp, Expires: expires}
	}
	for _, tc := range []struct {
		name string
		wan  state.WAN
		ula  netip.Prefix
		lan4 netip.Prefix
		want timesync.Plan
	}{
		{
			name: "RFC 5908 §4 before RFC 2132 §8.3: DHCPv6 NTP servers first, then the DHCPv4 lease's, each once",
			wan: state.WAN{
				DHCPv6NTP: []netip.Addr{a("2001:db8:0:1::1"), a("2001:db8:0:1::2")},
				IPv4:      lease(netNow.Add(time.Hour), a("192.0.2.1"), a("2001:db8:0:1::2"), a("192.0.2.1")),
			},
			ula: ula, lan4: legacy,
			want: timesync.Plan{
				Servers: []netip.Addr{a("2001:db8:0:1::1"), a("2001:db8:0:1::2"), a("192.0.2.1")},
				Serve:   serve,
			},
		},
		{
			name: "RFC 5908 §4.3: the DHCPv6 FQDN suboption names servers by name, beside the addresses",
			wan: state.WAN{
				DHCPv6NTPNames: []string{"ntp.isp.example"},
				IPv4:           lease(netNow.Add(time.Hour), a("192.0.2.1")),
			},
			ula: ula, lan4: legacy,
			want: timesync.Plan{Servers: []netip.Addr{a("192.0.2.1")}, Names: []string{"ntp.isp.example"}, Serve: serve},
		},
		{
			name: "an IPv4-mapped server address is an IPv4 address",
			wan:  state.WAN{DHCPv6NTP: []netip.Addr{a("::ffff:192.0.2.1")}, IPv4: lease(time.Time{}, a("192.0.2.1"))},
			ula:  ula, lan4: legacy,
			want: timesync.Plan{Servers: []netip.Addr{a("192.0.2.1")}, Serve: serve},
		},
		{
			name: "an expired DHCPv4 lease names no server: the public pool",
			wan:  state.WAN{IPv4: lease(netNow.Add(-time.Second), a("192.0.2.1"))},
			ula:  ula, lan4: legacy,
			want: timesync.Plan{Names: []string{timesync.DefaultPool}, Serve: serve},
		},
		{
			name: "no DHCP server names one: the public pool",
			ula:  ula, lan4: legacy,
			want: timesync.Plan{Names: []string{timesync.DefaultPool}, Serve: serve},
		},
		{
			name: "served only on the addresses the gizmo has: without a ULA, the legacy address alone",
			lan4: legacy,
			want: timesync.Plan{Names: []string{timesync.DefaultPool}, Serve: []netip.Addr{a("203.0.113.129")}},
		},
		{
			name: "never on a WAN address: no LAN addresses, no serving",
			wan: state.WAN{
				Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1::99/64")},
				IPv4:  lease(netNow.Add(time.Hour)),
			},
			want: timesync.Plan{Names: []string{timesync.DefaultPool}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.State{WAN: tc.wan, ULA: tc.ula, LAN: state.LAN{Legacy4: tc.lan4}}
			if diff := cmp.Diff(tc.want, TimeSync(st, netNow), addrCmp); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// The DHCP servers announce the time service exactly where it serves, and
// only when the daemon runs it.
func TestAllAnnouncesTheTimeService(t *testing.T) {
	a := netip.MustParseAddr
	st := &state.State{ULA: raULA, LAN: state.LAN{Legacy4: netip.MustParsePrefix("203.0.113.129/25"), DNS: raDNS}}
	p := All(st, Options{TimeService: true}, netNow)
	if diff := cmp.Diff([]netip.Addr{a("fd12:3456:789a::1"), a("203.0.113.129")}, p.TimeSync.Serve, addrCmp); diff != "" {
		t.Errorf("time service serves (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]netip.Addr{a("203.0.113.129")}, p.DHCP4.NTP, addrCmp); diff != "" {
		t.Errorf("DHCPv4 option 42 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]netip.Addr{a("fd12:3456:789a::1")}, p.DHCP6Info.NTP, addrCmp); diff != "" {
		t.Errorf("DHCPv6 option 56 (-want +got):\n%s", diff)
	}
	p = All(st, Options{}, netNow)
	if len(p.TimeSync.Serve)+len(p.TimeSync.Names)+len(p.DHCP4.NTP)+len(p.DHCP6Info.NTP) != 0 {
		t.Errorf("without the time service: plan %+v, option 42 %v, option 56 %v", p.TimeSync, p.DHCP4.NTP, p.DHCP6Info.NTP)
	}
}
