package roles

import (
	"errors"
	"reflect"
	"testing"
)

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name     string
		evidence []Evidence
		want     Roles
		err      error
	}{
		{"the port that hears a default router is the WAN",
			[]Evidence{{Port: "eth0", LinkUp: true}, {Port: "eth1", LinkUp: true, RouterAdvertisement: true, AnyRouterAdvertisement: true}, {Port: "eth2", LinkUp: true}},
			Roles{WAN: "eth1", LANPorts: []string{"eth0", "eth2"}}, nil},
		{"an IPv4-only ISP is found by its DHCPv4 server",
			[]Evidence{{Port: "eth0", LinkUp: true, DHCPv4Server: true}, {Port: "eth1", LinkUp: true}},
			Roles{WAN: "eth0", LANPorts: []string{"eth1"}}, nil},
		{"a default router outranks a DHCPv4 server on another port",
			[]Evidence{{Port: "eth0", LinkUp: true, DHCPv4Server: true}, {Port: "eth1", LinkUp: true, RouterAdvertisement: true, AnyRouterAdvertisement: true}},
			Roles{WAN: "eth1", LANPorts: []string{"eth0"}}, nil},
		{"a port without carrier is never the WAN",
			[]Evidence{{Port: "eth0", RouterAdvertisement: true}, {Port: "eth1", LinkUp: true, DHCPv4Server: true}},
			Roles{WAN: "eth1", LANPorts: []string{"eth0"}}, nil},
		{"on a tie the current uplink0 keeps its role",
			[]Evidence{{Port: "eth0", LinkUp: true, DHCPv4Server: true}, {Port: "uplink0", LinkUp: true, DHCPv4Server: true}},
			Roles{WAN: "uplink0", LANPorts: []string{"eth0"}}, nil},
		{"one port that hears a router: NAT64 on an existing network",
			[]Evidence{{Port: "eth0", LinkUp: true, AnyRouterAdvertisement: true, RouterAdvertisement: true}},
			Roles{WAN: "eth0", ExistingNetwork: true}, nil},
		{"nothing heard yet", []Evidence{{Port: "eth0", LinkUp: true}, {Port: "eth1", LinkUp: true}}, Roles{}, ErrNoUpstream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decide(tc.evidence)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHysteresis(t *testing.T) {
	current := Roles{WAN: "uplink0", LANPorts: []string{"eth1"}}
	quietWAN := []Evidence{{Port: "uplink0", LinkUp: false}, {Port: "eth1", LinkUp: true, RouterAdvertisement: true}}
	liveWAN := []Evidence{{Port: "uplink0", LinkUp: true, RouterAdvertisement: true}, {Port: "eth1", LinkUp: true, RouterAdvertisement: true}}

	h := NewHysteresis(current, 3)
	// A flap: two bad rounds, then the uplink is back. No swap.
	for i, ev := range [][]Evidence{quietWAN, quietWAN, liveWAN, quietWAN, quietWAN} {
		if _, changed := h.Observe(ev); changed {
			t.Fatalf("round %d: roles swapped on a flap", i)
		}
	}
	// The cable really moved: the third consecutive round swaps.
	got, changed := h.Observe(quietWAN)
	if !changed || got.WAN != "eth1" {
		t.Fatalf("after three quiet rounds: %+v, %v; want WAN eth1", got, changed)
	}
	// A stray RA on the LAN while the WAN is alive never swaps.
	h = NewHysteresis(current, 1)
	if _, changed := h.Observe(liveWAN); changed {
		t.Error("swapped roles although the WAN still hears its router")
	}
}

func TestEvidenceHeard(t *testing.T) {
	for _, tc := range []struct {
		e    Evidence
		want string
	}{
		{Evidence{LinkUp: true}, "nothing"},
		{Evidence{LinkUp: true, RouterAdvertisement: true, AnyRouterAdvertisement: true, DHCPv4Server: true}, "a default router, a DHCPv4 server"},
		{Evidence{LinkUp: true, AnyRouterAdvertisement: true}, "an RA without a default route"},
		{Evidence{LinkUp: true, DHCPv6Server: true}, "a DHCPv6 server"},
	} {
		if got := tc.e.Heard(); got != tc.want {
			t.Errorf("%+v: Heard() = %q, want %q", tc.e, got, tc.want)
		}
	}
}
