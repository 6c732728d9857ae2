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
// metadata, which the driver or the core writes into the frame. The
// programs are C (bpf/vlan.c); they read the VLAN ID from a one-entry
// array map that Attach writes before it attaches them, since the target
// kernels have no BTF to rewrite a constant or a global variable with.
//
// A NIC with a hardware VLAN filter (igb, qemu's virtio-net) drops frames
// of VLANs that no VLAN device registered. The Tagger therefore holds the
// port in promiscuous mode through a packet socket membership, which the
// kernel drops with the socket: nothing stays behind when the process
// ends.
package vlan

import (
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
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

// Indexes into the counters map: enum counter in bpf/vlan.c.
const (
	cUntagged     = iota // ingress: the tag matched and was removed
	cDropUntagged        // ingress: no tag
	cDropOther           // ingress: another VLAN's tag
	cTagged              // egress: tagged
	cDropTagged          // egress: the frame already carried a tag
	cFailed              // a helper failed (no memory), or no VLAN ID was written
	nCounters
)

// Tagger keeps one port on one VLAN until Close.
type Tagger struct {
	port    string
	id      uint16
	objs    *vlanObjects // the programs and their maps (bpf/vlan.c)
	links   []link.Link
	promisc int // the packet socket that holds the port promiscuous
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
	if err := t.load(id); err != nil {
		return nil, err
	}
	for _, h := range []struct {
		name   string
		prog   *ebpf.Program
		attach ebpf.AttachType
	}{
		{"vlan_ingress", t.objs.VlanIngress, ebpf.AttachTCXIngress},
		{"vlan_egress", t.objs.VlanEgress, ebpf.AttachTCXEgress},
	} {
		l, err := link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: h.prog, Attach: h.attach, Anchor: link.Head()})
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

// load loads the programs and their maps and writes the VLAN ID into the
// config map, before anything is attached: a program never runs without it.
func (t *Tagger) load(id uint16) error {
	objs := &vlanObjects{}
	if err := loadVlanObjects(objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("vlan: load: %+v", ve)
		}
		return fmt.Errorf("vlan: load: %w", err)
	}
	t.objs = objs
	if err := objs.VlanConfig.Put(uint32(0), uint32(id)); err != nil {
		return fmt.Errorf("vlan: write VLAN ID %d: %w", id, err)
	}
	return nil
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
	// Failed: frames dropped because a helper failed (out of memory) or
	// the programs found no VLAN ID.
	Failed uint64
}

// Stats reads the counters; a closed tagger has none.
func (t *Tagger) Stats() (Stats, error) {
	if t == nil || t.objs == nil {
		return Stats{}, nil
	}
	var c [nCounters]uint64
	for i := range c {
		var perCPU []uint64
		if err := t.objs.VlanCounters.Lookup(uint32(i), &perCPU); err != nil {
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
	if t.objs != nil {
		errs = append(errs, t.objs.Close())
	}
	if t.promisc >= 0 {
		errs = append(errs, unix.Close(t.promisc))
	}
	t.links, t.objs, t.promisc = nil, nil, -1
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("vlan: close %s: %w", t.port, err)
	}
	return nil
}
