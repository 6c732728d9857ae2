package accounting

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
	return string(out)
}

// TestCountsForwardedBytesPerAddress routes pings between a LAN host and a
// WAN host through a router namespace and checks that the router's
// accounting table attributes the bytes to the LAN host's addresses.
func TestCountsForwardedBytesPerAddress(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	id := rand.IntN(1e6)
	host, router, inet := fmt.Sprintf("gzt-acct-h-%d", id), fmt.Sprintf("gzt-acct-r-%d", id), fmt.Sprintf("gzt-acct-i-%d", id)
	for _, ns := range []string{host, router, inet} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	sh(t, "ip", "-n", router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", host)
	sh(t, "ip", "-n", router, "link", "add", "uplink0", "type", "veth", "peer", "name", "eth0", "netns", inet)
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
		sh(t, append([]string{"ip"}, c...)...)
	}
	sh(t, "ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", "net.ipv4.ip_forward=1")

	ns, err := netns.GetFromName(router)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	s, err := New(Config{NetNS: int(ns)})
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
	sh(t, "ip", "netns", "exec", host, "ping", "-c", "5", "-i", "0.05", "-s", "1000", "2001:db8:2::2")
	sh(t, "ip", "netns", "exec", host, "ping", "-c", "3", "-i", "0.05", "-s", "500", "192.0.2.2")
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
	if out := sh(t, "ip", "netns", "exec", router, "nft", "list", "tables"); strings.Contains(out, TableName) {
		t.Errorf("table left after remove: %s", out)
	}
}
