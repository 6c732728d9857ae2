package plan

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dhcp6info"
	"github.com/google/go-cmp/cmp"
)

func TestDHCP6Info(t *testing.T) {
	dnsAddr := []netip.Addr{netip.MustParseAddr("fd12:3456:789a::35")}
	// answering is the plan of a gizmo that answers with dns and ntp.
	answering := func(dns []netip.Addr, ntp ...netip.Addr) dhcp6info.Plan {
		return dhcp6info.Plan{Enabled: true, DNS: dns, NTP: ntp, DomainSearch: []string{"home.arpa"}, InformationRefreshTime: time.Hour}
	}
	for _, tc := range []struct {
		name     string
		dns      state.DNSAddrs
		existing bool
		// served are the time service's addresses (TimeServed).
		served []netip.Addr
		want   dhcp6info.Plan
	}{
		{
			name: "RFC 8415 6.1 + RFC 3646: stateless DHCPv6 gives the DNS service's DHCPv6 address and home.arpa",
			dns:  raDNS,
			want: answering(dnsAddr),
		},
		{
			name:   "RFC 5908 §4: the NTP server option names the gizmo's ULA address where its time service serves",
			dns:    raDNS,
			served: []netip.Addr{netip.MustParseAddr("fd12:3456:789a::1"), netip.MustParseAddr("203.0.113.129")},
			want:   answering(dnsAddr, netip.MustParseAddr("fd12:3456:789a::1")),
		},
		{
			name:   "no NTP server option while the time service does not serve the ULA address",
			dns:    raDNS,
			served: []netip.Addr{netip.MustParseAddr("203.0.113.129")},
			want:   answering(dnsAddr),
		},
		{
			name: "RFC 3646 3: no DNS servers option without a DNS address",
			want: answering(nil),
		},
		{
			name:     "existing network: the LAN's own DHCPv6 service is left alone",
			dns:      raDNS,
			existing: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DHCP6Info(&state.State{ULA: raULA, LAN: state.LAN{DNS: tc.dns}}, tc.existing, tc.served, time.Now())
			if diff := cmp.Diff(tc.want, got, addrCmp); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}
