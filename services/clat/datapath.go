package clat

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"codeberg.org/monostack/gizmo/internal/bpfobj"
)

// objects are the parts of the BPF collection the CLAT uses; its
// programs also use the per-CPU scratch map, which loads with them.
type objects struct {
	Out      *ebpf.Program `ebpf:"clat_out"`
	In       *ebpf.Program `ebpf:"clat_in"`
	Config   *ebpf.Map     `ebpf:"clat_config"`
	Counters *ebpf.Map     `ebpf:"nat64_counters"`
}

func (o *objects) close() error {
	var errs []error
	for _, c := range []interface{ Close() error }{o.Out, o.In, o.Config, o.Counters} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// datapath is the loaded programs and, once attached, their tcx links.
type datapath struct {
	objs  objects
	links []link.Link // clat_out on clat0 egress, clat_in on uplink0 ingress
	clat0 int
	wan   int
	cur   clatConfig
}

// loadDatapath loads the programs and their maps. Nothing is pinned: the
// CLAT keeps no state a restart would lose (the NAT44's is the kernel's).
func loadDatapath() (*datapath, error) {
	spec, err := loadClat()
	if err != nil {
		return nil, fmt.Errorf("clat: load spec: %w", err)
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	d := &datapath{}
	if err := spec.LoadAndAssign(&d.objs, nil); err != nil {
		return nil, fmt.Errorf("clat: %w", bpfobj.LoadError(err))
	}
	return d, nil
}

// configure applies an enabled, valid plan in one map update: the
// programs see the old or the new configuration, never a mix.
func (d *datapath) configure(p Plan, clat0 int, extraFlags uint8) error {
	c := p.toConfig(clat0)
	c.Flags |= extraFlags
	if err := d.objs.Config.Update(uint32(0), &c, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("clat: config: %w", err)
	}
	d.cur = c
	return nil
}

// disable turns translation off: clat_in passes everything on, clat_out
// drops (clat0 leads nowhere then).
func (d *datapath) disable() error {
	var c clatConfig
	if err := d.objs.Config.Update(uint32(0), &c, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("clat: disable: %w", err)
	}
	d.cur = c
	return nil
}

// attach puts clat_out on clat0's tcx egress and clat_in at the head of
// the uplink's tcx ingress, moving them when an index changed. clat_in
// compares one destination address and returns TCX_NEXT for everything
// else, so the programs after it (the fast path, the NAT64) lose one
// compare; at the head, the CLAT's own packets skip their lookups. What it
// translates it hands to the stack (TC_ACT_OK), which ends the chain.
func (d *datapath) attach(clat0, wan int) error {
	if clat0 == d.clat0 && wan == d.wan && d.links != nil {
		return nil
	}
	d.detach()
	links, err := bpfobj.AttachTCX(
		link.TCXOptions{Interface: clat0, Program: d.objs.Out, Attach: ebpf.AttachTCXEgress, Anchor: link.Tail()},
		link.TCXOptions{Interface: wan, Program: d.objs.In, Attach: ebpf.AttachTCXIngress, Anchor: link.Head()},
	)
	if err != nil {
		return fmt.Errorf("clat: %w", err)
	}
	d.links, d.clat0, d.wan = links, clat0, wan
	return nil
}

func (d *datapath) detach() {
	bpfobj.Detach(d.links)
	d.links, d.clat0, d.wan = nil, 0, 0
}

func (d *datapath) close() error {
	d.detach()
	return d.objs.close()
}

// counters sums the per-CPU outcome counters.
func (d *datapath) counters() (map[string]uint64, error) {
	out := make(map[string]uint64, len(counterIndex))
	for name, i := range counterIndex {
		v, err := bpfobj.SumPerCPU(d.objs.Counters, i)
		if err != nil {
			return nil, fmt.Errorf("clat: counter %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}
