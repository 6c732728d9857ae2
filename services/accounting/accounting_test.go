package accounting

import (
	"net/netip"
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// acctNet makes the tests' three namespaces, a LAN host, the router whose
// table counts and the internet, with IPv4 on both links routed through
// the router.
func acctNet(t *testing.T) (host, router, inet string) {
	t.Helper()
	// Installs the lab's Debian packages when it can, else skips naming them.
	depstest.Require(t, deps.Lab)
	host, router, inet = testns.New(t, "acct-h"), testns.New(t, "acct-r"), testns.New(t, "acct-i")
	testns.Veth(t, router, "lan0", host, "eth0")
	testns.Veth(t, router, "uplink0", inet, "eth0")
	testns.Up(t, host, "eth0", "203.0.113.130/25")
	testns.Up(t, router, "lan0", "203.0.113.129/25")
	testns.Up(t, router, "uplink0", "192.0.2.1/24")
	testns.Up(t, inet, "eth0", "192.0.2.2/24")
	testns.IP(t, "-n", host, "route", "add", "default", "via", "203.0.113.129")
	testns.IP(t, "-n", inet, "route", "add", "203.0.113.128/25", "via", "192.0.2.1")
	testns.Sysctl(t, router, "net.ipv4.ip_forward=1")
	return host, router, inet
}

// serviceIn is the accounting service for the router namespace ns.
func serviceIn(t *testing.T, ns string) *Service {
	t.Helper()
	s, err := New(Config{NetNS: int(testns.Open(t, ns).Fd())})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCountsForwardedBytesPerAddress routes pings between a LAN host and a
// WAN host through a router namespace and checks that the router's
// accounting table attributes the bytes to the LAN host's addresses.
func TestCountsForwardedBytesPerAddress(t *testing.T) {
	host, router, inet := acctNet(t)
	// IPv6 on both links as well.
	testns.Up(t, host, "eth0", "2001:db8:1::10/64")
	testns.Up(t, router, "lan0", "2001:db8:1::1/64")
	testns.Up(t, router, "uplink0", "2001:db8:2::1/64")
	testns.Up(t, inet, "eth0", "2001:db8:2::2/64")
	testns.IP(t, "-n", host, "-6", "route", "add", "default", "via", "2001:db8:1::1")
	testns.IP(t, "-n", inet, "-6", "route", "add", "default", "via", "2001:db8:2::1")
	testns.Sysctl(t, router, "net.ipv6.conf.all.forwarding=1")

	s := serviceIn(t, router)
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
	host, router, inet := acctNet(t)
	testns.Veth(t, router, "clat0", inet, "eth1")
	testns.Up(t, router, "clat0", "192.0.0.4/29")
	testns.Up(t, inet, "eth1", "192.0.0.5/29")
	testns.IP(t, "-n", inet, "addr", "add", "198.51.100.80/32", "dev", "lo")
	testns.IP(t, "-n", router, "route", "add", "default", "via", "192.0.0.5")
	s := serviceIn(t, router)
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
