package nat64

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// BenchmarkHelperCost is the profile behind BenchmarkPacketCost: what
// one step of the datapath costs on its own, each step a program of a few
// instructions around one helper call (or a block of plain instructions),
// run on the packet and the maps BenchmarkPacketCost uses, less the
// pass-through program. Without a JIT a packet's cost is its helper calls
// plus the interpreter's walk over the instructions between them; with
// Options.Icount (TestTargetKernelCost) the figures are instructions.
func BenchmarkHelperCost(b *testing.B) {
	p := testPlan()
	dp, _, _ := costDatapath(b, costRouter(), &p)
	lan, wan := p.LANIfindex, p.WANIfindex
	ref, err := targetkernel.PassThrough()
	if err != nil {
		b.Fatal(err)
	}
	defer ref.Close()
	udp6 := pkt6(hostA, to6(p, remote1), seg{Proto: ProtoUDP, SPort: 5000, DPort: 7000, Payload: make([]byte, 64)})
	frame := append(append(append(append([]byte{}, macA...), macB...), 0x86, 0xdd), udp6...)
	if _, err := dp.objs.Nat64Lan.Run(&ebpf.RunOptions{Data: frame}); err != nil {
		b.Fatal(err)
	}
	// The keys of what that packet finds: its session, its address's
	// statistics.
	sk := nat64SessKey{Addr6: hostA.As16(), Addr4: be32(remote1), Port6: be16(5000), Port4: be16(7000), Proto: ProtoUDP}
	hk := nat64Lpm6Key{Prefixlen: 128, Addr: hostA.As16()}
	fibIPv4 := make([]byte, 64)
	fibIPv4[0] = 2 // AF_INET
	binary.NativeEndian.PutUint32(fibIPv4[8:], uint32(wan))
	copy(fibIPv4[16:], pool.AsSlice())
	copy(fibIPv4[32:], remote1.AsSlice())
	fibIPv6 := make([]byte, 64)
	fibIPv6[0] = 10 // AF_INET6
	binary.NativeEndian.PutUint32(fibIPv6[8:], uint32(lan))
	copy(fibIPv6[16:], to6(p, remote1).AsSlice())
	copy(fibIPv6[32:], hostA.AsSlice())

	lookup := func(m *ebpf.Map, key any) asm.Instructions {
		return append(onStack(-64, marshal(b, key)),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -64),
			asm.FnMapLookupElem.Call())
	}
	withSKB := func(ins ...asm.Instruction) asm.Instructions {
		return append(asm.Instructions{asm.Mov.Reg(asm.R1, asm.R6)}, ins...)
	}
	steps := []struct {
		name string
		ins  asm.Instructions
	}{
		{"1000 ALU instructions (r0 += 1)", repeat(1000, asm.Add.Imm(asm.R0, 1))},
		{"1000 instructions: load, add, store, branch (250 each)", repeat(250,
			asm.LoadMem(asm.R2, asm.RFP, -8, asm.DWord), asm.Add.Imm(asm.R2, 1),
			asm.StoreMem(asm.RFP, -8, asm.R2, asm.DWord), asm.JEq.Imm(asm.R2, 0, "exit"))},
		{"map lookup: the config (hash, 4-byte key)", lookup(dp.objs.Nat64Config, uint32(0))},
		{"map lookup: a session (hash, 28-byte key)", lookup(dp.objs.Nat64Sess, sk)},
		{"map lookup: an address's statistics (per-CPU hash, 20-byte key)", lookup(dp.objs.Nat64Hstats, hk)},
		{"map lookup: a counter (per-CPU array)", lookup(dp.objs.Nat64Counters, uint32(0))},
		{"map lookup: a quota slot (array)", lookup(dp.objs.Nat64Quota64, uint32(0))},
		{"bpf_skb_load_bytes, 40 bytes", withSKB(asm.Mov.Imm(asm.R2, 14), asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, -64), asm.Mov.Imm(asm.R4, 40), asm.FnSkbLoadBytes.Call())},
		{"bpf_skb_store_bytes, 20 bytes", append(onStack(-64, make([]byte, 20)), withSKB(asm.Mov.Imm(asm.R2, 14),
			asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, -64), asm.Mov.Imm(asm.R4, 20), asm.Mov.Imm(asm.R5, 0),
			asm.FnSkbStoreBytes.Call())...)},
		{"bpf_csum_diff, 32 bytes to 8", append(onStack(-64, make([]byte, 40)), asm.Mov.Reg(asm.R1, asm.RFP),
			asm.Add.Imm(asm.R1, -64), asm.Mov.Imm(asm.R2, 32), asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, -32),
			asm.Mov.Imm(asm.R4, 8), asm.Mov.Imm(asm.R5, 0), asm.FnCsumDiff.Call())},
		{"bpf_l4_csum_replace", withSKB(asm.Mov.Imm(asm.R2, 14+40+6), asm.Mov.Imm(asm.R3, 0),
			asm.Mov.Imm(asm.R4, 0x1234), asm.Mov.Imm(asm.R5, 0x10), asm.FnL4CsumReplace.Call())},
		{"bpf_skb_change_proto to IPv4", withSKB(asm.Mov.Imm(asm.R2, 0x0008), asm.Mov.Imm(asm.R3, 0),
			asm.FnSkbChangeProto.Call())},
		{"bpf_fib_lookup, IPv4 (as 6→4 forwards)", append(onStack(-64, fibIPv4), withSKB(asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -64), asm.Mov.Imm(asm.R3, 64), asm.Mov.Imm(asm.R4, 2), asm.FnFibLookup.Call())...)},
		{"bpf_fib_lookup, IPv6 (as 4→6 forwards)", append(onStack(-64, fibIPv6), withSKB(asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -64), asm.Mov.Imm(asm.R3, 64), asm.Mov.Imm(asm.R4, 2), asm.FnFibLookup.Call())...)},
		{"bpf_redirect", asm.Instructions{asm.Mov.Imm(asm.R1, int32(wan)), asm.Mov.Imm(asm.R2, 0), asm.FnRedirect.Call()}},
		{"bpf_ktime_get_coarse_ns", asm.Instructions{asm.FnKtimeGetCoarseNs.Call()}},
		{"bpf_get_prandom_u32", asm.Instructions{asm.FnGetPrandomU32.Call()}},
	}
	b.ResetTimer()
	for range b.N {
		for _, s := range steps {
			ins := append(asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1), asm.StoreImm(asm.RFP, -8, 0, asm.Word), asm.StoreImm(asm.RFP, -4, 0, asm.Word), asm.Mov.Imm(asm.R0, 0)}, s.ins...)
			ins = append(ins, asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"), asm.Return())
			prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, Instructions: ins, License: "Dual BSD/GPL"})
			if err != nil {
				b.Fatalf("%s: %v", s.name, err)
			}
			cost, err := targetkernel.MeasureCost(prog, ref, func(int) []byte { return frame }, nil, 101)
			prog.Close()
			if err != nil {
				b.Fatalf("%s: %v", s.name, err)
			}
			fmt.Printf("step: %-64s %6d ns more than the pass-through program (%d ns)\n", s.name, cost.Net().Nanoseconds(), cost.Ref.Nanoseconds())
		}
	}
}

// onStack stores b (padded to four bytes) at fp+off.
func onStack(off int16, b []byte) asm.Instructions {
	var ins asm.Instructions
	for i := 0; i < len(b); i += 4 {
		var w [4]byte
		copy(w[:], b[i:])
		ins = append(ins, asm.StoreImm(asm.RFP, off+int16(i), int64(int32(binary.NativeEndian.Uint32(w[:]))), asm.Word))
	}
	return ins
}

func marshal(b *testing.B, v any) []byte {
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.NativeEndian, v); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func repeat(n int, ins ...asm.Instruction) asm.Instructions {
	var out asm.Instructions
	for range n {
		out = append(out, ins...)
	}
	return out
}
