package firewall

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"codeberg.org/monostack/gizmo/internal/bpftest"
	"codeberg.org/monostack/gizmo/internal/ethframe"
	"codeberg.org/monostack/gizmo/internal/targetkernel"
	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/services/accounting"
	"codeberg.org/monostack/gizmo/services/fastpath"
	"codeberg.org/monostack/gizmo/services/nat64"
)

// The router of BenchmarkRouterPath, with no tool but netlink, so that it
// builds inside the target kernel's VM too. The test imports the other
// services only to run them beside the ruleset, as the daemon does.

// Addresses of the benchmark's router: the lab plan's LAN, a LAN host in
// it and a host on the internet behind the ISP's router.
var (
	pathHost   = netip.MustParseAddr("2001:db8:1000:100::5")
	pathRemote = netip.MustParseAddr("2001:db8:ffff::10")
	pathGW6    = net.ParseIP("2001:db8:0:1::1")
	pathGW4    = net.ParseIP("192.0.2.1")
	pathPref64 = netip.MustParsePrefix("2001:db8:64::/96")
	// pathMAC is every neighbour's and every injected frame's source.
	pathMAC = net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
)

// pathRouter is lan0 and uplink0, bridges without ports (enough for
// addresses, routes, neighbours and the hooks), in a network namespace of
// the benchmark's own, with the lab plan's addresses.
type pathRouter struct {
	b        *testing.B
	ns       netns.NsHandle
	lan, wan netlink.Link
	xdp      *ebpf.Program
	port     uint16 // the LAN host's last port
}

// nextPort is a LAN port no flow used before.
func (r *pathRouter) nextPort() uint16 {
	r.port++
	return 20000 + r.port
}

func newPathRouter(b *testing.B) *pathRouter {
	b.Helper()
	b.Cleanup(targetkernel.InNewNetns(b))
	ns, err := netns.Get()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ns.Close() })
	lan, wan := targetkernel.Router{
		LAN: []string{"2001:db8:1000:100::1/64", "203.0.113.129/25"},
		WAN: []string{"2001:db8:0:1::2/64", "192.0.2.100/24"},
		Routes: []targetkernel.Route{
			{Dst: "2001:db8:ffff::/48", Gw: pathGW6},
			{Gw: pathGW4},
		},
		Neighbours: []targetkernel.Neighbour{
			{WAN: true, IP: pathGW6, MAC: pathMAC},
			{WAN: true, IP: pathGW4, MAC: pathMAC},
			{IP: pathHost.AsSlice(), MAC: pathMAC},
		},
	}.Make(b)
	xdp, err := targetkernel.XDPPass()
	if err != nil {
		b.Fatalf("XDP program: %v", err)
	}
	b.Cleanup(func() { xdp.Close() })
	return &pathRouter{b: b, ns: ns, lan: lan, wan: wan, xdp: xdp}
}

func (r *pathRouter) nsFD() int { return int(r.ns) }

// out and in are a packet from the LAN host and one to it.
func (r *pathRouter) out(l3 []byte) pathPacket {
	return pathPacket{frame: frame(r.lan.Attrs().HardwareAddr, l3), ingress: r.lan.Attrs().Index, egress: r.wan.Attrs().Index}
}

func (r *pathRouter) in(l3 []byte) pathPacket {
	return pathPacket{frame: frame(r.wan.Attrs().HardwareAddr, l3), ingress: r.wan.Attrs().Index, egress: r.lan.Attrs().Index}
}

func frame(to net.HardwareAddr, l3 []byte) []byte { return bpftest.Frame(to, pathMAC, l3) }

// inject sends one packet through the router and fails unless it left by
// its egress interface.
func (r *pathRouter) inject(p pathPacket) {
	r.b.Helper()
	before := r.txPackets(p.egress)
	if err := targetkernel.Inject(r.xdp, p.frame, p.ingress); err != nil {
		r.b.Fatal(err)
	}
	if n := r.txPackets(p.egress) - before; n < 1 || n > 1+strayPackets {
		r.b.Fatalf("a packet that opens a flow: %d sent by interface %d, want 1", n, p.egress)
	}
}

// measure returns the median time per packet of pathRuns batches of p and
// fails unless every packet left by its egress interface: a packet the
// ruleset dropped would cost less and look like a win.
func (r *pathRouter) measure(what string, p pathPacket) int64 {
	r.b.Helper()
	before := r.txPackets(p.egress)
	d, err := targetkernel.MeasurePath(r.xdp, p.frame, p.ingress, pathRuns)
	if err != nil {
		r.b.Fatalf("%s: %v", what, err)
	}
	if n, want := r.txPackets(p.egress)-before, uint64(pathRuns*targetkernel.PathBatch); n < want || n > want+strayPackets {
		r.b.Fatalf("%s: %d packets left the router for %d injected", what, n, want)
	}
	return d.Nanoseconds()
}

// strayPackets is how many of the router's own packets (ND, MLD reports
// after an address was added) may leave an interface during a count.
const strayPackets = 8

func (r *pathRouter) txPackets(ifindex int) uint64 {
	r.b.Helper()
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil || l.Attrs().Statistics == nil {
		r.b.Fatalf("statistics of interface %d: %v", ifindex, err)
	}
	return l.Attrs().Statistics.TxPackets
}

// oneRule is the stateful forward chain of the earlier measurement:
// conntrack, established flows accepted, everything else by the policy.
func (r *pathRouter) oneRule() func() {
	rs := Ruleset{Table: "cost", Chains: []Chain{{
		Name:  "forward",
		Hook:  &Hook{Type: "filter", Hook: "forward", Priority: 0, Policy: Accept},
		Rules: []Rule{rule("", Accept, "", ctState(CtEstablished))},
	}}}
	s, err := New(Config{NetNS: r.nsFD()})
	if err != nil {
		r.b.Fatal(err)
	}
	conn, err := s.conn()
	if err != nil {
		r.b.Fatal(err)
	}
	if err := rs.queue(conn, nil); err != nil {
		r.b.Fatal(err)
	}
	if err := conn.Flush(); err != nil {
		r.b.Fatal(err)
	}
	return func() {
		conn.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: rs.Table})
		if err := conn.Flush(); err != nil {
			r.b.Fatal(err)
		}
	}
}

// accounting runs services/accounting's table, as the daemon does beside
// the firewall.
func (r *pathRouter) accounting() func() {
	r.b.Helper()
	s, err := accounting.New(accounting.Config{NetNS: r.nsFD()})
	if err != nil {
		r.b.Fatal(err)
	}
	s.Update(accounting.Plan{LAN: "lan0", WAN: "uplink0"})
	stop := r.run("accounting", s.Run)
	for i := 0; ; i++ {
		if _, _, err := s.Read(); err == nil {
			break
		} else if i == 500 {
			r.b.Fatalf("accounting table not installed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return stop
}

// fastpath runs services/fastpath with the plan the daemon gives it.
func (r *pathRouter) fastpath(lan []netip.Prefix) (*fastpath.Service, func()) {
	r.b.Helper()
	s, err := fastpath.New(fastpath.Config{LAN: "lan0", WAN: "uplink0", NetNS: r.nsFD()})
	if err != nil {
		r.b.Fatal(err)
	}
	s.Update(fastpath.Plan{LANPrefixes: lan, Exclude: []netip.Prefix{pathPref64}})
	stop := r.run("fastpath", s.Run)
	for i := 0; !s.Stats().Active; i++ {
		if i == 500 {
			r.b.Fatal("fast path not attached")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s, stop
}

// nat64 runs the NAT64 on the lab's NAT64 prefix through the WAN address.
func (r *pathRouter) nat64() func() {
	r.b.Helper()
	s, err := nat64.New(nat64.Config{})
	if err != nil {
		r.b.Fatal(err)
	}
	stop := r.run("nat64", s.Run)
	s.Update(nat64.Plan{
		Pool4:       netip.MustParseAddr("192.0.2.100"),
		Pref64:      pathPref64,
		LANPrefixes: labPlan().LANPrefixes,
		Router6:     netip.MustParseAddr("2001:db8:1000:100::1"),
		LANIfindex:  r.lan.Attrs().Index, WANIfindex: r.wan.Attrs().Index,
		LANMTU: 1500, WANMTU: 1500,
	})
	// Loading the NAT64's programs takes the verifier seconds, more
	// without a JIT (TestTargetKernelCost); the limit only keeps a broken
	// benchmark from hanging.
	testns.WaitFor(r.b, "the NAT64 to apply its plan", time.Minute, func() (bool, string) {
		st := s.Stats()
		return st.Enabled, fmt.Sprintf("%+v", st.Counters)
	})
	return stop
}

// run runs a service on a thread of the router's namespace until the
// function it returns cancels it.
func (r *pathRouter) run(name string, run func(context.Context) error) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// The thread stays in the namespace and ends with the goroutine.
		runtime.LockOSThread()
		if err := netns.Set(r.ns); err != nil {
			done <- err
			return
		}
		done <- run(ctx)
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			r.b.Errorf("%s: %v", name, err)
		}
	}
}

// udp6 and tcp6 build IPv6 packets with hop limit 64 and a valid
// checksum: conntrack drops a packet whose checksum is wrong as invalid.
func udp6(src, dst netip.Addr, sport, dport uint16, payload int) []byte {
	l4 := make([]byte, 8+payload)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	return ip6(src, dst, 17, l4, 6)
}

func tcp6(src, dst netip.Addr, sport, dport uint16, seq, ack uint32, flags uint8, payload int) []byte {
	l4 := make([]byte, 20+payload)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	binary.BigEndian.PutUint32(l4[4:], seq)
	binary.BigEndian.PutUint32(l4[8:], ack)
	l4[12] = 5 << 4
	l4[13] = flags
	binary.BigEndian.PutUint16(l4[14:], 65535) // window
	return ip6(src, dst, 6, l4, 16)
}

const (
	tcpSYN = 0x02
	tcpACK = 0x10
)

// ip6 puts l4 behind an IPv6 header and writes its checksum at csum
// (RFC 8200 §8.1: over the pseudo-header and the upper-layer packet).
func ip6(src, dst netip.Addr, proto uint8, l4 []byte, csum int) []byte {
	pseudo := make([]byte, 40, 40+len(l4))
	copy(pseudo[0:], src.AsSlice())
	copy(pseudo[16:], dst.AsSlice())
	binary.BigEndian.PutUint32(pseudo[32:], uint32(len(l4)))
	pseudo[39] = proto
	c := ethframe.Checksum(append(pseudo, l4...))
	if c == 0 && proto == 17 {
		c = 0xffff // RFC 768: zero means no checksum, which IPv6 forbids
	}
	binary.BigEndian.PutUint16(l4[csum:], c)
	return ethframe.IPv6(src, dst, 64, proto, l4)
}
