package ra

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/ratshark"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// waitLimit bounds each wait for the kernel or the host; it only keeps a
// broken test from hanging, it is not a speed requirement.
const waitLimit = 20 * time.Second

// link is a veth pair between two test namespaces: the gizmo's side
// ("lan0") and a host with a real kernel doing SLAAC ("eth0").
type link struct {
	router, host string // namespace names
	routerMAC    net.HardwareAddr
}

// newLink builds gzt-ra-* and gzt-rah-* joined by a veth pair and removes
// them when the test ends. rio raises the host's
// accept_ra_rt_info_max_plen so that it installs Route Information Options
// (Linux ignores them by default).
func newLink(t *testing.T, rio bool) *link {
	t.Helper()
	// Installs the lab's Debian packages when it can, else skips naming them.
	depstest.Require(t, deps.Lab)
	l := &link{router: testns.New(t, "ra"), host: testns.New(t, "rah")}
	l.addVeth(t, rio)
	return l
}

// addVeth creates the veth pair lan0 (router) – eth0 (host), configures the
// host as a SLAAC host and waits for both link-local addresses.
func (l *link) addVeth(t *testing.T, rio bool) {
	t.Helper()
	testns.Veth(t, l.router, "lan0", l.host, "eth0")
	// No DAD on this private link, so that addresses are usable at once.
	testns.Sysctl(t, l.router, "net.ipv6.conf.lan0.accept_dad=0", "net.ipv6.conf.lan0.forwarding=1")
	host := []string{"net.ipv6.conf.eth0.accept_dad=0", "net.ipv6.conf.eth0.accept_ra=1",
		// One quick RS, so the kernel's own solicitation is answered too.
		"net.ipv6.conf.eth0.router_solicitations=1"}
	if rio {
		host = append(host, "net.ipv6.conf.eth0.accept_ra_rt_info_max_plen=128")
	}
	testns.Sysctl(t, l.host, host...)
	testns.IP(t, "-n", l.router, "link", "set", "lan0", "up")
	testns.IP(t, "-n", l.host, "link", "set", "eth0", "up")
	testns.WaitLinkLocal(t, l.router, "lan0")
	testns.WaitLinkLocal(t, l.host, "eth0")
	testns.Inside(t, l.router, func() {
		ifi, err := net.InterfaceByName("lan0")
		if err != nil {
			t.Fatal(err)
		}
		l.routerMAC = ifi.HardwareAddr
	})
}

// routerLL is the router's EUI-64 link-local address (RFC 4291 appendix A),
// the kernel's default on a veth.
func (l *link) routerLL() netip.Addr {
	m := l.routerMAC
	return netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 8: m[0] ^ 2, 9: m[1], 10: m[2], 11: 0xff, 12: 0xfe, 13: m[3], 14: m[4], 15: m[5]})
}

// start runs the service in the router namespace until the test ends (or
// the returned stop is called, which waits for Run to return).
func (l *link) start(t *testing.T, p Plan) (*Service, func() error) {
	t.Helper()
	s, err := New(Config{Interface: "lan0"})
	if err != nil {
		t.Fatal(err)
	}
	s.Update(p)
	return s, testns.Start(t, l.router, s.Run)
}

var (
	testLAN    = netip.MustParsePrefix("2001:db8:1000::/64")
	testULA    = netip.MustParsePrefix("fd12:3456:789a::/64")
	testULA48  = netip.MustParsePrefix("fd12:3456:789a::/48")
	testPref64 = netip.MustParsePrefix("2001:db8:64::/96")
	testDNS    = netip.MustParseAddr("fd12:3456:789a::53")
)

func testPlan() Plan {
	far := time.Now().Add(24 * time.Hour) // the caps apply, so values are fixed
	return Plan{
		MaxInterval:    10 * time.Second,
		RouterLifetime: 2700 * time.Second,
		HopLimit:       64,
		Other:          true,
		Prefixes: []Prefix{
			{Prefix: testLAN, OnLink: true, Autonomous: true, PreferredUntil: far, ValidUntil: far, MaxPreferred: 2700 * time.Second, MaxValid: 5400 * time.Second},
			{Prefix: testULA, OnLink: true, Autonomous: true, MaxPreferred: 2700 * time.Second, MaxValid: 5400 * time.Second},
		},
		Routes: []Route{
			{Prefix: testULA48, Lifetime: 2700 * time.Second},
			{Prefix: testPref64, Lifetime: 2700 * time.Second},
		},
		RDNSS: []netip.Addr{testDNS}, RDNSSLifetime: 30 * time.Second,
		DNSSL: []string{"home.arpa"}, DNSSLLifetime: 30 * time.Second,
		Pref64: testPref64, Pref64Lifetime: 30 * time.Second,
		MTU: 1500,
	}
}

// TestRealHost checks the RA against the Linux kernel as a host: it must
// configure a SLAAC address in the advertised /64 and a default route via
// the gizmo's link-local address, install the RIOs, and drop the default
// route when the service stops (RFC 4861 §6.2.5).
func TestRealHost(t *testing.T) {
	l := newLink(t, true)
	s, stop := l.start(t, testPlan())

	hostIP := func(args ...string) string {
		out, _ := exec.Command("ip", append([]string{"-n", l.host, "-6"}, args...)...).CombinedOutput()
		return string(out)
	}
	routerLL := l.routerLL()
	testns.WaitFor(t, "SLAAC address in "+testLAN.String(), waitLimit, func() (bool, string) {
		out := hostIP("addr", "show", "dev", "eth0", "scope", "global")
		return strings.Contains(out, "inet6 2001:db8:1000:0:") && strings.Contains(out, "inet6 fd12:3456:789a:0:"), out
	})
	testns.WaitFor(t, "default route via the gizmo", waitLimit, func() (bool, string) {
		out := hostIP("route", "show", "default")
		return strings.Contains(out, "default via "+routerLL.String()+" dev eth0 proto ra"), out
	})
	for _, r := range []netip.Prefix{testULA48, testPref64} {
		testns.WaitFor(t, "RIO route "+r.String(), waitLimit, func() (bool, string) {
			out := hostIP("route", "show", r.String())
			return strings.Contains(out, "via "+routerLL.String()), out
		})
	}
	if st := s.Stats(); st.RAUnsolicited == 0 {
		t.Errorf("stats: no unsolicited RA counted: %+v", st)
	}

	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	testns.WaitFor(t, "default route removed by the final RA", waitLimit, func() (bool, string) {
		out := hostIP("route", "show", "default")
		return !strings.Contains(out, "proto ra"), out
	})
	if st := s.Stats(); st.RAFinal != 1 {
		t.Errorf("final RAs sent = %d, want 1", st.RAFinal)
	}
	// RFC 4861 §6.2.5 ends the default route only: addresses stay.
	if out := hostIP("addr", "show", "dev", "eth0", "scope", "global"); !strings.Contains(out, "inet6 2001:db8:1000:0:") {
		t.Errorf("SLAAC address gone after the final RA:\n%s", out)
	}
}

// TestOnLinkWithdrawnOnStop checks a guest's RA against a Linux host with
// the stock accept_ra_rt_info_max_plen of 0: router lifetime 0, an
// on-link prefix without SLAAC (L=1, A=0) and a RIO. The kernel installs
// the on-link /64 (RFC 4861 §6.3.4) though it ignores the RIO and gets no
// default route; the final RA with WithdrawOnStop removes the on-link
// route at once.
func TestOnLinkWithdrawnOnStop(t *testing.T) {
	l := newLink(t, false)
	testns.Sysctl(t, l.host, "net.ipv6.conf.eth0.accept_ra_rt_info_max_plen=0")
	onLink := netip.MustParsePrefix("2001:db8:1000:100::/64")
	s, stop := l.start(t, Plan{
		MaxInterval:    10 * time.Second,
		WithdrawOnStop: true,
		Prefixes:       []Prefix{{Prefix: onLink, OnLink: true, MaxPreferred: 30 * time.Second, MaxValid: 30 * time.Second}},
		Routes:         []Route{{Prefix: testPref64, Lifetime: 2700 * time.Second}},
		RDNSS:          []netip.Addr{netip.MustParseAddr("2001:db8:1000:100:1::53")}, RDNSSLifetime: 30 * time.Second,
		Pref64: netip.MustParsePrefix("2001:db8:1000:100::/96"), Pref64Lifetime: 30 * time.Second,
	})
	hostIP := func(args ...string) string {
		out, _ := exec.Command("ip", append([]string{"-n", l.host, "-6"}, args...)...).CombinedOutput()
		return string(out)
	}
	testns.WaitFor(t, "on-link route for "+onLink.String(), waitLimit, func() (bool, string) {
		out := hostIP("route", "show", onLink.String())
		// The kernel's prefix route (proto kernel) with the PIO's expiry.
		return strings.Contains(out, onLink.String()+" dev eth0 ") && strings.Contains(out, " expires ") && !strings.Contains(out, " via "), out
	})
	if out := hostIP("route", "show"); strings.Contains(out, "default") || strings.Contains(out, testPref64.String()) {
		t.Errorf("RFC 4861 6.3.4 with router lifetime 0 and max_plen 0: want neither a default route nor the RIO:\n%s", out)
	}
	if out := hostIP("addr", "show", "dev", "eth0", "scope", "global"); strings.Contains(out, "2001:db8:1000:100:") {
		t.Errorf("RFC 4862 5.5.3 a: an address from a PIO with A=0:\n%s", out)
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	testns.WaitFor(t, "on-link route removed by the final RA", waitLimit, func() (bool, string) {
		out := hostIP("route", "show", onLink.String())
		return strings.TrimSpace(out) == "", out
	})
	if st := s.Stats(); st.RAFinal != 1 {
		t.Errorf("final RAs sent = %d, want 1", st.RAFinal)
	}
}

// TestDecodedByTshark captures an RA on the host and compares tshark's
// decoding of every option with what the plan says, the way a person would
// read it.
func TestDecodedByTshark(t *testing.T) {
	l := newLink(t, false)
	// Capture the first RA frame on the host with a packet socket, opened
	// before the service starts so that nothing is missed, and let tshark
	// decode the file.
	var frames int
	testns.Inside(t, l.host, func() {
		var err error
		if frames, err = ratshark.Socket("eth0"); err != nil {
			t.Fatal(err)
		}
	})
	defer unix.Close(frames)
	l.start(t, testPlan())
	frame := ratshark.Read(t, frames, nil, 20*time.Second)
	got := ratshark.Decode(context.Background(), t, frame)
	want := ratshark.RA{
		MAC:            l.routerMAC.String(),
		RouterLifetime: 2700,
		MTU:            1500,
		LAN:            ratshark.PIO{Net: "2001:db8:1000::", Valid: "5400", Preferred: "2700"},
		ULA:            ratshark.PIO{Net: "fd12:3456:789a::", Valid: "5400", Preferred: "2700"},
		ULARoute:       "fd12:3456:789a::",
		RouteLifetime:  2700,
		Pref64:         "2001:db8:64::",
		RDNSS:          "fd12:3456:789a::53",
		DNSLifetime:    30,
		Domain:         "home.arpa",
		Pref64Scaled:   3,
	}.Lines()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tshark -V decoding differs (-want +got):\n%s", diff)
	}
}

// TestSolicitations sends Router Solicitations from the host: rdisc6 as a
// real peer must get an answer, and a forged RS with hop limit 64 must be
// counted and dropped (RFC 4861 §6.1.1).
func TestSolicitations(t *testing.T) {
	l := newLink(t, false)
	p := testPlan()
	p.MaxInterval = 1800 * time.Second // only solicited RAs after the initial ones
	s, _ := l.start(t, p)

	out := testns.Exec(t, l.host, "rdisc6", "-1", "-w", "3000", "eth0")
	mac := strings.ToUpper(l.routerMAC.String())
	want := fmt.Sprintf(`Soliciting ff02::2 (ff02::2) on eth0...

Hop limit                 :           64 (      0x40)
Stateful address conf.    :           No
Stateful other conf.      :          Yes
Mobile home agent         :           No
Router preference         :       medium
Neighbor discovery proxy  :           No
Router lifetime           :         2700 (0x00000a8c) seconds
Reachable time            :  unspecified (0x00000000)
Retransmit time           :  unspecified (0x00000000)
 Source link-layer address: %s
 MTU                      :         1500 bytes (valid)
 Prefix                   : 2001:db8:1000::/64
  On-link                 :          Yes
  Autonomous address conf.:          Yes
  Valid time              :         5400 (0x00001518) seconds
  Pref. time              :         2700 (0x00000a8c) seconds
 Prefix                   : fd12:3456:789a::/64
  On-link                 :          Yes
  Autonomous address conf.:          Yes
  Valid time              :         5400 (0x00001518) seconds
  Pref. time              :         2700 (0x00000a8c) seconds
 Route                    : fd12:3456:789a::/48
  Route preference        :       medium
  Route lifetime          :         2700 (0x00000a8c) seconds
 Route                    : 2001:db8:64::/96
  Route preference        :       medium
  Route lifetime          :         2700 (0x00000a8c) seconds
 Recursive DNS server     : fd12:3456:789a::53
  DNS server lifetime     :           30 (0x0000001e) seconds
 DNS search list          : home.arpa 
  DNS search list lifetime:           30 (0x0000001e) seconds
 from %s
`, mac, l.routerLL())
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("rdisc6 output differs (-want +got):\n%s", diff)
	}

	// A forged RS that was forwarded (hop limit 64) must be dropped.
	if err := testns.Do(l.host, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, ip, err := ndp.Listen(ifi, ndp.LinkLocal)
		if err != nil {
			return err
		}
		defer c.Close()
		cm := &ipv6.ControlMessage{HopLimit: 64, Src: ip.AsSlice(), IfIndex: ifi.Index}
		return c.WriteTo(&ndp.RouterSolicitation{}, cm, netip.MustParseAddr("ff02::2"))
	}); err != nil {
		t.Fatal(err)
	}
	testns.WaitFor(t, "RS with hop limit 64 counted as invalid", waitLimit, func() (bool, string) {
		st := s.Stats()
		return st.RSInvalid[ReasonHopLimit] == 1 && st.RSInvalidTotal == 1, fmt.Sprintf("%+v", st)
	})
	if st := s.Stats(); st.RASolicitedUnicast == 0 {
		t.Errorf("no unicast answer to rdisc6 counted: %+v", st)
	}
}

// TestRenumbering follows RFC 9096 §3.5 on a real host: after a plan change
// the new prefix arrives with the next RA (sent at once, not after
// MaxRtrAdvInterval), and the old one is deprecated, not removed, while the
// new one stays preferred (odhcpd bug #387 deprecated the new one).
func TestRenumbering(t *testing.T) {
	l := newLink(t, false)
	p := testPlan()
	p.MaxInterval = 1800 * time.Second // only the change itself can be seen in time
	s, _ := l.start(t, p)
	hostAddrs := func() string {
		out, _ := exec.Command("ip", "-n", l.host, "-6", "addr", "show", "dev", "eth0", "scope", "global").CombinedOutput()
		return string(out)
	}
	testns.WaitFor(t, "address in the first prefix", waitLimit, func() (bool, string) {
		out := hostAddrs()
		return strings.Contains(out, "inet6 2001:db8:1000:0:"), out
	})

	far := time.Now().Add(24 * time.Hour)
	newLAN := netip.MustParsePrefix("2001:db8:2000::/64")
	p.Prefixes = []Prefix{
		{Prefix: newLAN, OnLink: true, Autonomous: true, PreferredUntil: far, ValidUntil: far, MaxPreferred: 2700 * time.Second, MaxValid: 5400 * time.Second},
		{Prefix: testLAN, OnLink: true, Autonomous: true, ValidUntil: time.Now().Add(time.Hour), MaxPreferred: 0, MaxValid: 5400 * time.Second},
	}
	before := s.Stats().RAUnsolicited
	s.Update(p)
	testns.WaitFor(t, "new prefix preferred and old one deprecated", waitLimit, func() (bool, string) {
		out := hostAddrs()
		var newOK, oldDeprecated bool
		lines := strings.Split(out, "\n")
		for i, line := range lines {
			if strings.Contains(line, "inet6 2001:db8:2000:0:") {
				newOK = !strings.Contains(line, "deprecated")
			}
			if strings.Contains(line, "inet6 2001:db8:1000:0:") && i+1 < len(lines) {
				oldDeprecated = strings.Contains(line, "deprecated") || strings.Contains(lines[i+1], "preferred_lft 0sec")
			}
		}
		return newOK && oldDeprecated, out
	})
	if got := s.Stats().RAUnsolicited; got <= before {
		t.Errorf("no RA counted for the plan change (before %d, after %d)", before, got)
	}
}

// TestExistingNetwork is the "NAT64 on an existing network" mode on a
// real host that already has a default router and raised
// accept_ra_rt_info_max_plen: the gizmo's RA (router lifetime 0, RIO,
// PREF64, RDNSS, no PIO) adds routes to the NAT64 prefix and the ULA through
// the gizmo and leaves the host's default route and addresses alone.
func TestExistingNetwork(t *testing.T) {
	l := newLink(t, true)
	testns.IP(t, "-n", l.host, "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0")
	p := testPlan()
	p.RouterLifetime = 0
	p.Other = false
	p.Prefixes = nil
	p.DNSSL = nil
	s, _ := l.start(t, p)
	hostIP := func(args ...string) string {
		out, _ := exec.Command("ip", append([]string{"-n", l.host, "-6"}, args...)...).CombinedOutput()
		return string(out)
	}
	for _, r := range []netip.Prefix{testPref64, testULA48} {
		testns.WaitFor(t, "RIO route "+r.String(), waitLimit, func() (bool, string) {
			out := hostIP("route", "show", r.String())
			return strings.Contains(out, "via "+l.routerLL().String()+" dev eth0 proto ra"), out
		})
	}
	if out := hostIP("route", "show", "default"); strings.TrimSpace(out) != "default via fe80::1 dev eth0 metric 1024 pref medium" {
		t.Errorf("the host's default route changed:\n%s", out)
	}
	if out := hostIP("addr", "show", "dev", "eth0", "scope", "global"); strings.Contains(out, "inet6") {
		t.Errorf("the host configured an address from the gizmo:\n%s", out)
	}
	if st := s.Stats(); st.RAUnsolicited == 0 {
		t.Errorf("no RA counted: %+v", st)
	}
}

// TestInterfaceReplaced removes the LAN interface under the running service
// and creates it again (a bridge rebuilt): the service must notice, open a
// new socket and advertise on the new interface.
func TestInterfaceReplaced(t *testing.T) {
	l := newLink(t, false)
	p := testPlan()
	p.MaxInterval = 4 * time.Second // the smallest RFC 4861 allows: the old socket fails on its next RA
	l.start(t, p)
	defaultRoute := func() (bool, string) {
		out, _ := exec.Command("ip", "-n", l.host, "-6", "route", "show", "default").CombinedOutput()
		return strings.Contains(string(out), "proto ra"), string(out)
	}
	testns.WaitFor(t, "default route via the gizmo", waitLimit, defaultRoute)

	testns.IP(t, "-n", l.router, "link", "del", "lan0")
	l.addVeth(t, false)
	testns.WaitFor(t, "default route via the gizmo on the new interface", waitLimit, defaultRoute)
}
