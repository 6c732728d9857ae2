package firewall

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/services/fastpath"
)

// BenchmarkRouterPath measures a forwarded IPv6 packet's whole way through
// the router (internal/targetkernel, MeasurePath: received as from a
// driver, through the tcx hooks and netfilter, forwarded or redirected,
// transmitted; only the NIC driver is missing), for the configurations the
// gizmo can run, in one namespace and one run:
//
//   - none: plain forwarding, no ruleset, no conntrack (the reference);
//   - conntrack, one rule: a forward chain accepting established flows;
//   - gizmo, gizmo+1000hosts: the lab plan's `inet gizmo` table, Render's
//     as the daemon applies it (the second with 4,000 more set elements);
//   - +acct: with services/accounting's per-address table, which the
//     daemon always runs beside the firewall;
//   - +fastpath: with services/fastpath, the flow learned both ways and
//     offloaded;
//   - +nat64: with the NAT64's programs on the same hooks, behind the
//     fast path's, the order the daemon usually attaches them in (the
//     NAT64 waits for the WAN's IPv4 address).
//
// Every flow is opened first as a host would (one packet each way; TCP's
// handshake), so that conntrack has it established and the fast path has
// learned it. In TestTargetKernelCost, on gokrazy's kernel without a BPF
// JIT, every figure is a count of instructions.
//
//	sudo go test ./services/firewall -run '^$' -bench RouterPath -benchtime 1x
func BenchmarkRouterPath(b *testing.B) {
	testns.NeedRoot(b)
	r := newPathRouter(b)
	plan := labPlan()
	many := labPlan()
	addHosts(&many, 1000)
	fw, err := New(Config{NetNS: r.nsFD()})
	if err != nil {
		b.Fatal(err)
	}
	var fp *fastpath.Service
	apply := func(p Plan) func() {
		if err := fw.Apply(p); err != nil {
			b.Fatal(err)
		}
		return func() {
			if err := fw.Remove(); err != nil {
				b.Fatal(err)
			}
		}
	}
	withFastpath := func() func() {
		var stop func()
		fp, stop = r.fastpath(plan.LANPrefixes)
		return stop
	}
	both := func(fs ...func() func()) func() {
		var undo []func()
		for _, f := range fs {
			undo = append(undo, f())
		}
		return func() {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}
	gizmo := func() func() { return apply(plan) }
	configs := []pathConfig{
		{name: "none"},
		{name: "conntrack, one rule", setup: r.oneRule},
		{name: "gizmo", setup: gizmo},
		{name: "gizmo+1000hosts", setup: func() func() { return apply(many) }},
		{name: "gizmo+acct", setup: func() func() { return both(gizmo, r.accounting) }},
		{name: "gizmo+acct+fastpath", setup: func() func() { return both(gizmo, r.accounting, withFastpath) }, fastpath: true},
		{name: "gizmo+acct+nat64", setup: func() func() { return both(gizmo, r.accounting, r.nat64) }},
		{name: "gizmo+acct+fastpath+nat64", setup: func() func() { return both(gizmo, r.accounting, withFastpath, r.nat64) }, fastpath: true},
		{name: "none (again)"},
	}
	kinds := pathKinds()
	// results[kind][config] are the rounds' figures.
	results := map[string][][]int64{}
	for _, k := range kinds {
		results[k.name] = make([][]int64, len(configs))
	}
	b.ResetTimer()
	for range b.N {
		for i, c := range configs {
			undo := func() {}
			if c.setup != nil {
				undo = c.setup()
			}
			for _, k := range kinds {
				// A flow of its own for every kind in every configuration
				// and round.
				f := k.flow(r, r.nextPort())
				for _, p := range f.open {
					r.inject(p)
				}
				var before fastpath.Stats
				if c.fastpath {
					before = fp.Stats()
				}
				ns := r.measure(c.name+", "+k.name, f.measured)
				if c.fastpath {
					after := fp.Stats()
					carried := after.Packets - before.Packets
					if want := uint64(pathRuns * targetkernel.PathBatch); k.offloaded && carried != want {
						b.Fatalf("%s, %s: the fast path carried %d of %d packets (to the stack: %v)", c.name, k.name, carried, want, nonZero(after.ToStack))
					} else if !k.offloaded && carried != 0 {
						b.Fatalf("%s, %s: the fast path carried %d packets of a flow it must not offload", c.name, k.name, carried)
					}
				}
				results[k.name][i] = append(results[k.name][i], ns)
			}
			undo()
		}
	}
	b.StopTimer()
	pathReport(configs, kinds, results)
}

// pathRuns is how many batches MeasurePath takes the median of.
const pathRuns = 11

type pathConfig struct {
	name     string
	setup    func() (undo func())
	fastpath bool // the measured established flows must be offloaded
}

// pathKind is a kind of packet measured in every configuration.
type pathKind struct {
	name      string
	flow      func(r *pathRouter, port uint16) pathFlow
	offloaded bool // the fast path carries it once the flow is open
}

// pathFlow is the packets that open a flow, in order, and the packet
// measured.
type pathFlow struct {
	open     []pathPacket
	measured pathPacket
}

type pathPacket struct {
	frame           []byte
	ingress, egress int
}

func pathKinds() []pathKind {
	return []pathKind{
		{"UDP LAN→WAN, 64-byte payload", func(r *pathRouter, port uint16) pathFlow {
			out, in := r.out(udp6(pathHost, pathRemote, port, 9999, 64)), r.in(udp6(pathRemote, pathHost, 9999, port, 64))
			return pathFlow{open: []pathPacket{out, in}, measured: out}
		}, true},
		{"UDP WAN→LAN, 64-byte payload", func(r *pathRouter, port uint16) pathFlow {
			out, in := r.out(udp6(pathHost, pathRemote, port, 9999, 64)), r.in(udp6(pathRemote, pathHost, 9999, port, 64))
			return pathFlow{open: []pathPacket{out, in}, measured: in}
		}, true},
		// A download: conntrack tracks the TCP window of every segment;
		// the fast path does a FIB lookup for a packet this big.
		{"TCP WAN→LAN, 1500-byte packet", func(r *pathRouter, port uint16) pathFlow {
			const iss, irs = 1000, 5000
			data := r.in(tcp6(pathRemote, pathHost, 443, port, irs+1, iss+1, tcpACK, 1440))
			return pathFlow{open: []pathPacket{
				r.out(tcp6(pathHost, pathRemote, port, 443, iss, 0, tcpSYN, 0)),
				r.in(tcp6(pathRemote, pathHost, 443, port, irs, iss+1, tcpSYN|tcpACK, 0)),
				r.out(tcp6(pathHost, pathRemote, port, 443, iss+1, irs+1, tcpACK, 0)),
				data,
			}, measured: data}
		}, true},
		// Never answered: every packet is new to conntrack and meets the
		// whole forward chain; the fast path only looks it up.
		{"UDP LAN→WAN, one-way (never answered)", func(r *pathRouter, port uint16) pathFlow {
			return pathFlow{measured: r.out(udp6(pathHost, pathRemote, port, 9999, 64))}
		}, false},
	}
}

// pathReport prints the median of the rounds for each configuration and
// kind of packet, against plain forwarding, and each +fastpath
// configuration against the same without the fast path.
func pathReport(configs []pathConfig, kinds []pathKind, results map[string][][]int64) {
	idx := map[string]int{}
	for i, c := range configs {
		idx[c.name] = i
	}
	for _, k := range kinds {
		med := make([]int64, len(configs))
		for i := range configs {
			v := slices.Clone(results[k.name][i])
			slices.Sort(v)
			med[i] = v[len(v)/2]
		}
		fmt.Printf("path: %s (median of %d rounds)\n", k.name, len(results[k.name][0]))
		for i, c := range configs {
			line := fmt.Sprintf("path:   %-27s %6d ns  %5.2f× none", c.name, med[i], float64(med[i])/float64(med[idx["none"]]))
			if base, ok := strings.CutSuffix(c.name, "+fastpath"); ok {
				line += fmt.Sprintf(", %5.2f× %s", float64(med[i])/float64(med[idx[base]]), base)
			} else if base, ok := strings.CutSuffix(c.name, "+fastpath+nat64"); ok {
				line += fmt.Sprintf(", %5.2f× %s+nat64", float64(med[i])/float64(med[idx[base+"+nat64"]]), base)
			}
			fmt.Println(line)
		}
	}
}
