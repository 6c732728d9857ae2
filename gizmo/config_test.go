package main

import (
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsDefaultsNeedNoConfiguration(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/perm/gizmo" || c.Pref64Set || c.LANIPv4 != netip.MustParsePrefix("192.168.64.1/24") || c.V6OnlyWait != 1800*time.Second || !c.SetClock {
		t.Errorf("defaults = %+v", c)
	}
}

func TestParseFlagsAccepts(t *testing.T) {
	c, err := parseFlags([]string{"-wan", "uplink0", "-lan", "lan0", "-pref64", "2001:db8:64::/96",
		"-dns-upstream", "2001:db8:0:1::53, 192.0.2.53,[::1]:5353", "-lan-ipv4", "203.0.113.129/25"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{
		netip.MustParseAddrPort("[2001:db8:0:1::53]:53"),
		netip.MustParseAddrPort("192.0.2.53:53"),
		netip.MustParseAddrPort("[::1]:5353"),
	}
	if len(c.DNSUpstream) != 3 || c.DNSUpstream[0] != want[0] || c.DNSUpstream[1] != want[1] || c.DNSUpstream[2] != want[2] {
		t.Errorf("DNSUpstream = %v", c.DNSUpstream)
	}
	if c.Pref64 != netip.MustParsePrefix("2001:db8:64::/96") || !c.Pref64Set {
		t.Errorf("Pref64 = %v", c.Pref64)
	}
}

func TestParseFlagsRejectsWithOneLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"RFC 6052 §2.2: only defined prefix lengths", []string{"-pref64", "64:ff9b::/80"}, "-pref64"},
		{"RFC 6052 §2.2: u octet must be zero", []string{"-pref64", "2001:db8:0:0:ff00::/96"}, "bits 64..71"},
		{"IPv4 is no NAT64 prefix", []string{"-pref64", "192.0.2.0/24"}, "not an IPv6 prefix"},
		{"upstream must be an address", []string{"-dns-upstream", "resolver.example"}, "-dns-upstream"},
		{"legacy LAN must be IPv4", []string{"-lan-ipv4", "2001:db8::1/64"}, "-lan-ipv4"},
		{"legacy LAN needs a host address", []string{"-lan-ipv4", "192.168.1.0/24"}, "-lan-ipv4"},
		{"RFC 4861 §6.2.1: MaxRtrAdvInterval bounds", []string{"-ra-interval", "1s"}, "-ra-interval"},
		{"RFC 8925: MIN_V6ONLY_WAIT", []string{"-v6only-wait", "10s"}, "MIN_V6ONLY_WAIT"},
		{"unknown flag", []string{"-wna", "eth0"}, "not defined"},
		{"stray argument", []string{"eth0"}, "unexpected argument"},
		{"bad log level", []string{"-log-level", "loud"}, "-log-level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			if err == nil {
				t.Fatalf("parseFlags(%q) succeeded", tc.args)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line mentioning %q", err, tc.want)
			}
		})
	}
}
