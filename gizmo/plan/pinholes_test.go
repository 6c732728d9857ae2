package plan

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/firewall"
	"codeberg.org/monostack/gizmo/services/upnp"
)

// The hosts of the pinhole tests, on the lab's LAN /64
// 2001:db8:1000:100::/64 (fwState's delegation).
const (
	macApp    = "02:00:00:00:00:0a" // app pinholes on
	macOff    = "02:00:00:00:00:0b" // app pinholes off (the default)
	macSpoof1 = "02:00:00:00:00:0c" // both claim 2001:db8:1000:100::cc
	macSpoof2 = "02:00:00:00:00:0d"
)

var (
	appAddr   = fwA("2001:db8:1000:100::a")
	appULA    = fwA("fd12:3456:789a::a")
	appStale  = fwA("2001:db8:1000:100::a0")
	offAddr   = fwA("2001:db8:1000:100::b")
	spoofAddr = fwA("2001:db8:1000:100::cc")
)

func pinholeState() *state.State {
	st := fwState()
	st.Hosts = map[string]*state.Host{
		macApp: {MAC: macApp, Policy: state.HostPolicy{AppPinholes: true}, Addrs: map[netip.Addr]time.Time{
			appAddr: fwNow, appULA: fwNow, appStale: fwNow.Add(-HostAddrMaxAge - time.Hour),
		}},
		macOff:    {MAC: macOff, Addrs: map[netip.Addr]time.Time{offAddr: fwNow}},
		macSpoof1: {MAC: macSpoof1, Policy: state.HostPolicy{AppPinholes: true}, Addrs: map[netip.Addr]time.Time{spoofAddr: fwNow}},
		macSpoof2: {MAC: macSpoof2, Policy: state.HostPolicy{AppPinholes: true}, Addrs: map[netip.Addr]time.Time{spoofAddr: fwNow.Add(-time.Minute)}},
	}
	return st
}

// ask is an AddPinhole from src for its own address, TCP 8090, an hour.
func ask(src netip.Addr) upnp.PinholeRequest {
	return upnp.PinholeRequest{Source: src, Client: src, Proto: 6, Port: 8090, Lease: time.Hour}
}

// withPinholes gives the host n pinholes of its address, TCP ports from
// 20000, expiring at exp, with IDs from first.
func withPinholes(h *state.Host, addr netip.Addr, n int, first uint16, exp time.Time) {
	for i := range n {
		h.Pinholes = append(h.Pinholes, state.Pinhole{ID: first + uint16(i), Client: addr, Proto: 6, Port: 20000 + uint16(i), Expires: exp})
	}
}

func refusal(err error) (upnp.RefusalKind, string) {
	var r *upnp.Refusal
	if !errors.As(err, &r) {
		return -1, fmt.Sprint(err)
	}
	return r.Kind, r.Reason
}

func TestPinholeAdd(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(st *state.State)
		req    upnp.PinholeRequest
		kind   upnp.RefusalKind
		reason string // "": granted
		id     uint16
		exp    time.Time
	}{
		{name: "WANIPv6FirewallControl 2.6.3.3: an allowed host opens a pinhole on its own address",
			req: ask(appAddr), id: 1, exp: fwNow.Add(time.Hour)},
		{name: "2.6.3.3: InternalClient must be the asker's own address, not another host's",
			req: upnp.PinholeRequest{Source: appAddr, Client: offAddr, Proto: 6, Port: 8090, Lease: time.Hour}, kind: upnp.NotAuthorized, reason: PinholeNotOwnAddress},
		{name: "2.6.3.3: nor another address of its own",
			req: upnp.PinholeRequest{Source: appULA, Client: appAddr, Proto: 6, Port: 8090, Lease: time.Hour}, kind: upnp.NotAuthorized, reason: PinholeNotOwnAddress},
		{name: "an address no host was seen with", req: ask(fwA("2001:db8:1000:100::99")), kind: upnp.NotAuthorized, reason: PinholeUnknownHost},
		{name: "an address not seen for HostAddrMaxAge is no longer the host's", req: ask(appStale), kind: upnp.NotAuthorized, reason: PinholeUnknownHost},
		{name: "two hosts claim the address: neither gets it", req: ask(spoofAddr), kind: upnp.NotAuthorized, reason: PinholeAmbiguousHost},
		{name: "policy off (the default): 703 InboundPinholeNotAllowed", req: ask(offAddr), kind: upnp.NotAllowed, reason: PinholePolicyOff},
		{name: "the ULA is not reachable from the internet", req: ask(appULA), kind: upnp.NotAuthorized, reason: PinholeNotInLAN},
		{name: "no delegation, no LAN /64 to open",
			setup: func(st *state.State) { st.Delegated = nil }, req: ask(appAddr), kind: upnp.NotAuthorized, reason: PinholeNotInLAN},
		{name: "2.6.3.3: ports below 1024 are the system's",
			req: upnp.PinholeRequest{Source: appAddr, Client: appAddr, Proto: 6, Port: 22, Lease: time.Hour}, kind: upnp.NotAuthorized, reason: PinholeLowPort},
		{name: "a protocol the firewall has no rule for",
			req: upnp.PinholeRequest{Source: appAddr, Client: appAddr, Proto: 136, Port: 8090, Lease: time.Hour}, kind: upnp.NotAuthorized, reason: PinholeBadProtocol},
		{name: "A_ARG_TYPE_LeaseTime: a lease above a day is clamped to a day",
			req: upnp.PinholeRequest{Source: appAddr, Client: appAddr, Proto: 17, Port: 8090, Lease: 10 * 24 * time.Hour}, id: 1, exp: fwNow.Add(MaxPinholeLease)},
		{name: "2.6.3.3: the same five-tuple renews the pinhole and keeps its UniqueID",
			setup: func(st *state.State) {
				st.Hosts[macApp].Pinholes = []state.Pinhole{{ID: 7, Client: appAddr, Proto: 6, Port: 8090, Expires: fwNow.Add(time.Minute)}}
				st.LastPinholeID = 7
			},
			req: ask(appAddr), id: 7, exp: fwNow.Add(time.Hour)},
		{name: "another remote host is another pinhole",
			setup: func(st *state.State) {
				st.Hosts[macApp].Pinholes = []state.Pinhole{{ID: 7, Client: appAddr, Proto: 6, Port: 8090, Expires: fwNow.Add(time.Minute)}}
				st.LastPinholeID = 7
			},
			req: upnp.PinholeRequest{Source: appAddr, Client: appAddr, RemoteHost: fwA("2001:db8:ffff::10"), Proto: 6, Port: 8090, Lease: time.Hour}, id: 8, exp: fwNow.Add(time.Hour)},
		{name: "701: a host holds at most PinholesPerHost",
			setup: func(st *state.State) {
				withPinholes(st.Hosts[macApp], appAddr, PinholesPerHost, 100, fwNow.Add(time.Hour))
			},
			req: ask(appAddr), kind: upnp.SpaceExhausted, reason: PinholeHostFull},
		{name: "expired pinholes do not count",
			setup: func(st *state.State) { withPinholes(st.Hosts[macApp], appAddr, PinholesPerHost, 100, fwNow) },
			req:   ask(appAddr), id: 1, exp: fwNow.Add(time.Hour)},
		{name: "701: the LAN holds at most MaxPinholes",
			setup: func(st *state.State) {
				for i := range MaxPinholes / PinholesPerHost {
					mac := fmt.Sprintf("02:00:00:00:01:%02x", i)
					a := fwA(fmt.Sprintf("2001:db8:1000:100::1:%x", i))
					h := &state.Host{MAC: mac, Policy: state.HostPolicy{AppPinholes: true}, Addrs: map[netip.Addr]time.Time{a: fwNow}}
					withPinholes(h, a, PinholesPerHost, uint16(1000+i*PinholesPerHost), fwNow.Add(time.Hour))
					st.Hosts[mac] = h
				}
			},
			req: ask(appAddr), kind: upnp.SpaceExhausted, reason: PinholeFull},
		{name: "UniqueIDs come in turn, wrap past 65535, skip 0 and those in use",
			setup: func(st *state.State) {
				st.LastPinholeID = 65535
				st.Hosts[macApp].Pinholes = []state.Pinhole{{ID: 1, Client: appAddr, Proto: 6, Port: 9000, Expires: fwNow.Add(time.Hour)}}
			},
			req: ask(appAddr), id: 2, exp: fwNow.Add(time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := edited(pinholeState(), tc.setup)
			mac, p, err := PinholeAdd(st, tc.req, fwNow)
			if tc.reason != "" {
				if k, r := refusal(err); k != tc.kind || r != tc.reason {
					t.Fatalf("refused with %d %q, want %d %q (granted %+v)", k, r, tc.kind, tc.reason, p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mac != macApp || p.ID != tc.id || !p.Expires.Equal(tc.exp) || p.Client != tc.req.Client || p.Port != tc.req.Port || p.Proto != tc.req.Proto {
				t.Errorf("granted %s %+v, want %s ID %d until %v", mac, p, macApp, tc.id, tc.exp)
			}
		})
	}
}

func TestPinholeRenewDelete(t *testing.T) {
	setup := func() *state.State {
		st := pinholeState()
		st.Hosts[macApp].Pinholes = []state.Pinhole{
			{ID: 3, Client: appAddr, Proto: 6, Port: 8090, Expires: fwNow.Add(time.Minute)},
			{ID: 4, Client: appAddr, Proto: 17, Port: 8091, Expires: fwNow.Add(-time.Second)}, // expired
		}
		st.Hosts[macSpoof1].Addrs = map[netip.Addr]time.Time{fwA("2001:db8:1000:100::c1"): fwNow}
		return st
	}
	tests := []struct {
		name   string
		src    netip.Addr
		id     uint16
		off    bool
		kind   upnp.RefusalKind
		reason string
	}{
		{name: "the pinhole's own address renews and deletes it", src: appAddr, id: 3},
		{name: "UpdatePinhole, DeletePinhole: another host's address may not: 606", src: fwA("2001:db8:1000:100::c1"), id: 3, kind: upnp.NotAuthorized, reason: PinholeOtherHost},
		{name: "704: no pinhole with that UniqueID", src: appAddr, id: 9, kind: upnp.NoSuchEntry, reason: PinholeNoSuchEntry},
		{name: "704: an expired pinhole is gone", src: appAddr, id: 4, kind: upnp.NoSuchEntry, reason: PinholeNoSuchEntry},
		{name: "704: the policy turned off closed it", src: appAddr, id: 3, off: true, kind: upnp.NoSuchEntry, reason: PinholeNoSuchEntry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := setup()
			st.Hosts[macApp].Policy.AppPinholes = !tc.off
			mac, p, err := PinholeRenew(st, tc.src, tc.id, 3*24*time.Hour, fwNow)
			dmac, derr := PinholeDelete(st, tc.src, tc.id, fwNow)
			if tc.reason != "" {
				for _, e := range []error{err, derr} {
					if k, r := refusal(e); k != tc.kind || r != tc.reason {
						t.Errorf("refused with %d %q, want %d %q", k, r, tc.kind, tc.reason)
					}
				}
				return
			}
			if err != nil || derr != nil {
				t.Fatal(err, derr)
			}
			if mac != macApp || dmac != macApp || p.ID != tc.id || !p.Expires.Equal(fwNow.Add(MaxPinholeLease)) {
				t.Errorf("renewed %s %+v (lease clamped to a day), delete for %s", mac, p, dmac)
			}
		})
	}
}

// The pinholes in force become host rules: one port on one address, for
// every remote; the others open nothing.
func TestFirewallPinholes(t *testing.T) {
	st := pinholeState()
	st.Hosts[macApp].Pinholes = []state.Pinhole{
		{ID: 1, Client: appAddr, Proto: 6, Port: 8090, RemoteHost: fwA("2001:db8:ffff::10"), Expires: fwNow.Add(time.Hour)},
		{ID: 2, Client: appAddr, Proto: 17, Port: 51413, Expires: fwNow.Add(2 * time.Hour)},
		{ID: 3, Client: appAddr, Proto: 6, Port: 8091, Expires: fwNow},                                    // expired
		{ID: 4, Client: appStale, Proto: 6, Port: 8092, Expires: fwNow.Add(time.Hour)},                    // the host left the address
		{ID: 5, Client: fwA("2001:db8:1000:101::a"), Proto: 6, Port: 8093, Expires: fwNow.Add(time.Hour)}, // not the LAN /64 (not seen either)
	}
	st.Hosts[macOff].Pinholes = []state.Pinhole{{ID: 6, Client: offAddr, Proto: 6, Port: 8094, Expires: fwNow.Add(time.Hour)}} // policy off

	pinholeRulesAt := func(now time.Time) []firewall.HostRule {
		p, err := Firewall(st, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := firewall.Validate(p); err != nil {
			t.Fatal(err)
		}
		return p.HostRules // no host of pinholeState exposes ports
	}
	want := []firewall.HostRule{
		{Host: macApp, Addrs: []netip.Addr{appAddr}, Ports: []firewall.Port{{Proto: firewall.TCP, Port: 8090}}},
		{Host: macApp, Addrs: []netip.Addr{appAddr}, Ports: []firewall.Port{{Proto: firewall.UDP, Port: 51413}}},
	}
	if got := pinholeRulesAt(fwNow); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("host rules\n got %v\nwant %v", got, want)
	}
	// Expiry: an hour later only the UDP pinhole is left.
	if got := pinholeRulesAt(fwNow.Add(time.Hour)); fmt.Sprint(got) != fmt.Sprint(want[1:]) {
		t.Errorf("an hour later: %v, want %v", got, want[1:])
	}
	// The owner turns the policy off: the plan drops them at once.
	st.Hosts[macApp].Policy.AppPinholes = false
	if got := pinholeRulesAt(fwNow); len(got) != 0 {
		t.Errorf("policy off: %v, want no rules", got)
	}
	if !PinholesAllowed(pinholeState(), appAddr, fwNow) || PinholesAllowed(pinholeState(), offAddr, fwNow) || PinholesAllowed(pinholeState(), appULA, fwNow) {
		t.Error("PinholesAllowed: want the allowed host's global address only")
	}
}

func TestUPnPPlan(t *testing.T) {
	st := fwState()
	p := UPnP(st, false, fwNow)
	if err := upnp.Validate(p); err != nil || !p.Enabled() {
		t.Fatalf("plan %+v: %v", p, err)
	}
	want := []netip.Addr{fwA("2001:db8:1000:100::1"), fwA("fd12:3456:789a::1"), fwA("203.0.113.129")}
	if fmt.Sprint(p.Listen) != fmt.Sprint(want) || p.Location6 != want[0] || p.Location4 != want[2] || p.Port != UPnPPort {
		t.Errorf("RFC 6724 rule 6: the IPv6 LOCATION is the delegation's address, so hosts ask from their global ones: %+v", p)
	}
	if again := UPnP(fwState(), false, fwNow.Add(time.Hour)); again.UUID != p.UUID {
		t.Error("the device's UUID changed")
	}
	st.Delegated = nil
	if p := UPnP(st, false, fwNow); p.Location6 != fwA("fd12:3456:789a::1") || fmt.Sprint(p.Listen) != fmt.Sprint(want[1:]) {
		t.Errorf("without a delegation: %+v, want the ULA", p)
	}
	if p := UPnP(fwState(), true, fwNow); p.Enabled() {
		t.Errorf("existing network (the network's router is the firewall): %+v, want off", p)
	}
}
