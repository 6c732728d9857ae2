package nsresponder

import (
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"
)

// waitLimit bounds each wait for the kernel or the host; it only keeps a
// broken test from hanging, it is not a speed requirement.
const waitLimit = 20 * time.Second

// link is a veth pair between the gizmo's namespace (lan0) and a host's
// (eth0). The host has the on-link /64 as a PIO with L=1 leaves it: a
// route on eth0 without a gateway (RFC 4861 §6.3.4).
type link struct {
	gizmo, host string
	gizmoMAC    net.HardwareAddr
}

var onLink64 = netip.MustParsePrefix("2001:db8:1000:100::/64")

func newLink(t *testing.T) *link {
	t.Helper()
	// ndisc6 and ping; installed when possible, else the test skips naming them.
	depstest.Require(t, deps.Lab)
	l := &link{gizmo: testns.New(t, "nsr"), host: testns.New(t, "nsrh")}
	testns.Veth(t, l.gizmo, "lan0", l.host, "eth0")
	testns.Sysctl(t, l.gizmo, "net.ipv6.conf.lan0.accept_dad=0")
	// The host runs DAD, so that a probe for an address in the /96 is
	// answered; its retransmit timer is short so that a failed resolution
	// does not slow the test.
	testns.Sysctl(t, l.host, "net.ipv6.conf.eth0.accept_dad=1", "net.ipv6.conf.eth0.dad_transmits=1",
		"net.ipv6.conf.eth0.accept_ra=0", "net.ipv6.neigh.eth0.retrans_time_ms=200", "net.ipv6.neigh.eth0.mcast_solicit=2")
	testns.IP(t, "-n", l.gizmo, "link", "set", "lan0", "up")
	testns.IP(t, "-n", l.host, "link", "set", "eth0", "up")
	testns.WaitLinkLocal(t, l.gizmo, "lan0")
	testns.WaitLinkLocal(t, l.host, "eth0")
	testns.IP(t, "-n", l.host, "addr", "add", hostAddr.String()+"/64", "dev", "eth0", "nodad")
	testns.IP(t, "-n", l.host, "-6", "route", "add", onLink64.String(), "dev", "eth0")
	testns.Inside(t, l.gizmo, func() {
		ifi, err := net.InterfaceByName("lan0")
		if err != nil {
			t.Fatal(err)
		}
		l.gizmoMAC = ifi.HardwareAddr
	})
	return l
}

func (l *link) start(t *testing.T, cfg Config, p Plan) (*Service, func() error) {
	t.Helper()
	cfg.Interface = "lan0"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Update(p)
	stop := testns.Start(t, l.gizmo, s.Run)
	testns.WaitFor(t, "the responder's socket", waitLimit, func() (bool, string) {
		st := s.Stats()
		return len(st.Prefixes) == len(p.Prefixes), ""
	})
	return s, stop
}

// ndisc6 solicits target from the host with the ndisc6 tool, once, and
// returns what it printed.
func (l *link) ndisc6(t *testing.T, target netip.Addr) string {
	t.Helper()
	out, _ := exec.Command("ip", "netns", "exec", l.host, "ndisc6", "-1", "-r", "1", "-w", "500", target.String(), "eth0").CombinedOutput()
	return string(out)
}

// neighbour makes the host's kernel resolve target (a ping that nothing
// answers) and returns its neighbour entry.
func (l *link) neighbour(target netip.Addr) string {
	_ = exec.Command("ip", "netns", "exec", l.host, "ping", "-c", "1", "-W", "1", target.String()).Run()
	out, _ := exec.Command("ip", "-n", l.host, "-6", "neigh", "show", target.String(), "dev", "eth0").CombinedOutput()
	return strings.TrimSpace(string(out))
}

// TestKernelHostResolves checks the answers against the Linux kernel as a
// host: it resolves addresses in the NAT64 /96 to the gizmo's MAC as a
// router's, is refused for the rest of the /64, and fails DAD for an
// address in the /96.
func TestKernelHostResolves(t *testing.T) {
	l := newLink(t)
	s, _ := l.start(t, Config{}, Plan{Prefixes: []netip.Prefix{nat64}, Router: true})

	want := "lladdr " + l.gizmoMAC.String() + " router"
	for _, target := range []netip.Addr{synthAddr, netip.MustParseAddr("2001:db8:1000:100::ffff:ffff")} {
		testns.WaitFor(t, "RFC 4861 7.2.4: the gizmo's MAC as "+target.String()+"'s, a router's", waitLimit, func() (bool, string) {
			out := l.neighbour(target)
			return strings.Contains(out, want) && !strings.Contains(out, "FAILED"), out
		})
	}
	if out := l.ndisc6(t, synthAddr); !strings.Contains(strings.ToLower(out), "target link-layer address: "+l.gizmoMAC.String()) {
		t.Errorf("ndisc6 %s: want the gizmo's MAC:\n%s", synthAddr, out)
	}

	// The rest of the /64 is not answered: the filter keeps it from the
	// responder, and the host's resolution fails.
	outside := netip.MustParseAddr("2001:db8:1000:100:0:1::1")
	before := s.Stats()
	if out := l.neighbour(outside); strings.Contains(out, "lladdr") {
		t.Errorf("resolved %s outside the /96: %s", outside, out)
	}
	if after := s.Stats(); after.Answered != before.Answered {
		t.Errorf("answered for %s outside the /96: %+v", outside, after)
	}

	// RFC 4862 5.4.3: the host's DAD for an address in the /96 fails,
	// because the gizmo defends it (RFC 4861 7.2.4).
	taken := netip.MustParseAddr("2001:db8:1000:100::1")
	testns.IP(t, "-n", l.host, "addr", "add", taken.String()+"/128", "dev", "eth0")
	testns.WaitFor(t, "DAD failure for "+taken.String(), waitLimit, func() (bool, string) {
		out, _ := exec.Command("ip", "-n", l.host, "-6", "addr", "show", "dev", "eth0").CombinedOutput()
		return strings.Contains(string(out), taken.String()) && strings.Contains(string(out), "dadfailed"), string(out)
	})
	st := s.Stats()
	if st.Answered < 3 || st.DADAnswered < 1 || st.Received < st.Answered {
		t.Errorf("stats %+v: want the answers counted", st)
	}
}

// TestRateLimited solicits past one source's share: the answers stop and
// the refusals are counted, another target from the same source is
// refused too, and another source is still answered.
func TestRateLimited(t *testing.T) {
	l := newLink(t)
	s, _ := l.start(t, Config{Limits: Limits{PerSource: 0.01, PerSourceBurst: 2}}, Plan{Prefixes: []netip.Prefix{nat64}, Router: true})
	for i := range 5 {
		l.ndisc6(t, synthAddr)
		if i == 1 {
			if st := s.Stats(); st.Answered != 2 {
				t.Errorf("answers within the burst: %d, want 2", st.Answered)
			}
		}
	}
	st := s.Stats()
	if st.Answered != 2 || st.Refused[ReasonRateSource] < 3 || st.RefusedTotal < 3 {
		t.Errorf("stats after 5 solicitations with a burst of 2: %+v", st)
	}
	if out := l.ndisc6(t, netip.MustParseAddr("2001:db8:1000:100::1:2")); strings.Contains(strings.ToLower(out), l.gizmoMAC.String()) {
		t.Errorf("answered past the source's share:\n%s", out)
	}
	// Another source of the same host (its global address, which the
	// kernel uses to reach the /64) has a share of its own.
	if out := l.neighbour(synthAddr); !strings.Contains(out, "lladdr "+l.gizmoMAC.String()) {
		t.Errorf("another source refused: %s", out)
	}
}

// TestPlanChanges moves the answered prefix and then stops answering: the
// socket's filter follows the plan.
func TestPlanChanges(t *testing.T) {
	l := newLink(t)
	s, stop := l.start(t, Config{}, Plan{Prefixes: []netip.Prefix{nat64}, Router: true})
	moved := netip.MustParsePrefix("2001:db8:1000:100:0:64::/96")
	s.Update(Plan{Prefixes: []netip.Prefix{moved}, Router: true})
	target := netip.MustParseAddr("2001:db8:1000:100:0:64:c633:6450")
	testns.WaitFor(t, "an answer in the new prefix", waitLimit, func() (bool, string) {
		out := l.ndisc6(t, target)
		return strings.Contains(strings.ToLower(out), l.gizmoMAC.String()), out
	})
	if out := l.ndisc6(t, synthAddr); strings.Contains(strings.ToLower(out), l.gizmoMAC.String()) {
		t.Errorf("still answered for the old prefix:\n%s", out)
	}
	s.Update(Plan{Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/48")}})
	testns.WaitFor(t, "the plan refused", waitLimit, func() (bool, string) { return s.Stats().PlanErrors == 1, "" })
	s.Update(Plan{})
	testns.WaitFor(t, "answering nothing", waitLimit, func() (bool, string) { return len(s.Stats().Prefixes) == 0, "" })
	if out := l.ndisc6(t, target); strings.Contains(strings.ToLower(out), l.gizmoMAC.String()) {
		t.Errorf("answered with an empty plan:\n%s", out)
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}
