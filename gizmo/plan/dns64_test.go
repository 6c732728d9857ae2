package plan

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dns64"
)

var dns64Now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func dns64State() *state.State {
	t0 := dns64Now
	ula := netip.MustParsePrefix("fd00:1:2::/48")
	legacy := netip.MustParsePrefix("203.0.113.129/25")
	return &state.State{
		LAN:       state.LAN{Legacy4: legacy, DNS: state.DNSAddrsIn(ula, legacy)},
		ULA:       ula,
		Delegated: &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), ValidUntil: t0.Add(time.Hour)},
		Pref64:    netip.MustParsePrefix("2001:db8:64::/96"),
		UpstreamDNS: []netip.AddrPort{
			netip.MustParseAddrPort("[2001:db8:0:1::53]:53"),
			netip.MustParseAddrPort("192.0.2.53:53"),
			netip.MustParseAddrPort("[2001:db8:0:1::53]:53"),
			netip.MustParseAddrPort("[fd00:1:2::53]:53"),
		},
		Hosts: map[string]*state.Host{
			"02:00:00:00:00:01": {
				MAC: "02:00:00:00:00:01", Hostname: "Laptop.local",
				Addrs: map[netip.Addr]time.Time{
					netip.MustParseAddr("2001:db8:1000::100"): t0,
					netip.MustParseAddr("fe80::1"):            t0,
					netip.MustParseAddr("2001:db8:1000::aa"):  t0,
				},
				Policy: state.HostPolicy{DNS64: true},
			},
			"02:00:00:00:00:02": {
				MAC: "02:00:00:00:00:02", Hostname: "printer",
				IPv4Lease: netip.MustParseAddr("203.0.113.131"),
				Addrs:     map[netip.Addr]time.Time{netip.MustParseAddr("2001:db8:1000::aa"): t0.Add(time.Hour)},
				LastSeen:  t0,
				Policy:    state.HostPolicy{DNS64: false, Hostname: "Old Printer"},
			},
		},
	}
}

func TestDNS64Plan(t *testing.T) {
	got := DNS64(dns64State(), dns64Now)
	on := dns64.ClientPolicy{MAC: "02:00:00:00:00:01", DNS64: true}
	off := dns64.ClientPolicy{MAC: "02:00:00:00:00:02", DNS64: false}
	want := dns64.Plan{
		Pref64: netip.MustParsePrefix("2001:db8:64::/96"),
		Upstreams: []netip.AddrPort{
			netip.MustParseAddrPort("[2001:db8:0:1::53]:53"),
			netip.MustParseAddrPort("192.0.2.53:53"),
		},
		Listen: []dns64.Listener{
			{Addr: netip.MustParseAddrPort("[fd00:1:2::53]:53"), Source: dns64.SourceRDNSS},
			{Addr: netip.MustParseAddrPort("[fd00:1:2::35]:53"), Source: dns64.SourceDHCPv6},
			{Addr: netip.MustParseAddrPort("203.0.113.129:53"), Source: dns64.SourceDHCPv4},
		},
		Clients: map[netip.Addr]dns64.ClientPolicy{
			netip.MustParseAddr("2001:db8:1000::100"): on,
			netip.MustParseAddr("fe80::1"):            on,
			netip.MustParseAddr("2001:db8:1000::aa"):  off,
			netip.MustParseAddr("203.0.113.131"):      off,
		},
		DefaultDNS64: true,
		LocalDomain:  "home.arpa.",
		LocalNames: map[string][]netip.Addr{
			"laptop.home.arpa.": {netip.MustParseAddr("2001:db8:1000::100")},
			"old-printer.home.arpa.": {
				netip.MustParseAddr("203.0.113.131"), netip.MustParseAddr("2001:db8:1000::aa"),
			},
			"gizmo.home.arpa.": {netip.MustParseAddr("fd00:1:2::1"), netip.MustParseAddr("203.0.113.129")},
		},
		LocalNetworks: []netip.Prefix{
			netip.MustParsePrefix("203.0.113.128/25"),
			netip.MustParsePrefix("fd00:1:2::/48"),
			netip.MustParsePrefix("2001:db8:1000::/64"),
		},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("DNS64 plan (-want +got):\n%s", diff)
	}
}

func TestDNS64PlanRules(t *testing.T) {
	t.Run("RFC 6052 2.1: the well-known prefix when none is known", func(t *testing.T) {
		st := dns64State()
		st.Pref64 = netip.Prefix{}
		if got := DNS64(st, dns64Now).Pref64; got != state.WellKnownPref64 {
			t.Errorf("Pref64 = %s", got)
		}
	})
	t.Run("never forwards to its own listening addresses", func(t *testing.T) {
		for _, u := range DNS64(dns64State(), dns64Now).Upstreams {
			if u.Addr() == netip.MustParseAddr("fd00:1:2::53") {
				t.Errorf("upstream %s is our own RDNSS address", u)
			}
		}
	})
	t.Run("the plan is accepted by the service", func(t *testing.T) {
		if err := DNS64(dns64State(), dns64Now).Validate(); err != nil {
			t.Error(err)
		}
	})
	t.Run("RFC 2181 5: a legacy host's lease, also among its addresses, is one record", func(t *testing.T) {
		st := dns64State()
		h := st.Hosts["02:00:00:00:00:02"]
		h.Addrs[h.IPv4Lease] = dns64Now
		got := DNS64(st, dns64Now).LocalNames["old-printer.home.arpa."]
		if want := []netip.Addr{netip.MustParseAddr("203.0.113.131"), netip.MustParseAddr("2001:db8:1000::aa")}; !slices.Equal(got, want) {
			t.Errorf("old-printer.home.arpa. = %v, want %v", got, want)
		}
	})
	t.Run("a name in use stays with the host that had it first; the other gets none", func(t *testing.T) {
		st := dns64State()
		// 02 announced "printer" long before 01, which is first in MAC
		// order: the older claim wins, whatever the order of the MACs.
		st.Hosts["02:00:00:00:00:01"].Hostname = "printer"
		st.Hosts["02:00:00:00:00:01"].FirstSeen = dns64Now
		st.Hosts["02:00:00:00:00:02"].Policy.Hostname = ""
		st.Hosts["02:00:00:00:00:02"].FirstSeen = dns64Now.Add(-24 * time.Hour)
		st.Hosts["02:00:00:00:00:03"] = &state.Host{MAC: "02:00:00:00:00:03", Hostname: "gizmo",
			IPv4Lease: netip.MustParseAddr("203.0.113.140")}
		names := DNS64(st, dns64Now).LocalNames
		if got, want := names["printer.home.arpa."], []netip.Addr{netip.MustParseAddr("203.0.113.131"), netip.MustParseAddr("2001:db8:1000::aa")}; !slices.Equal(got, want) {
			t.Errorf("printer.home.arpa = %v, want only the first claimant's %v", got, want)
		}
		for name, addrs := range names {
			for _, a := range addrs {
				if a == netip.MustParseAddr("2001:db8:1000::100") || a == netip.MustParseAddr("203.0.113.140") {
					t.Errorf("%s carries %s of a host whose name was taken", name, a)
				}
			}
		}
		if got := names["gizmo.home.arpa."]; slices.Contains(got, netip.MustParseAddr("203.0.113.140")) {
			t.Errorf("a host took gizmo.home.arpa: %v", got)
		}
	})
	t.Run("reverse lookups of every LAN network stay local: retired and shared /64s too", func(t *testing.T) {
		st := dns64State()
		st.Retired = []state.DelegatedPrefix{
			{Prefix: netip.MustParsePrefix("2001:db8:2000::/56"), ValidUntil: dns64Now.Add(time.Minute)},
			{Prefix: netip.MustParsePrefix("2001:db8:3000::/56"), ValidUntil: dns64Now},
		}
		st.Shared = &state.UpstreamPrefix{Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"), ValidUntil: dns64Now.Add(time.Hour)}
		got := DNS64(st, dns64Now).LocalNetworks
		want := []netip.Prefix{
			netip.MustParsePrefix("203.0.113.128/25"),
			netip.MustParsePrefix("fd00:1:2::/48"),
			netip.MustParsePrefix("2001:db8:1000::/64"),
			netip.MustParsePrefix("2001:db8:2000::/64"),
			netip.MustParsePrefix("2001:db8:0:1::/64"),
		}
		if !slices.Equal(got, want) {
			t.Errorf("LocalNetworks = %v, want %v (the expired retired prefix left out)", got, want)
		}
	})
	t.Run("RFC 1123 2.1: host names become one valid label", func(t *testing.T) {
		for in, want := range map[string]string{
			"Laptop.local": "laptop", "Old Printer": "old-printer", "-x-": "x", "ünï": "n", "": "",
			"a234567890123456789012345678901234567890123456789012345678901234567890": "a23456789012345678901234567890123456789012345678901234567890123",
		} {
			if got := hostLabel(in); got != want {
				t.Errorf("hostLabel(%q) = %q, want %q", in, got, want)
			}
		}
	})
}
