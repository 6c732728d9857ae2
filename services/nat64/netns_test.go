package nat64

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"codeberg.org/monostack/gizmo/internal/iperf"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// A three-namespace network with real packets, so that tcx attachment,
// bpf_fib_lookup, bpf_redirect_neigh, GRO/GSO and the kernel's own answers
// are exercised too:
//
//	h6 (2001:db8:1000::a) ── lan0 [gw: NAT64] uplink0 ── v4 (192.0.2.1, 198.51.100.80)
type topo struct {
	h6, gw, v4 string
	lanIdx     int
	wanIdx     int
	// tweak, if set, changes the plan the service gets.
	tweak func(*Plan)
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func command(args []string) *exec.Cmd { return exec.Command(args[0], args[1:]...) }

func in(ns string, args ...string) []string {
	return append([]string{"ip", "netns", "exec", ns}, args...)
}

func newTopo(t *testing.T, wanMTU int) *topo {
	t.Helper()
	testns.NeedRoot(t)
	id := fmt.Sprintf("gzt-n64-%04x", rand.IntN(0x10000))
	tp := &topo{h6: id + "-h6", gw: id + "-gw", v4: id + "-v4"}
	for _, ns := range []string{tp.h6, tp.gw, tp.v4} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		sh(t, in(ns, "ip", "link", "set", "lo", "up")...)
	}
	sh(t, "ip", "link", "add", "lan0", "netns", tp.gw, "type", "veth", "peer", "name", "eth0", "netns", tp.h6)
	sh(t, "ip", "link", "add", "uplink0", "netns", tp.gw, "type", "veth", "peer", "name", "eth0", "netns", tp.v4)
	sh(t, in(tp.h6, "ip", "addr", "add", "2001:db8:1000::a/64", "dev", "eth0", "nodad")...)
	sh(t, in(tp.h6, "ip", "link", "set", "eth0", "up")...)
	sh(t, in(tp.h6, "ip", "-6", "route", "add", "default", "via", "2001:db8:1000::1")...)
	sh(t, in(tp.gw, "ip", "addr", "add", "2001:db8:1000::1/64", "dev", "lan0", "nodad")...)
	sh(t, in(tp.gw, "ip", "addr", "add", "192.0.2.100/24", "dev", "uplink0")...)
	sh(t, in(tp.gw, "ip", "link", "set", "lan0", "up")...)
	sh(t, in(tp.gw, "ip", "link", "set", "uplink0", "up", "mtu", fmt.Sprint(wanMTU))...)
	sh(t, in(tp.gw, "ip", "route", "add", "default", "via", "192.0.2.1")...)
	sh(t, in(tp.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")...)
	sh(t, in(tp.v4, "ip", "addr", "add", "192.0.2.1/24", "dev", "eth0")...)
	sh(t, in(tp.v4, "ip", "addr", "add", "198.51.100.80/32", "dev", "lo")...)
	sh(t, in(tp.v4, "ip", "link", "set", "eth0", "up", "mtu", fmt.Sprint(wanMTU))...)
	h, err := netns.GetFromName(tp.gw)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for name, dst := range map[string]*int{"lan0": &tp.lanIdx, "uplink0": &tp.wanIdx} {
		out := sh(t, in(tp.gw, "cat", "/sys/class/net/"+name+"/ifindex")...)
		fmt.Sscan(out, dst)
	}
	return tp
}

// runTopo builds the topology with a WAN MTU of wanMTU and runs a service
// with cfg in its gw namespace until the test ends.
func runTopo(t *testing.T, wanMTU int, cfg Config) (*topo, *Service) {
	t.Helper()
	tp := newTopo(t, wanMTU)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tp.start(t, s, wanMTU)
	return tp, s
}

// start runs the service inside the gw namespace until the test ends.
func (tp *topo) start(t *testing.T, s *Service, wanMTU int) {
	t.Helper()
	tp.run(t, s, wanMTU, true)
}

// startStoppable runs the service and returns the function that stops it
// and waits for Run to return.
func (tp *topo) startStoppable(t *testing.T, s *Service, ready bool) func() {
	t.Helper()
	return tp.run(t, s, 1500, ready)
}

// run runs the service inside the gw namespace until the test ends or
// stop is called, and hands it the plan; when ready, it waits for the
// path through it.
func (tp *topo) run(t *testing.T, s *Service, wanMTU int, ready bool) (stop func()) {
	t.Helper()
	stopRun := testns.Start(t, tp.gw, s.Run)
	stop = func() {
		if err := stopRun(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	p := Plan{
		Pool4:       netip.MustParseAddr("192.0.2.100"),
		Pref64:      netip.MustParsePrefix("64:ff9b::/96"),
		LANPrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000::/64")},
		Router6:     netip.MustParseAddr("2001:db8:1000::1"),
		LANIfindex:  tp.lanIdx, WANIfindex: tp.wanIdx,
		LANMTU: 1500, WANMTU: wanMTU,
	}
	if tp.tweak != nil {
		tp.tweak(&p)
	}
	s.Update(p)
	deadline := time.Now().Add(10 * time.Second)
	for !s.Stats().Enabled {
		if time.Now().After(deadline) {
			t.Fatal("plan not applied")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !ready {
		return stop
	}
	// Fresh veths drop frames for a moment (neighbour discovery, carrier):
	// wait, up to a deadline, until one small ping makes it through.
	if out, err := command(in(tp.h6, "ping", "-c", "1", "-i", "0.2", "-w", "10", "64:ff9b::198.51.100.80")).CombinedOutput(); err != nil {
		stop()
		t.Fatalf("path never came up: %v\n%s", err, out)
	}
	return stop
}

func TestNetnsPingTCPAndClean(t *testing.T) {
	tp, s := runTopo(t, 1500, Config{ReapInterval: time.Second})

	// ICMP echo both ways through the translator.
	out, err := command(in(tp.h6, "ping", "-c", "3", "-i", "0.2", "-W", "2", "64:ff9b::198.51.100.80")).CombinedOutput()
	if err != nil {
		t.Fatalf("ping through NAT64: %v\n%s", err, out)
	}
	// Traceroute's first hop: the gizmo's own time exceeded, then the host.
	out, err = command(in(tp.h6, "traceroute", "-n", "-q", "1", "-w", "1", "-m", "3", "64:ff9b::198.51.100.80")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2001:db8:1000::1") || !strings.Contains(string(out), "64:ff9b::c633:6450") {
		t.Errorf("traceroute: %v\n%s", err, out)
	}

	// TCP: 8 MB through GRO/GSO both ways, with iperf3.
	srv := command(in(tp.v4, "iperf3", "-s", "-1", "-B", "198.51.100.80"))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	time.Sleep(300 * time.Millisecond)
	res, err := iperf.Result(command(in(tp.h6, "iperf3", "-c", "64:ff9b::198.51.100.80", "-n", "8M", "-J")).Output)
	if err != nil {
		t.Fatalf("iperf3 TCP through NAT64: %v", err)
	}
	srv.Wait()

	st := s.Stats()
	if st.Counters["translated_6to4"] == 0 || st.Counters["translated_4to6"] == 0 {
		t.Errorf("counters %v", st.Counters)
	}
	if len(st.Hosts) != 1 || st.Hosts[0].Addr != netip.MustParseAddr("2001:db8:1000::a") || st.Hosts[0].BytesOut < res.End.SumReceived.Bytes {
		t.Errorf("hosts %+v counters %v", st.Hosts, st.Counters)
	}
	for _, k := range []string{"malformed", "no_route", "table_full"} {
		if st.Counters[k] != 0 {
			t.Errorf("%s = %d", k, st.Counters[k])
		}
	}
}

func TestNetnsPMTUDAcrossSmallWAN(t *testing.T) {
	tp, s := runTopo(t, 1400, Config{})
	// A 1452-byte ping with DF does not fit; the gizmo answers Packet Too
	// Big with 1420, the host learns it, and a fitting one goes through.
	out, _ := command(in(tp.h6, "ping", "-c", "1", "-W", "1", "-s", "1452", "-M", "do", "64:ff9b::198.51.100.80")).CombinedOutput()
	if !strings.Contains(strings.ToLower(string(out)), "mtu") && !strings.Contains(string(out), "too big") {
		nstat, _ := command(in(tp.h6, "nstat", "-a")).CombinedOutput()
		t.Errorf("no Packet Too Big seen:\n%s\n%v\n%s", out, s.Stats().Counters, nstat)
	}
	route := sh(t, in(tp.h6, "ip", "-6", "route", "get", "64:ff9b::198.51.100.80")...)
	if !strings.Contains(route, "mtu 1420") {
		t.Errorf("path MTU not learned: %s", route)
	}
	if out, err := command(in(tp.h6, "ping", "-c", "1", "-W", "2", "-s", "1372", "-M", "do", "64:ff9b::198.51.100.80")).CombinedOutput(); err != nil {
		t.Errorf("ping at the path MTU: %v\n%s", err, out)
	}
	if s.Stats().Counters["too_big"] == 0 {
		t.Error("too_big not counted")
	}
}

func TestNetnsRestartKeepsSessionsCleanStopLeavesNothing(t *testing.T) {
	tp := newTopo(t, 1500)
	pin := "/sys/fs/bpf/" + tp.gw
	t.Cleanup(func() { os.RemoveAll(pin) })
	first, err := New(Config{PinDir: pin})
	if err != nil {
		t.Fatal(err)
	}
	stop := tp.startStoppable(t, first, true)
	before := first.Stats()
	stop()
	if _, err := os.Stat(pin); err != nil {
		t.Fatalf("pinned maps gone after a restart-style stop: %v", err)
	}

	// The next daemon finds the sessions and counters of the previous one.
	second, err := New(Config{PinDir: pin, RemoveOnStop: true})
	if err != nil {
		t.Fatal(err)
	}
	stop = tp.startStoppable(t, second, false)
	after := second.Stats()
	if len(before.Hosts) != 1 || len(after.Hosts) != 1 || after.Hosts[0] != before.Hosts[0] ||
		after.Hosts[0].LiveSessions == 0 || after.Counters["translated_6to4"] != before.Counters["translated_6to4"] {
		t.Errorf("host state across restart: before %+v after %+v", before.Hosts, after.Hosts)
	}
	stop()
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Errorf("pin dir left behind: %v", err)
	}
	// Detached: the prefix is no longer translated, so the ping fails.
	if out, err := command(in(tp.h6, "ping", "-c", "1", "-W", "1", "64:ff9b::198.51.100.80")).CombinedOutput(); err == nil {
		t.Errorf("still translating after stop:\n%s", out)
	}
}
