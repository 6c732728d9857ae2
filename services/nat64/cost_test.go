package nat64

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"codeberg.org/monostack/gizmo/internal/bpftest"
	"codeberg.org/monostack/gizmo/internal/targetkernel"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// BenchmarkPacketCost measures what the programs cost per packet, as
// shipped (real FIB lookups, the boot clock, every limit on), against the
// pass-through program on the same packet (internal/targetkernel,
// MeasureCost). On the build machine that is the JIT's cost; in
// TestTargetKernelCost, on gokrazy's kernel without a JIT, the
// interpreter's, counted in instructions.
func BenchmarkPacketCost(b *testing.B) {
	p := testPlan()
	p.Deny4 = []netip.Prefix{netip.MustParsePrefix("203.0.113.128/25")}
	dp, _, _ := costDatapath(b, costRouter(), &p)
	ref, err := targetkernel.PassThrough()
	if err != nil {
		b.Fatal(err)
	}
	defer ref.Close()

	frame := func(l3 []byte) []byte { return bpftest.Frame(macA, macB, l3) }
	same := func(l3 []byte) func(int) []byte {
		f := frame(l3)
		return func(int) []byte { return f }
	}
	run := func(prog *ebpf.Program, l3 []byte) {
		b.Helper()
		if _, err := prog.Run(&ebpf.RunOptions{Data: frame(l3)}); err != nil {
			b.Fatal(err)
		}
	}
	// The flows: a UDP flow, and a TCP connection through its handshake.
	udp6 := pkt6(hostA, to6(p, remote1), seg{Proto: ProtoUDP, SPort: 5000, DPort: 7000, Payload: make([]byte, 64)})
	run(dp.objs.Nat64Lan, udp6)
	tcp := func(flags uint8, payload int) seg {
		return seg{Proto: ProtoTCP, SPort: 40000, DPort: 80, Flags: flags, Payload: make([]byte, payload)}
	}
	run(dp.objs.Nat64Lan, pkt6(hostA, to6(p, remote1), tcp(0x02, 0)))
	var bk nat64Bib6Val
	if err := dp.objs.Nat64Bib6.Lookup(&nat64Bib6Key{Addr: hostA.As16(), Port: be16(40000), Proto: ProtoTCP}, &bk); err != nil {
		b.Fatal(err)
	}
	var ub nat64Bib6Val
	if err := dp.objs.Nat64Bib6.Lookup(&nat64Bib6Key{Addr: hostA.As16(), Port: be16(5000), Proto: ProtoUDP}, &ub); err != nil {
		b.Fatal(err)
	}
	back := func(flags uint8, payload int) seg {
		return seg{Proto: ProtoTCP, SPort: 80, DPort: port16(bk.Port4), Flags: flags, Payload: make([]byte, payload)}
	}
	run(dp.objs.Nat64Wan, pkt4(remote1, pool, back(0x12, 0)))

	cases := []struct {
		name    string
		prog    *ebpf.Program
		frames  func(int) []byte
		verdict uint32
	}{
		{"6→4 UDP, 64-byte payload", dp.objs.Nat64Lan, same(udp6), bpftest.ActRedirect},
		{"6→4 TCP, 1440-byte payload (1500-byte IPv6 packet)", dp.objs.Nat64Lan, same(pkt6(hostA, to6(p, remote1), tcp(0x10, 1440))), bpftest.ActRedirect},
		{"4→6 UDP, 64-byte payload", dp.objs.Nat64Wan,
			same(pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 7000, DPort: port16(ub.Port4), Payload: make([]byte, 64)})), bpftest.ActRedirect},
		{"4→6 TCP, 1440-byte payload (1480-byte IPv4 packet)", dp.objs.Nat64Wan, same(pkt4(remote1, pool, back(0x10, 1440))), bpftest.ActRedirect},
		{"6→4 TCP SYN opening a session and a binding", dp.objs.Nat64Lan, func(i int) []byte {
			s := tcp(0x02, 0)
			s.SPort = uint16(1024 + i)
			return frame(pkt6(hostB, to6(p, remote2), s))
		}, bpftest.ActRedirect},
		{"native IPv6 on the LAN (not to the prefix)", dp.objs.Nat64Lan,
			same(pkt6(hostA, netip.MustParseAddr("2001:db8:ffff::6"), seg{Proto: ProtoUDP, SPort: 5000, DPort: 7000, Payload: make([]byte, 64)})), bpftest.ActNext},
		{"IPv4 on the WAN not to the pool", dp.objs.Nat64Wan,
			same(pkt4(remote1, netip.MustParseAddr("192.0.2.7"), seg{Proto: ProtoUDP, SPort: 5000, DPort: 7000, Payload: make([]byte, 64)})), bpftest.ActNext},
	}
	const runs = 101
	b.ResetTimer()
	for range b.N {
		for _, c := range cases {
			cost, err := targetkernel.MeasureCost(c.prog, ref, c.frames, nil, runs)
			if err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			if cost.Verdict != c.verdict {
				b.Fatalf("%s: verdict %d, want %d (counters %v)", c.name, cost.Verdict, c.verdict, mustDPCounters(b, dp))
			}
			fmt.Printf("cost: %-52s %6d ns, pass-through %5d ns: %5.1f×, %6d ns more\n", c.name,
				cost.Prog.Nanoseconds(), cost.Ref.Nanoseconds(), cost.Ratio(), cost.Net().Nanoseconds())
		}
	}
	b.StopTimer()
	fmt.Printf("cost: counters after the runs: %v\n", mustDPCounters(b, dp))
	for name, prog := range map[string]*ebpf.Program{"nat64_lan": dp.objs.Nat64Lan, "nat64_wan": dp.objs.Nat64Wan} {
		n, err := targetkernel.Translated(prog)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Printf("cost: %s: %d instructions after verification (subprograms included), JIT: %v\n", name, n, targetkernel.Jited(prog))
	}
}

func mustDPCounters(b *testing.B, dp *datapath) map[string]uint64 {
	c, err := dp.counters()
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// costRouter is lan0 and uplink0 (targetkernel.Router) with the addresses, routes and neighbour
// entries that let bpf_fib_lookup succeed as on a router: the LAN host's
// packets leave through the IPv4 default route.
func costRouter() targetkernel.Router {
	gw := net.ParseIP("192.0.2.1")
	return targetkernel.Router{
		LAN:    []string{"2001:db8:1000::1/64"},
		WAN:    []string{"192.0.2.100/24"},
		Routes: []targetkernel.Route{{Gw: gw}},
		Neighbours: []targetkernel.Neighbour{
			{WAN: true, IP: gw, MAC: macA},
			{IP: hostA.AsSlice(), MAC: macB},
			{IP: hostB.AsSlice(), MAC: macB},
		},
	}
}

// costDatapath makes the router r in a network namespace of the
// benchmark's own and loads the datapath there, configured with p on r's
// links (it sets p's interfaces), for the benchmark's length.
func costDatapath(b *testing.B, r targetkernel.Router, p *Plan) (dp *datapath, lan, wan netlink.Link) {
	b.Helper()
	testns.NeedRoot(b)
	b.Cleanup(targetkernel.InNewNetns(b))
	lan, wan = r.Make(b)
	p.LANIfindex, p.WANIfindex = lan.Attrs().Index, wan.Attrs().Index
	dp, err := loadDatapath("", 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dp.close(false) })
	if err := dp.configure(*p, 0, 0); err != nil {
		b.Fatal(err)
	}
	return dp, lan, wan
}
