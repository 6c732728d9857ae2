package nsresponder

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/net/bpf"
)

const (
	// packetMulticast is PACKET_MULTICAST (linux/if_packet.h); the types
	// above it are frames for another host (on a port in promiscuous
	// mode) and the gizmo's own outgoing frames, which a packet socket
	// sees too. Below are those to the gizmo, broadcast and multicast.
	packetMulticast = 2
	// snapLen is enough for an NS with any options a 1500-byte link
	// carries.
	snapLen = 1500
)

// filter is the classic BPF program of the socket: ICMPv6 Neighbor
// Solicitations without extension headers, sent to the gizmo or to a
// group, whose target is in one of prefixes, so that the kernel drops the
// link's other traffic (every host resolving every other host) before it
// wakes the responder.
func filter(prefixes []netip.Prefix) []bpf.Instruction {
	prog := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: packetMulticast, SkipTrue: 1},
		bpf.Jump{Skip: 1},
		bpf.RetConstant{Val: 0},
	}
	return append(prog, contentFilter(prefixes)...)
}

// contentFilter is the part of filter that looks at the packet only, which
// golang.org/x/net/bpf's VM can run in tests (it knows no pkttype).
func contentFilter(prefixes []netip.Prefix) []bpf.Instruction {
	// Jumps to drop are fixed up at the end: drop is the last instruction.
	var prog []bpf.Instruction
	var toDrop []int
	jumpNotEqual := func(val uint32) {
		toDrop = append(toDrop, len(prog))
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: val})
	}
	prog = append(prog, bpf.LoadAbsolute{Off: 6, Size: 1})
	jumpNotEqual(protoICMPv6)
	prog = append(prog, bpf.LoadAbsolute{Off: ipv6HeaderLen, Size: 1})
	jumpNotEqual(typeNS)
	for _, p := range prefixes {
		// Compare the target's first Bits() bits, 32 at a time; a
		// mismatch goes on to the next prefix.
		var toNext []int
		a := p.Masked().Addr().As16()
		for w := 0; w*32 < p.Bits(); w++ {
			bits := min(32, p.Bits()-w*32)
			mask := ^uint32(0) << (32 - bits)
			prog = append(prog, bpf.LoadAbsolute{Off: uint32(targetOffset + 4*w), Size: 4})
			if bits < 32 {
				prog = append(prog, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask})
			}
			toNext = append(toNext, len(prog))
			prog = append(prog, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: binary.BigEndian.Uint32(a[4*w:]) & mask})
		}
		prog = append(prog, bpf.RetConstant{Val: snapLen})
		for _, i := range toNext {
			j := prog[i].(bpf.JumpIf)
			j.SkipTrue = uint8(len(prog) - i - 1)
			prog[i] = j
		}
	}
	drop := len(prog)
	prog = append(prog, bpf.RetConstant{Val: 0})
	for _, i := range toDrop {
		j := prog[i].(bpf.JumpIf)
		j.SkipTrue = uint8(drop - i - 1)
		prog[i] = j
	}
	return prog
}
