// Package aftr is the lab's DS-Lite AFTR (RFC 6333 §6) for one B4: a tc
// program pair on gz-isp's interface towards the gizmo decapsulates the
// IPv4-in-IPv6 the B4 sends to the AFTR address and encapsulates the
// IPv4 to the softwire's 192.0.0.0/29 back to it (bpf/aftr.c). The lab's
// kernel has no ip6_tunnel. The kernel forwards the inner packets, and
// nftables masquerades them towards gz-inet (netlab).
package aftr

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"codeberg.org/monostack/gizmo/internal/bpfobj"
)

// Prefix4 is the softwire's IPv4 network (RFC 6333 §5.7).
var Prefix4 = netip.MustParsePrefix("192.0.0.0/29")

// Softwire is what the AFTR saw: the B4 it serves and its packet counts.
type Softwire struct {
	B4                         netip.Addr
	Decapsulated, Encapsulated uint64
	// NoB4 counts IPv4 for the softwire dropped before any B4 was heard.
	NoB4 uint64
}

// AFTR is the loaded and attached program pair.
type AFTR struct {
	objs  aftrObjects
	links []link.Link
}

// Start loads the programs, configures the AFTR address and attaches them
// to the interface (in the caller's network namespace).
func Start(ifname string, addr netip.Addr) (*AFTR, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("aftr: %w", err)
	}
	if !addr.Is6() {
		return nil, fmt.Errorf("aftr: %s is not an IPv6 address", addr)
	}
	a := &AFTR{}
	if err := loadAftrObjects(&a.objs, nil); err != nil {
		return nil, fmt.Errorf("aftr: %w", bpfobj.LoadError(err))
	}
	n4, m4 := Prefix4.Addr().As4(), net.CIDRMask(Prefix4.Bits(), 32)
	c := aftrConfig{Aftr: addr.As16(), Ifindex: uint32(ifi.Index)}
	// The program compares __be32 values as loaded on this machine.
	c.Net4 = binary.NativeEndian.Uint32(n4[:])
	c.Mask4 = binary.NativeEndian.Uint32(m4)
	if err := a.objs.AftrConfig.Put(uint32(0), c); err != nil {
		a.objs.Close()
		return nil, fmt.Errorf("aftr: config: %w", err)
	}
	a.links, err = bpfobj.AttachTCX(
		link.TCXOptions{Interface: ifi.Index, Program: a.objs.AftrIn, Attach: ebpf.AttachTCXIngress},
		link.TCXOptions{Interface: ifi.Index, Program: a.objs.AftrOut, Attach: ebpf.AttachTCXEgress},
	)
	if err != nil {
		a.objs.Close()
		return nil, fmt.Errorf("aftr: %w", err)
	}
	return a, nil
}

// Softwire reads what the AFTR has seen.
func (a *AFTR) Softwire() (Softwire, error) {
	var s aftrSoftwire
	if err := a.objs.AftrSoftwire.Lookup(uint32(0), &s); err != nil {
		return Softwire{}, fmt.Errorf("aftr: %w", err)
	}
	out := Softwire{Decapsulated: s.Decapsulated, Encapsulated: s.Encapsulated, NoB4: s.NoB4}
	if b4 := netip.AddrFrom16(s.B4); !b4.IsUnspecified() {
		out.B4 = b4
	}
	return out, nil
}

// Close detaches and unloads the programs.
func (a *AFTR) Close() error {
	bpfobj.Detach(a.links)
	return a.objs.Close()
}

// Run is the lab peer: it runs the AFTR on ifname until ctx is done.
func Run(ctx context.Context, logger *slog.Logger, ifname string, addr netip.Addr) error {
	a, err := Start(ifname, addr)
	if err != nil {
		return err
	}
	defer a.Close()
	logger.Info("AFTR up", "interface", ifname, "aftr", addr)
	<-ctx.Done()
	if s, err := a.Softwire(); err == nil {
		logger.Info("AFTR down", "b4", s.B4, "decapsulated", s.Decapsulated, "encapsulated", s.Encapsulated, "no_b4", s.NoB4)
	}
	return nil
}
