package wan

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestObserverAddrs(t *testing.T) {
	slaac := net.IPNet{IP: net.ParseIP("2001:db8:0:1::abcd"), Mask: net.CIDRMask(64, 128)}
	tests := []struct {
		name    string
		u       netlink.AddrUpdate
		changed bool
		count   int
	}{
		{"RFC 4862 5.4: a tentative address is not usable yet",
			netlink.AddrUpdate{LinkAddress: slaac, NewAddr: true, Flags: unix.IFA_F_TENTATIVE}, false, 0},
		{"after DAD the address counts",
			netlink.AddrUpdate{LinkAddress: slaac, NewAddr: true}, true, 1},
		{"the same address again is no change",
			netlink.AddrUpdate{LinkAddress: slaac, NewAddr: true, Flags: unix.IFA_F_DEPRECATED}, false, 1},
		{"link-local addresses are not WAN addresses",
			netlink.AddrUpdate{LinkAddress: net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)}, NewAddr: true}, false, 1},
		{"IPv4 belongs to the DHCPv4 lease, not here",
			netlink.AddrUpdate{LinkAddress: net.IPNet{IP: net.ParseIP("192.0.2.100").To4(), Mask: net.CIDRMask(24, 32)}, NewAddr: true}, false, 1},
		{"RFC 4862 5.4.5: a duplicate address is dropped",
			netlink.AddrUpdate{LinkAddress: slaac, NewAddr: true, Flags: unix.IFA_F_DADFAILED}, true, 0},
		{"re-added, then removed",
			netlink.AddrUpdate{LinkAddress: slaac, NewAddr: true}, true, 1},
		{"removal",
			netlink.AddrUpdate{LinkAddress: slaac, NewAddr: false}, true, 0},
	}
	o := &observer{up: newUpstream(), addrs: map[netip.Prefix]bool{}}
	for _, tt := range tests {
		if got := o.addr(tt.u); got != tt.changed || len(o.addrs) != tt.count {
			t.Errorf("%s: changed %v with %d addresses, want %v with %d", tt.name, got, len(o.addrs), tt.changed, tt.count)
		}
	}
}
