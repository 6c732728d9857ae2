package plan

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

func TestInternetOf(t *testing.T) {
	now := fwNow
	dns := []netip.AddrPort{netip.MustParseAddrPort("[2001:db8:0:1::53]:53")}
	delegated := &state.DelegatedPrefix{Prefix: fwP("2001:db8:1000:100::/56"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(2 * time.Hour)}
	lease := &state.IPv4Lease{Addr: fwP("192.0.2.100/24"), Expires: now.Add(time.Hour)}
	up := state.WAN{Interface: "uplink0", Up: true, Router: fwA("fe80::1"), RouterLifetimeUntil: now.Add(30 * time.Minute)}
	for _, tc := range []struct {
		rule     string
		st       state.State
		existing bool
		wantKey  string
		wantOK   bool
	}{
		{"a prefix, an IPv4 lease and DNS: IPv6 and IPv4 via NAT64", state.State{WAN: withIPv4(up, lease), Delegated: delegated, UpstreamDNS: dns}, false, "ok", true},
		{"RFC 8781: the ISP's PREF64 means its NAT64 carries IPv4", state.State{WAN: up, Delegated: delegated, UpstreamDNS: dns, Pref64Source: state.Pref64Upstream}, false, "ok", true},
		{"RFC 7050: a prefix the ISP's DNS64 synthesizes into means its NAT64 carries IPv4", state.State{WAN: up, Delegated: delegated, UpstreamDNS: dns, Pref64Source: state.Pref64Discovered}, false, "ok", true},
		{"RFC 7278: a shared /64 is IPv6 for the LAN", state.State{WAN: withIPv4(up, lease), Shared: &state.UpstreamPrefix{Prefix: fwP("2001:db8:0:1::/64"), ValidUntil: now.Add(time.Hour)}, UpstreamDNS: dns}, false, "ok", true},
		{"no port heard an upstream", state.State{}, false, "no-wan", false},
		{"the WAN port has no carrier", state.State{WAN: state.WAN{Interface: "uplink0"}}, false, "no-cable", false},
		{"carrier but no answer yet", state.State{WAN: state.WAN{Interface: "uplink0", Up: true}}, false, "waiting", false},
		{"RFC 4861 §6.3.4: an expired router lifetime is no router", state.State{WAN: state.WAN{Interface: "uplink0", Up: true, Router: fwA("fe80::1"), RouterLifetimeUntil: now.Add(-time.Second)}}, false, "waiting", false},
		{"no resolver from any source", state.State{WAN: withIPv4(up, lease), Delegated: delegated}, false, "no-dns", false},
		{"RFC 6333: a prefix and a softwire to the AFTR: IPv6 and IPv4 via NAT64", state.State{WAN: withAFTR(up), Delegated: delegated, UpstreamDNS: dns}, false, "ok", true},
		{"RFC 6334: an AFTR named but not resolved is no IPv4 yet", state.State{WAN: withAFTRName(up), Delegated: delegated, UpstreamDNS: dns}, false, "no-ipv4", false},
		{"a prefix but no IPv4 lease", state.State{WAN: up, Delegated: delegated, UpstreamDNS: dns}, false, "no-ipv4", false},
		{"RFC 2131 §4.4.5: an expired IPv4 lease is none", state.State{WAN: withIPv4(up, &state.IPv4Lease{Addr: fwP("192.0.2.100/24"), Expires: now.Add(-time.Second)}), Delegated: delegated, UpstreamDNS: dns}, false, "no-ipv4", false},
		{"an IPv4 lease but no prefix: ULA + NAT64", state.State{WAN: withIPv4(up, lease), UpstreamDNS: dns}, false, "no-prefix", false},
		{"an IPv4-only upstream: ULA + NAT64", state.State{WAN: withIPv4(state.WAN{Interface: "uplink0", Up: true}, lease), UpstreamDNS: dns}, false, "no-prefix", false},
		{"RFC 8415 §18.2.10.1: an expired delegation is none", state.State{WAN: withIPv4(up, lease), UpstreamDNS: dns, Delegated: &state.DelegatedPrefix{Prefix: fwP("2001:db8:1000:100::/56"), ValidUntil: now}}, false, "no-prefix", false},
		{"a router that gives neither a prefix nor IPv4", state.State{WAN: up, UpstreamDNS: dns}, false, "no-prefix-no-ipv4", false},
		{"an existing network's router is heard", state.State{WAN: up, UpstreamDNS: dns}, true, "ok", true},
		{"an existing network's router is not heard yet", state.State{WAN: state.WAN{Interface: "lan0", Up: true}}, true, "waiting", false},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			got := InternetOf(&tc.st, tc.existing, now)
			if got.Key != tc.wantKey || got.OK != tc.wantOK || got.Line == "" {
				t.Errorf("InternetOf = %+v, want key %q, OK %v", got, tc.wantKey, tc.wantOK)
			}
			if !got.OK && got.Hint == "" {
				t.Errorf("%q comes without a hint", got.Line)
			}
		})
	}
}

func withIPv4(w state.WAN, l *state.IPv4Lease) state.WAN {
	w.IPv4 = l
	return w
}

func withAFTR(w state.WAN) state.WAN {
	w.AFTRName, w.AFTR = "aftr.example.test", fwA("2001:db8:0:5::1")
	return w
}

func withAFTRName(w state.WAN) state.WAN {
	w.AFTRName = "aftr.example.test"
	return w
}
