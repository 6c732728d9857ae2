package neighbors

import (
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestSightingKeepsOnlyRealHosts(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:10")
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name string
		n    netlink.Neigh
		ok   bool
	}{
		{"reachable IPv6 host", netlink.Neigh{IP: net.ParseIP("2001:db8:1000::10"), HardwareAddr: mac, State: netlink.NUD_REACHABLE}, true},
		{"stale IPv4 host", netlink.Neigh{IP: net.ParseIP("203.0.113.130"), HardwareAddr: mac, State: netlink.NUD_STALE}, true},
		{"failed resolution proves nothing", netlink.Neigh{IP: net.ParseIP("2001:db8:1000::11"), HardwareAddr: mac, State: netlink.NUD_FAILED}, false},
		{"incomplete entry has no MAC", netlink.Neigh{IP: net.ParseIP("2001:db8:1000::12"), State: netlink.NUD_INCOMPLETE}, false},
		{"multicast MAC is no host", netlink.Neigh{IP: net.ParseIP("2001:db8:1000::13"), HardwareAddr: net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, State: netlink.NUD_REACHABLE}, false},
		{"multicast address", netlink.Neigh{IP: net.ParseIP("ff02::1"), HardwareAddr: mac, State: netlink.NUD_PERMANENT}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := sighting(tc.n, now)
			if ok != tc.ok {
				t.Fatalf("sighting ok = %v, want %v", ok, tc.ok)
			}
			if ok && (s.MAC.String() != mac.String() || !s.At.Equal(now) || s.Addr.String() != tc.n.IP.String()) {
				t.Errorf("sighting = %+v", s)
			}
		})
	}
}
