// Package vlan puts one network port on an IEEE 802.1Q VLAN without the
// kernel's 8021q module: gokrazy's kernels (kernel.amd64, kernel.rpi) are
// built without CONFIG_VLAN_8021Q and ship no module for it, so the gizmo
// cannot create a VLAN device. Instead, two small eBPF programs on the
// port's tcx hooks do what a VLAN device does for its frames:
//
//   - egress: every frame leaves tagged with the VLAN ID (802.1Q, priority
//     0);
//   - ingress: a frame tagged with the VLAN ID loses its tag and goes on to
//     the stack and the other programs; untagged frames and frames of other
//     VLANs are dropped and counted, as a VLAN device never sees them.
//
// The port keeps its name (the WAN is uplink0 either way), so every other
// part of the gizmo sees untagged traffic on it. Both programs run first on
// their hook: on ingress no program may redirect a frame before its tag is
// checked and removed, and on egress no program may end the chain before
// the tag is added. The kernel helpers bpf_skb_vlan_push and
// bpf_skb_vlan_pop put the tag where a VLAN device would: in the packet's
// metadata, which the driver or the core writes into the frame.
//
// A NIC with a hardware VLAN filter (igb, qemu's virtio-net) drops frames
// of VLANs that no VLAN device registered. The Tagger therefore holds the
// port in promiscuous mode through a packet socket membership, which the
// kernel drops with the socket: nothing stays behind when the process
// ends.
package vlan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// MinID and MaxID bound the VLAN IDs a port can be put on (IEEE 802.1Q
// §9.6: VID 0 marks a priority-tagged frame and 4095 is reserved).
const (
	MinID = 1
	MaxID = 4094
)

// ValidID reports whether id is a VLAN ID a port can be put on.
func ValidID(id int) error {
	if id < MinID || id > MaxID {
		return fmt.Errorf("VLAN ID %d is outside %d..%d (IEEE 802.1Q: 0 and 4095 are reserved)", id, MinID, MaxID)
	}
	return nil
}

// Indexes into the counters map, one per outcome.
const (
	cUntagged     = iota // ingress: the tag matched and was removed
	cDropUntagged        // ingress: no tag
	cDropOther           // ingress: another VLAN's tag
	cTagged              // egress: tagged
	cDropTagged          // egress: the frame already carried a tag
	cFailed              // a helper failed (no memory)
	nCounters
)

// TCX verdicts (include/uapi/linux/bpf.h).
const (
	tcxNext = -1
	tcxDrop = 2
)

// Offsets into struct __sk_buff (include/uapi/linux/bpf.h).
const (
	skbVLANPresent = 20
	skbVLANTCI     = 24
)

// ethP8021Q is ETH_P_8021Q as bpf_skb_vlan_push wants it: in network byte
// order, loaded into a register of the host's byte order.
var ethP8021Q = func() int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], unix.ETH_P_8021Q)
	return int32(binary.NativeEndian.Uint16(b[:]))
}()

// verdict emits the instructions that add one to counter idx and return
// ret. They use R0-R3 and the stack slot at R10-4.
func verdict(idx int32, label string, ret int32) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.R10, -4, int64(idx), asm.Word).WithSymbol(label),
		asm.LoadMapPtr(asm.R1, 0).WithReference("counters"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, label+"_ret"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, ret).WithSymbol(label + "_ret"),
		asm.Return(),
	}
}

// ingressProgram accepts frames tagged with vid, removes the tag and hands
// them on (TCX_NEXT); it drops everything else.
func ingressProgram(vid uint16) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // the skb, kept across calls
		asm.LoadMem(asm.R2, asm.R6, skbVLANPresent, asm.Word),
		asm.JEq.Imm(asm.R2, 0, "untagged"),
		asm.LoadMem(asm.R2, asm.R6, skbVLANTCI, asm.Word),
		asm.And.Imm(asm.R2, 0x0fff), // the VID; PCP and DEI do not matter
		asm.JNE.Imm(asm.R2, int32(vid), "other"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnSkbVlanPop.Call(),
		asm.JNE.Imm(asm.R0, 0, "failed"),
	}
	insns = append(insns, verdict(cUntagged, "accept", tcxNext)...)
	insns = append(insns, verdict(cDropUntagged, "untagged", tcxDrop)...)
	insns = append(insns, verdict(cDropOther, "other", tcxDrop)...)
	return append(insns, verdict(cFailed, "failed", tcxDrop)...)
}

// egressProgram tags every frame with vid. A frame that already carries a
// tag has been tagged by someone else (a program that redirected a tagged
// LAN frame): it does not belong on this VLAN and is dropped.
func egressProgram(vid uint16) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, skbVLANPresent, asm.Word),
		asm.JNE.Imm(asm.R2, 0, "tagged"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, ethP8021Q),
		asm.Mov.Imm(asm.R3, int32(vid)), // PCP 0, DEI 0
		asm.FnSkbVlanPush.Call(),
		asm.JNE.Imm(asm.R0, 0, "failed"),
	}
	insns = append(insns, verdict(cTagged, "accept", tcxNext)...)
	insns = append(insns, verdict(cDropTagged, "tagged", tcxDrop)...)
	return append(insns, verdict(cFailed, "failed", tcxDrop)...)
}

// Tagger keeps one port on one VLAN until Close.
type Tagger struct {
	port     string
	id       uint16
	counters *ebpf.Map
	progs    []*ebpf.Program
	links    []link.Link
	promisc  int // the packet socket that holds the port promiscuous
}

// Attach puts the port on VLAN id (MinID..MaxID). It runs in the caller's
// network namespace.
func Attach(port string, id uint16) (_ *Tagger, err error) {
	if err := ValidID(int(id)); err != nil {
		return nil, fmt.Errorf("vlan: %s: %w", port, err)
	}
	ifi, err := net.InterfaceByName(port)
	if err != nil {
		return nil, fmt.Errorf("vlan: %w", err)
	}
	t := &Tagger{port: port, id: id, promisc: -1}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	t.counters, err = ebpf.NewMap(&ebpf.MapSpec{Name: "vlan_counters", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: nCounters})
	if err != nil {
		return nil, fmt.Errorf("vlan: counters map: %w", err)
	}
	for _, h := range []struct {
		name   string
		insns  asm.Instructions
		attach ebpf.AttachType
	}{
		{"vlan_ingress", ingressProgram(id), ebpf.AttachTCXIngress},
		{"vlan_egress", egressProgram(id), ebpf.AttachTCXEgress},
	} {
		if err := h.insns.AssociateMap("counters", t.counters); err != nil {
			return nil, fmt.Errorf("vlan: %s: %w", h.name, err)
		}
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: h.name, Type: ebpf.SchedCLS, Instructions: h.insns, License: "GPL"})
		if err != nil {
			return nil, fmt.Errorf("vlan: load %s: %w", h.name, err)
		}
		t.progs = append(t.progs, prog)
		l, err := link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: prog, Attach: h.attach, Anchor: link.Head()})
		if err != nil {
			return nil, fmt.Errorf("vlan: attach %s to %s: %w", h.name, port, err)
		}
		t.links = append(t.links, l)
	}
	if t.promisc, err = promiscuous(ifi.Index); err != nil {
		return nil, fmt.Errorf("vlan: %s: %w", port, err)
	}
	return t, nil
}

// promiscuous opens a packet socket that receives nothing (protocol 0) and
// asks for the port's promiscuous mode while it is open.
func promiscuous(ifindex int) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("packet socket: %w", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("promiscuous mode: %w", err)
	}
	return fd, nil
}

// Port and ID say what the tagger does.
func (t *Tagger) Port() string { return t.port }
func (t *Tagger) ID() uint16   { return t.id }

// Stats are the tagger's counters since Attach.
type Stats struct {
	// Received: tagged frames of the VLAN, untagged and passed on.
	Received uint64
	// Sent: frames tagged on their way out.
	Sent uint64
	// DroppedUntagged and DroppedOtherVLAN: frames that arrived without a
	// tag or with another VLAN's.
	DroppedUntagged, DroppedOtherVLAN uint64
	// DroppedTagged: frames that were to leave already tagged.
	DroppedTagged uint64
	// Failed: frames dropped because a helper failed (out of memory).
	Failed uint64
}

// Stats reads the counters; a closed tagger has none.
func (t *Tagger) Stats() (Stats, error) {
	if t == nil || t.counters == nil {
		return Stats{}, nil
	}
	var c [nCounters]uint64
	for i := range c {
		var perCPU []uint64
		if err := t.counters.Lookup(uint32(i), &perCPU); err != nil {
			return Stats{}, fmt.Errorf("vlan: read counters: %w", err)
		}
		for _, v := range perCPU {
			c[i] += v
		}
	}
	return Stats{Received: c[cUntagged], Sent: c[cTagged], DroppedUntagged: c[cDropUntagged],
		DroppedOtherVLAN: c[cDropOther], DroppedTagged: c[cDropTagged], Failed: c[cFailed]}, nil
}

// Close takes the port off the VLAN: the programs are detached and the
// port leaves promiscuous mode. It is safe to call more than once.
func (t *Tagger) Close() error {
	if t == nil {
		return nil
	}
	var errs []error
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	for _, p := range t.progs {
		errs = append(errs, p.Close())
	}
	if t.counters != nil {
		errs = append(errs, t.counters.Close())
	}
	if t.promisc >= 0 {
		errs = append(errs, unix.Close(t.promisc))
	}
	t.links, t.progs, t.counters, t.promisc = nil, nil, nil, -1
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("vlan: close %s: %w", t.port, err)
	}
	return nil
}
