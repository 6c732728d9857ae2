package dslite

import (
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"codeberg.org/monostack/gizmo/internal/bpfobj"
)

// CounterNames are the counters in the order of enum counter in
// bpf/dslite.h; Stats.Counters is keyed by them.
var CounterNames = []string{
	"encapsulated",
	"encapsulated_bytes",
	"decapsulated",
	"decapsulated_bytes",
	"mss_clamped",
	"too_big",
	"not_from_aftr",
	"outer_fragment",
	"malformed",
	"no_route",
	"error",
}

// config flags, mirrored from bpf/dslite.h.
const flagNoFIB = 1

// datapath is the loaded programs and maps and, once attached, the tcx
// links on the WAN interface.
type datapath struct {
	objs    dsliteObjects
	links   []link.Link // dslite_in on ingress, dslite_out on egress
	ifindex int
}

func loadDatapath() (*datapath, error) {
	spec, err := loadDslite()
	if err != nil {
		return nil, fmt.Errorf("dslite: load spec: %w", err)
	}
	d := &datapath{}
	if err := spec.LoadAndAssign(&d.objs, nil); err != nil {
		return nil, fmt.Errorf("dslite: %w", bpfobj.LoadError(err))
	}
	return d, nil
}

// configOf is the program's configuration for a softwire.
func configOf(s Softwire) dsliteConfig {
	c := dsliteConfig{
		B4:         s.B4.As16(),
		Aftr:       s.AFTR.As16(),
		WanIfindex: uint32(s.Ifindex),
		Mtu:        uint16(s.MTU4()),
		Mss:        uint16(s.MSS()),
		HopLimit:   HopLimit,
	}
	return c
}

// configure puts the softwire's configuration in place in one map update:
// the programs read the old or the new value, never a mix.
func (d *datapath) configure(c dsliteConfig) error {
	if err := d.objs.DsliteConfig.Put(uint32(0), c); err != nil {
		return fmt.Errorf("dslite: config: %w", err)
	}
	return nil
}

// testNextHop makes the program skip the FIB and send to mac: for tests
// whose peer is a bare veth.
func (c *dsliteConfig) testNextHop(mac net.HardwareAddr) {
	c.Flags |= flagNoFIB
	copy(c.NextHopMac[:], mac)
}

// disable removes the configuration: both programs pass everything.
func (d *datapath) disable() error {
	if err := d.objs.DsliteConfig.Delete(uint32(0)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("dslite: config: %w", err)
	}
	return nil
}

// attach puts dslite_in at the head of the interface's tcx ingress, so
// that the NAT64 program and the stack after it see the inner IPv4 packet,
// and dslite_out at the tail of its egress, after any program that wants
// to see the IPv4 packet as the stack sent it.
func (d *datapath) attach(ifindex int) error {
	if ifindex == d.ifindex && d.links != nil {
		return nil
	}
	d.detach()
	links, err := bpfobj.AttachTCX(
		link.TCXOptions{Interface: ifindex, Program: d.objs.DsliteIn, Attach: ebpf.AttachTCXIngress, Anchor: link.Head()},
		link.TCXOptions{Interface: ifindex, Program: d.objs.DsliteOut, Attach: ebpf.AttachTCXEgress, Anchor: link.Tail()},
	)
	if err != nil {
		return fmt.Errorf("dslite: %w", err)
	}
	d.links, d.ifindex = links, ifindex
	return nil
}

func (d *datapath) detach() {
	bpfobj.Detach(d.links)
	d.links, d.ifindex = nil, 0
}

func (d *datapath) close() error {
	d.detach()
	return d.objs.Close()
}

func (d *datapath) counters() (map[string]uint64, error) {
	out, err := bpfobj.Counters(d.objs.DsliteCounters, CounterNames)
	if err != nil {
		return nil, fmt.Errorf("dslite: %w", err)
	}
	return out, nil
}
