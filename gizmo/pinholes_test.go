package main

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/firewall"
	"codeberg.org/monostack/gizmo/services/upnp"
)

// The daemon as the UPnP service's Backend: a pinhole it grants is in the
// state and in the firewall's plan; the owner turning the policy off
// closes it; a request that overtook the neighbour watch's sighting of its
// address waits for it.
func TestPinholeBackend(t *testing.T) {
	d := testDaemon(t)
	now := time.Now()
	mac, _ := net.ParseMAC("02:00:00:00:00:0a")
	addr := netip.MustParseAddr("2001:db8:1000:100::a")
	d.st.WAN.Interface, d.st.LAN.Interface = "uplink0", "lan0"
	d.st.ULA = netip.MustParsePrefix("fd12:3456:789a::/48")
	d.st.Delegated = &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(2 * time.Hour)}
	d.sawFrame(mac, addr, now)
	if err := d.SetPolicy(mac.String(), state.HostPolicy{AppPinholes: true}); err != nil {
		t.Fatal(err)
	}
	req := upnp.PinholeRequest{Source: addr, Client: addr, Proto: 6, Port: 8090, Lease: time.Hour}
	p, err := d.AddPinhole(req)
	if err != nil || p.ID != 1 {
		t.Fatalf("AddPinhole = %+v, %v", p, err)
	}
	if got, err := d.Pinhole(addr, 1); err != nil || got.Port != 8090 || got.Client != addr {
		t.Errorf("Pinhole(1) = %+v, %v", got, err)
	}
	rules := func() []firewall.HostRule {
		d.mu.Lock()
		defer d.mu.Unlock()
		return plan.All(&d.st, d.options, time.Now()).Firewall.HostRules
	}
	if r := rules(); len(r) != 1 || r[0].Addrs[0] != addr || r[0].Ports[0] != (firewall.Port{Proto: firewall.TCP, Port: 8090}) {
		t.Errorf("firewall host rules %+v, want the pinhole", r)
	}

	if err := d.SetPolicy(mac.String(), state.HostPolicy{}); err != nil {
		t.Fatal(err)
	}
	d.apply(time.Now())
	if r := rules(); len(r) != 0 || len(d.Snapshot().Hosts[mac.String()].Pinholes) != 0 {
		t.Errorf("policy off: rules %+v, pinholes %+v", r, d.Snapshot().Hosts[mac.String()].Pinholes)
	}
	if _, err := d.AddPinhole(req); !refusedFor(err, plan.PinholePolicyOff) {
		t.Errorf("AddPinhole with the policy off: %v", err)
	}

	// A new address, seen a moment after the request arrived.
	if err := d.SetPolicy(mac.String(), state.HostPolicy{AppPinholes: true}); err != nil {
		t.Fatal(err)
	}
	fresh := netip.MustParseAddr("2001:db8:1000:100::f")
	go func() {
		time.Sleep(2 * sightingWait)
		d.sawFrame(mac, fresh, time.Now())
	}()
	if _, err := d.AddPinhole(upnp.PinholeRequest{Source: fresh, Client: fresh, Proto: 17, Port: 3478, Lease: time.Minute}); err != nil {
		t.Errorf("AddPinhole from an address seen just after: %v", err)
	}
}
