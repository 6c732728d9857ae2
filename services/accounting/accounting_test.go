package accounting

import (
	"net/netip"
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// TestCountsForwardedBytesPerAddress routes pings between a LAN host and a
// WAN host through a router namespace and checks that the router's
// accounting table attributes the bytes to the LAN host's addresses.
func TestCountsForwardedBytesPerAddress(t *testing.T) {
	// Installs the lab's Debian packages when it can, else skips naming them.
	depstest.Require(t, deps.Lab)
	host, router, inet := testns.New(t, "acct-h"), testns.New(t, "acct-r"), testns.New(t, "acct-i")
	testns.Veth(t, router, "lan0", host, "eth0")
	testns.Veth(t, router, "uplink0", inet, "eth0")
	for _, c := range [][]string{
		{"-n", host, "addr", "add", "2001:db8:1::10/64", "dev", "eth0", "nodad"},
		{"-n", host, "addr", "add", "203.0.113.130/25", "dev", "eth0"},
		{"-n", host, "link", "set", "eth0", "up"},
		{"-n", host, "route", "add", "default", "via", "203.0.113.129"},
		{"-n", host, "-6", "route", "add", "default", "via", "2001:db8:1::1"},
		{"-n", router, "addr", "add", "2001:db8:1::1/64", "dev", "lan0", "nodad"},
		{"-n", router, "addr", "add", "203.0.113.129/25", "dev", "lan0"},
		{"-n", router, "addr", "add", "2001:db8:2::1/64", "dev", "uplink0", "nodad"},
		{"-n", router, "addr", "add", "192.0.2.1/24", "dev", "uplink0"},
		{"-n", router, "link", "set", "lan0", "up"},
		{"-n", router, "link", "set", "uplink0", "up"},
		{"-n", inet, "addr", "add", "2001:db8:2::2/64", "dev", "eth0", "nodad"},
		{"-n", inet, "addr", "add", "192.0.2.2/24", "dev", "eth0"},
		{"-n", inet, "link", "set", "eth0", "up"},
		{"-n", inet, "route", "add", "default", "via", "192.0.2.1"},
		{"-n", inet, "-6", "route", "add", "default", "via", "2001:db8:2::1"},
	} {
		testns.IP(t, c...)
	}
	testns.Sysctl(t, router, "net.ipv6.conf.all.forwarding=1", "net.ipv4.ip_forward=1")

	s, err := New(Config{NetNS: int(testns.Open(t, router).Fd())})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.apply(Plan{LAN: "lan0", WAN: "uplink0"}); err != nil {
		t.Fatal(err)
	}
	// Applying again (a restart) replaces the table instead of failing.
	if err := s.apply(Plan{LAN: "lan0", WAN: "uplink0"}); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	testns.Exec(t, host, "ping", "-c", "5", "-i", "0.05", "-s", "1000", "2001:db8:2::2")
	testns.Exec(t, host, "ping", "-c", "3", "-i", "0.05", "-s", "500", "192.0.2.2")
	v6, v4, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	h6 := v6[netip.MustParseAddr("2001:db8:1::10")]
	// 5 echo requests of 1000 bytes payload + 8 ICMPv6 + 40 IPv6 header.
	if h6.Out != 5*1048 || h6.In != 5*1048 {
		t.Errorf("IPv6 bytes of the LAN host = %+v, want 5240 each way", h6)
	}
	h4 := v4[netip.MustParseAddr("203.0.113.130")]
	if h4.Out != 3*528 || h4.In != 3*528 {
		t.Errorf("IPv4 bytes of the LAN host = %+v, want 1584 each way", h4)
	}
	if _, ok := v6[netip.MustParseAddr("2001:db8:2::2")]; ok {
		t.Errorf("the WAN host was counted as a LAN address: %v", v6)
	}
	if err := s.remove(); err != nil {
		t.Fatal(err)
	}
	if out := testns.Exec(t, router, "nft", "list", "tables"); strings.Contains(out, TableName) {
		t.Errorf("table left after remove: %s", out)
	}
}

// On an IPv6-only line the legacy hosts' IPv4 leaves by the CLAT's link
// and the replies come in on the uplink (services/clat): with IPv4Out the
// table counts both directions.
func TestCountsIPv4LeavingByAnotherLink(t *testing.T) {
	depstest.Require(t, deps.Lab)
	host, router, inet := testns.New(t, "acct-h"), testns.New(t, "acct-r"), testns.New(t, "acct-i")
	testns.Veth(t, router, "lan0", host, "eth0")
	testns.Veth(t, router, "uplink0", inet, "eth0")
	testns.Veth(t, router, "clat0", inet, "eth1")
	for _, c := range [][]string{
		{"-n", host, "addr", "add", "203.0.113.130/25", "dev", "eth0"},
		{"-n", host, "link", "set", "eth0", "up"},
		{"-n", host, "route", "add", "default", "via", "203.0.113.129"},
		{"-n", router, "addr", "add", "203.0.113.129/25", "dev", "lan0"},
		{"-n", router, "addr", "add", "192.0.2.1/24", "dev", "uplink0"},
		{"-n", router, "addr", "add", "192.0.0.4/29", "dev", "clat0"},
		{"-n", router, "link", "set", "lan0", "up"},
		{"-n", router, "link", "set", "uplink0", "up"},
		{"-n", router, "link", "set", "clat0", "up"},
		{"-n", router, "route", "add", "default", "via", "192.0.0.5"},
		{"-n", inet, "addr", "add", "192.0.2.2/24", "dev", "eth0"},
		{"-n", inet, "addr", "add", "192.0.0.5/29", "dev", "eth1"},
		{"-n", inet, "addr", "add", "198.51.100.80/32", "dev", "lo"},
		{"-n", inet, "link", "set", "eth0", "up"},
		{"-n", inet, "link", "set", "eth1", "up"},
		{"-n", inet, "route", "add", "203.0.113.128/25", "via", "192.0.2.1"},
	} {
		testns.IP(t, c...)
	}
	testns.Sysctl(t, router, "net.ipv4.ip_forward=1")
	s, err := New(Config{NetNS: int(testns.Open(t, router).Fd())})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.apply(Plan{LAN: "lan0", WAN: "uplink0", IPv4Out: "clat0"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.remove() })
	testns.Exec(t, host, "ping", "-c", "3", "-i", "0.05", "-s", "500", "198.51.100.80")
	_, v4, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	if h4 := v4[netip.MustParseAddr("203.0.113.130")]; h4.Out != 3*528 || h4.In != 3*528 {
		t.Errorf("IPv4 bytes of the LAN host = %+v, want 1584 each way", h4)
	}
}
