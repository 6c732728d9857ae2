package fastpath

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"codeberg.org/monostack/gizmo/internal/bpftest"
	"codeberg.org/monostack/gizmo/internal/targetkernel"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// BenchmarkPacketCost measures what the programs cost per packet, as
// shipped (real FIB lookups), against the pass-through program on the same
// packet (internal/targetkernel, MeasureCost). On the build machine that
// is the JIT's cost; in TestTargetKernelCost, on gokrazy's kernel without a
// JIT, the interpreter's, counted in instructions.
func BenchmarkPacketCost(b *testing.B) {
	lan, wan := costLinks(b)
	h := costDatapath(b, lan, wan)
	dp := h.dp
	ref, err := targetkernel.PassThrough()
	if err != nil {
		b.Fatal(err)
	}
	defer ref.Close()
	ctx := func(ingress int, mark uint32) []byte {
		c, err := binary.Append(nil, binary.NativeEndian, skbCtx{Mark: mark, IngressIfindex: uint32(ingress)})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	frame := func(l3 []byte) []byte {
		return append([]byte{2, 0, 0, 0, 0, 0xa, 2, 0, 0, 0, 0, 0xb, 0x86, 0xdd}, l3...)
	}
	// Two flows the firewall accepted both ways (as the learners on the
	// egress hooks see them), and a first packet each that finds the
	// route.
	udpOut := pkt6(hostA, remote, seg{proto: 17, sport: 40000, dport: 9999, payload: 64})
	tcpIn := pkt6(remote, hostA, seg{proto: 6, sport: 443, dport: 40001, flags: tcpACK, payload: 1440})
	for _, l3 := range [][]byte{
		udpOut, pkt6(remote, hostA, seg{proto: 17, sport: 9999, dport: 40000, payload: 64}),
		pkt6(hostA, remote, seg{proto: 6, sport: 40001, dport: 443, flags: tcpACK}), tcpIn,
	} {
		prog, ingress := dp.objs.FpLearnWan, lan
		if netip.AddrFrom16([16]byte(l3[8:24])) == remote {
			prog, ingress = dp.objs.FpLearnLan, wan
		}
		if _, err := prog.Run(&ebpf.RunOptions{Data: frame(l3), Context: skbCtx{IngressIfindex: uint32(ingress)}}); err != nil {
			b.Fatal(err)
		}
	}
	if ret, err := dp.objs.FpLan.Run(&ebpf.RunOptions{Data: frame(udpOut), Context: skbCtx{IngressIfindex: uint32(lan)}}); err != nil || ret != bpftest.ActRedirect {
		b.Fatalf("the UDP flow's first packet: verdict %d, %v (counters %v)", ret, err, h.counters())
	}
	same := func(l3 []byte) func(int) []byte {
		f := frame(l3)
		return func(int) []byte { return f }
	}
	cases := []struct {
		name    string
		prog    *ebpf.Program
		frames  func(int) []byte
		ctx     []byte
		verdict uint32
	}{
		{"fp_lan: UDP, 64-byte payload, route cached", dp.objs.FpLan, same(udpOut), ctx(lan, 0), bpftest.ActRedirect},
		{"fp_wan: TCP, 1440-byte payload (1500-byte packet), FIB lookup", dp.objs.FpWan, same(tcpIn), ctx(wan, 0), bpftest.ActRedirect},
		{"fp_lan: a packet of no offloaded flow (to the stack)", dp.objs.FpLan,
			same(pkt6(hostB, remote, seg{proto: 17, sport: 1, dport: 2, payload: 64})), ctx(lan, 0), bpftest.ActNext},
		{"fp_learn_wan: a fast-pathed packet leaving (marked)", dp.objs.FpLearnWan, same(udpOut), ctx(lan, DefaultMark), bpftest.ActNext},
		{"fp_learn_wan: a packet the stack forwarded, flow known", dp.objs.FpLearnWan, same(udpOut), ctx(lan, 0), bpftest.ActNext},
	}
	b.ResetTimer()
	for range b.N {
		for _, c := range cases {
			cost, err := targetkernel.MeasureCost(c.prog, ref, c.frames, c.ctx, 101)
			if err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			if cost.Verdict != c.verdict {
				b.Fatalf("%s: verdict %d, want %d (counters %v)", c.name, cost.Verdict, c.verdict, h.counters())
			}
			fmt.Printf("cost: %-62s %6d ns, pass-through %5d ns: %5.1f×, %6d ns more\n", c.name,
				cost.Prog.Nanoseconds(), cost.Ref.Nanoseconds(), cost.Ratio(), cost.Net().Nanoseconds())
		}
	}
	b.StopTimer()
	for name, prog := range map[string]*ebpf.Program{"fp_lan": dp.objs.FpLan, "fp_wan": dp.objs.FpWan,
		"fp_learn_lan": dp.objs.FpLearnLan, "fp_learn_wan": dp.objs.FpLearnWan} {
		n, err := targetkernel.Translated(prog)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Printf("cost: %s: %d instructions after verification, JIT: %v\n", name, n, targetkernel.Jited(prog))
	}
}

// costLinks makes lan0 and uplink0 (targetkernel.Router) with the
// addresses, routes and neighbour entries that let bpf_fib_lookup succeed
// as on a router, in a network namespace of the test's own for the test's
// length.
func costLinks(t testing.TB) (lan, wan int) {
	t.Helper()
	testns.NeedRoot(t)
	t.Cleanup(targetkernel.InNewNetns(t))
	gw, mac := net.ParseIP("2001:db8:0:1::1"), net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	l, w := targetkernel.Router{
		LAN:    []string{"2001:db8:1000:100::1/64"},
		WAN:    []string{"2001:db8:0:1::2/64"},
		Routes: []targetkernel.Route{{Dst: "2001:db8:ffff::/48", Gw: gw}},
		Neighbours: []targetkernel.Neighbour{
			{WAN: true, IP: gw, MAC: mac},
			{IP: hostA.AsSlice(), MAC: mac},
		},
	}.Make(t)
	return l.Attrs().Index, w.Attrs().Index
}

// costDatapath loads the programs and configures them as the service does
// for the LAN's prefixes between lan and wan, for the benchmark's length.
func costDatapath(b *testing.B, lan, wan int) *harness {
	b.Helper()
	dp, err := loadDatapath(0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dp.close() })
	h := &harness{t: b, dp: dp, now: 1000e9, prefixes: []netip.Prefix{lanPrefix, ulaPrefix}}
	if err := dp.configure(true, lan, wan, DefaultMark, h.prefixes, nil, h.tmo(), 0, h.now); err != nil {
		b.Fatal(err)
	}
	return h
}
