package nat64

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"codeberg.org/monostack/gizmo/internal/bpftest"
	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// BenchmarkRouterPath measures a packet's whole way through the router,
// not only the program: received on an interface (internal/targetkernel,
// MeasurePath: an skb built as a driver would), through the tcx hooks,
// forwarded by the kernel or translated and redirected by the NAT64, and
// sent out of the other interface. Plain IPv6 forwarding with no program
// is the reference: the kernel's own cost of a forwarded packet, without
// the NIC driver's. In TestTargetKernelCost the figures are instructions.
func BenchmarkRouterPath(b *testing.B) {
	// IPv6 on the WAN too, for the native packets.
	r := costRouter()
	gw6 := net.ParseIP("2001:db8:0:1::1")
	r.WAN = append(r.WAN, "2001:db8:0:1::2/64")
	r.Routes = append(r.Routes, targetkernel.Route{Dst: "2001:db8:ffff::/48", Gw: gw6})
	r.Neighbours = append(r.Neighbours, targetkernel.Neighbour{WAN: true, IP: gw6, MAC: macA})
	p := testPlan()
	p.Deny4 = []netip.Prefix{netip.MustParsePrefix("203.0.113.128/25")}
	dp, ll, wl := costDatapath(b, r, &p)
	lan, wan := p.LANIfindex, p.WANIfindex
	xdp, err := targetkernel.XDPPass()
	if err != nil {
		b.Fatal(err)
	}
	defer xdp.Close()
	frame := func(to net.HardwareAddr, l3 []byte) []byte { return bpftest.Frame(to, macB, l3) }
	udp := func(sport, dport uint16) seg {
		return seg{Proto: ProtoUDP, SPort: sport, DPort: dport, Payload: make([]byte, 64)}
	}
	native := frame(ll.Attrs().HardwareAddr, pkt6(hostA, netip.MustParseAddr("2001:db8:ffff::6"), udp(5000, 7000)))
	to4 := frame(ll.Attrs().HardwareAddr, pkt6(hostA, to6(p, remote1), udp(5000, 7000)))
	const runs = 11
	measure := func(name string, f []byte, ingress int) int64 {
		b.Helper()
		d, err := targetkernel.MeasurePath(xdp, f, ingress, runs)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return d.Nanoseconds()
	}
	b.ResetTimer()
	for range b.N {
		plain := measure("native", native, lan)
		fmt.Printf("path: %-62s %6d ns\n", "IPv6 forwarded by the kernel, no program (reference)", plain)
		if err := dp.attach(lan, wan, false); err != nil {
			b.Fatal(err)
		}
		past := measure("native past the NAT64", native, lan)
		fmt.Printf("path: %-62s %6d ns (%+d)\n", "IPv6 forwarded by the kernel, past nat64_lan", past, past-plain)
		// The first frames open the session and the binding.
		measure("6→4 warm-up", to4, lan)
		t4 := measure("6→4", to4, lan)
		fmt.Printf("path: %-62s %6d ns (%+d, %.2f× the reference)\n", "6→4 UDP translated by nat64_lan, redirected", t4, t4-plain, float64(t4)/float64(plain))
		var bv nat64Bib6Val
		if err := dp.objs.Nat64Bib6.Lookup(&nat64Bib6Key{Addr: hostA.As16(), Port: be16(5000), Proto: ProtoUDP}, &bv); err != nil {
			b.Fatalf("the UDP binding: %v (counters %v)", err, mustDPCounters(b, dp))
		}
		to6 := frame(wl.Attrs().HardwareAddr, pkt4(remote1, pool, udp(7000, port16(bv.Port4))))
		t6 := measure("4→6", to6, wan)
		fmt.Printf("path: %-62s %6d ns (%+d, %.2f× the reference)\n", "4→6 UDP translated by nat64_wan, redirected", t6, t6-plain, float64(t6)/float64(plain))
		dp.detach()
	}
	b.StopTimer()
	c := mustDPCounters(b, dp)
	fmt.Printf("path: counters: translated %d 6→4, %d 4→6; no_route %d, malformed %d\n",
		c["translated_6to4"], c["translated_4to6"], c["no_route"], c["malformed"])
	if c["translated_6to4"] == 0 || c["translated_4to6"] == 0 || c["no_route"] != 0 || c["malformed"] != 0 {
		b.Errorf("the frames were not translated as measured: counters %v", c)
	}
}
