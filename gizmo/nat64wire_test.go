package main

import (
	"net/netip"
	"testing"

	"codeberg.org/monostack/gizmo/services/nat64"
	"codeberg.org/monostack/gizmo/web/series"
)

func TestNAT64TrafficSplitsDNS64AndCLAT(t *testing.T) {
	a := &nat64Accounting{retired: map[netip.Addr]nat64.HostStats{}, ownStack: map[netip.Addr]bool{}}
	host := netip.MustParseAddr("2001:db8:1000::10")   // the host's own SLAAC address
	clat := netip.MustParseAddr("2001:db8:1000::c1a7") // its CLAT's dedicated address
	stranger := netip.MustParseAddr("2001:db8:1000::99")
	a.sawOwnStack(host)
	// An earlier entry of the host's address was retired by the datapath:
	// its bytes still count.
	a.retire(nat64.HostStats{Addr: host, BytesOut: 100, BytesIn: 1000})
	live := []nat64.HostStats{
		{Addr: host, BytesOut: 10, BytesIn: 20},
		{Addr: clat, BytesOut: 5, BytesIn: 50},
		{Addr: stranger, BytesOut: 1, BytesIn: 1},
	}
	owner := func(x netip.Addr) string {
		if x == host || x == clat {
			return "02:00:00:00:00:30"
		}
		return ""
	}
	hosts := map[string]series.Categories{}
	a.addTraffic(live, owner, hosts)
	got := hosts["02:00:00:00:00:30"]
	if got.NAT64DNS64 != 1130 || got.NAT64CLAT != 55 {
		t.Errorf("host traffic = %+v, want 1130 bytes via DNS64 (own stack, retired included) and 55 from the CLAT", got)
	}
	if hosts[stranger.String()].NAT64CLAT != 2 {
		t.Errorf("an address without a known MAC is kept under the address: %+v", hosts)
	}
}
