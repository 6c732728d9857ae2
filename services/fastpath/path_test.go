package fastpath

import (
	"fmt"
	"net"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// BenchmarkRouterPath measures a forwarded IPv6 packet's whole way through
// the router (internal/targetkernel, MeasurePath): by the kernel alone,
// through a stateful forward chain (conntrack, as the firewall's), and
// through that chain with the fast path attached and the flow offloaded, so
// that the packet skips the stack. In TestTargetKernelCost the figures are
// instructions: whether the fast path pays for itself without a JIT.
func BenchmarkRouterPath(b *testing.B) {
	lan, wan := costLinks(b)
	ll, err := netlink.LinkByIndex(lan)
	if err != nil {
		b.Fatal(err)
	}
	wl, err := netlink.LinkByIndex(wan)
	if err != nil {
		b.Fatal(err)
	}
	xdp, err := targetkernel.XDPPass()
	if err != nil {
		b.Fatal(err)
	}
	defer xdp.Close()
	frame := func(to net.HardwareAddr, l3 []byte) []byte {
		return append(append(append([]byte{}, to...), 2, 0, 0, 0, 0, 0xb, 0x86, 0xdd), l3...)
	}
	out := frame(ll.Attrs().HardwareAddr, pkt6(hostA, remote, seg{proto: 17, sport: 40000, dport: 9999, payload: 64}))
	in := frame(wl.Attrs().HardwareAddr, pkt6(remote, hostA, seg{proto: 17, sport: 9999, dport: 40000, payload: 64}))
	measure := func(name string) int64 {
		b.Helper()
		d, err := targetkernel.MeasurePath(xdp, out, lan, 11)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return d.Nanoseconds()
	}
	h := costDatapath(b, lan, wan)
	dp := h.dp
	b.ResetTimer()
	for range b.N {
		plain := measure("plain")
		fmt.Printf("path: %-66s %6d ns\n", "IPv6 forwarded by the kernel, no firewall (reference)", plain)
		stateful(b)
		// The reply makes the flow established in conntrack.
		if _, err := targetkernel.MeasurePath(xdp, in, wan, 1); err != nil {
			b.Fatal(err)
		}
		ct := measure("conntrack")
		fmt.Printf("path: %-66s %6d ns (%+d)\n", "IPv6 forwarded through a stateful forward chain (conntrack)", ct, ct-plain)
		if err := dp.attach(lan, wan); err != nil {
			b.Fatal(err)
		}
		// One packet each way through the stack: the learners see the
		// firewall accept both directions.
		for _, f := range []struct {
			frame   []byte
			ingress int
		}{{out, lan}, {in, wan}} {
			if _, err := targetkernel.MeasurePath(xdp, f.frame, f.ingress, 1); err != nil {
				b.Fatal(err)
			}
		}
		fast := measure("offloaded")
		fmt.Printf("path: %-66s %6d ns (%+d against conntrack, %.2f×)\n", "IPv6 on the fast path (offloaded, the stack skipped)",
			fast, fast-ct, float64(fast)/float64(ct))
		dp.detach()
	}
	b.StopTimer()
	c := h.counters()
	fmt.Printf("path: counters: fast-pathed %d packets; to the stack: no flow %d, half open %d, FIB %d\n",
		c[cFastPackets], c[sNoFlow], c[sHalfOpen], c[sFIB])
	if c[cFastPackets] == 0 || c[sFIB] != 0 {
		b.Errorf("the flow was not offloaded as measured: counters %v", c)
	}
}

// stateful adds the forward chain of a stateful firewall: conntrack on,
// established and related packets accepted (the first rule of the
// firewall's own forward chain), the rest accepted by the policy.
func stateful(b *testing.B) {
	b.Helper()
	conn, err := nftables.New()
	if err != nil {
		b.Fatal(err)
	}
	t := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "cost"})
	policy := nftables.ChainPolicyAccept
	ch := conn.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policy})
	conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	if err := conn.Flush(); err != nil {
		b.Fatalf("nftables: %v", err)
	}
}
