package fastpath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/bpfobj"
)

var nativeEndian = binary.NativeEndian

// maxPrefixes and maxExclude are MAX_PREFIXES and MAX_EXCLUDE in
// bpf/fastpath.c.
const (
	maxPrefixes = 8
	maxExclude  = 2
)

// MaxLANPrefixes is how many LAN prefixes a Plan may hold; a plan with more
// is refused.
const MaxLANPrefixes = maxPrefixes

// Flags of config.flags and flow_val.flags, as in bpf/fastpath.c.
const (
	flagNoFIB = 1

	seenOut = 1
	seenIn  = 2
	closing = 4
)

// Indexes into fp_counters, in the order of the enum in bpf/fastpath.c.
const (
	cFastPackets = iota
	cFastBytes
	sNotIPv6
	sShort
	sNextHeader
	sHopLimit
	sNotLAN
	sNoFlow
	sHalfOpen
	sRefresh
	sExpired
	sTCPClose
	sClosing
	sFragNeeded
	sFIB
	sRoute
	sExcluded
	lLearned
	lFlowFull
	lHostFull
	nCounters
)

// stackReasons names the reasons a packet went to the stack, as Stats
// reports them.
var stackReasons = map[int]string{
	sNotIPv6:    "not-ipv6",
	sShort:      "short",
	sNextHeader: "next-header",
	sHopLimit:   "hop-limit",
	sNotLAN:     "not-lan",
	sNoFlow:     "no-flow",
	sHalfOpen:   "half-open",
	sRefresh:    "refresh",
	sExpired:    "expired",
	sTCPClose:   "tcp-close",
	sClosing:    "closing",
	sFragNeeded: "frag-needed",
	sFIB:        "fib",
	sRoute:      "route",
	sExcluded:   "excluded",
}

// timeouts are the idle times after which a flow leaves the table.
type timeouts struct {
	udp, tcp, icmp, closing, refresh time.Duration
}

// datapath is the loaded programs and maps and, once attached, the links.
type datapath struct {
	objs  fastpathObjects
	links []link.Link
	cfg   fastpathConfig
}

func loadDatapath(maxFlows int) (*datapath, error) {
	// Kernels since 5.11 account BPF memory to cgroups; older ones need
	// the limit lifted.
	_ = unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY})
	spec, err := loadFastpath()
	if err != nil {
		return nil, fmt.Errorf("fastpath: load spec: %w", err)
	}
	if maxFlows > 0 {
		spec.Maps["fp_flows"].MaxEntries = uint32(maxFlows)
	}
	d := &datapath{}
	if err := spec.LoadAndAssign(&d.objs, nil); err != nil {
		return nil, fmt.Errorf("fastpath: %w", bpfobj.LoadError(err))
	}
	return d, nil
}

// attach puts the forwarding programs at the tail of the tcx ingress hooks
// and the learners at the tail of the egress hooks. At the tail they run
// after the NAT64 program (services/nat64), which returns TCX_NEXT for
// what is not NAT64 traffic; in front of it the order would not matter
// either: NAT64 packets never reach an egress hook as native IPv6, so they
// are never in the table and the fast path returns TCX_NEXT for them.
func (d *datapath) attach(lan, wan int) error {
	d.detach()
	links, err := bpfobj.AttachTCX(
		link.TCXOptions{Interface: lan, Program: d.objs.FpLan, Attach: ebpf.AttachTCXIngress, Anchor: link.Tail()},
		link.TCXOptions{Interface: wan, Program: d.objs.FpWan, Attach: ebpf.AttachTCXIngress, Anchor: link.Tail()},
		link.TCXOptions{Interface: wan, Program: d.objs.FpLearnWan, Attach: ebpf.AttachTCXEgress, Anchor: link.Tail()},
		link.TCXOptions{Interface: lan, Program: d.objs.FpLearnLan, Attach: ebpf.AttachTCXEgress, Anchor: link.Tail()},
	)
	if err != nil {
		return fmt.Errorf("fastpath: %w", err)
	}
	d.links = links
	return nil
}

func (d *datapath) detach() {
	bpfobj.Detach(d.links)
	d.links = nil
}

func (d *datapath) close() error {
	d.detach()
	return d.objs.Close()
}

// configure writes the config in one map update (setConfig). fp_config is
// an array, whose value the kernel writes in place: a packet read during
// the update may see old fields beside new ones (the prefix count of one
// config, the prefixes of the other), and so take the stack instead of
// the fast path or the other way round; the next packet sees the new
// config. The one-entry hash (bpfhdr's CONFIG_MAP) that rules the mix
// out costs a helper call per packet, on the path this package exists
// to make cheap.
func (d *datapath) configure(enabled bool, lan, wan int, mark uint32, prefixes, exclude []netip.Prefix, t timeouts, flags uint32, nowNs uint64) error {
	if len(prefixes) > maxPrefixes {
		return fmt.Errorf("fastpath: %d LAN prefixes, at most %d", len(prefixes), maxPrefixes)
	}
	if len(exclude) > maxExclude {
		return fmt.Errorf("fastpath: %d excluded prefixes, at most %d", len(exclude), maxExclude)
	}
	c := fastpathConfig{
		LanIfindex: uint32(lan), WanIfindex: uint32(wan), Mark: mark, Flags: flags, NowNs: nowNs,
		UdpTimeoutNs: uint64(t.udp), TcpTimeoutNs: uint64(t.tcp), IcmpTimeoutNs: uint64(t.icmp),
		ClosingTimeoutNs: uint64(t.closing), RefreshNs: uint64(t.refresh),
	}
	for _, p := range prefixes {
		if !p.Addr().Is6() || p.Addr().Is4In6() {
			return fmt.Errorf("fastpath: LAN prefix %v is not IPv6", p)
		}
		c.Prefixes[c.Nprefixes] = prefix6(p)
		c.Nprefixes++
	}
	for _, p := range exclude {
		if !p.Addr().Is6() || p.Addr().Is4In6() {
			return fmt.Errorf("fastpath: excluded prefix %v is not IPv6", p)
		}
		c.Exclude[c.Nexclude] = prefix6(p)
		c.Nexclude++
	}
	if enabled && c.Nprefixes > 0 {
		c.Enabled = 1
	}
	if err := d.setConfig(c); err != nil {
		return fmt.Errorf("fastpath: config: %w", err)
	}
	return nil
}

// setClock moves the programs' clock (config.now_ns).
func (d *datapath) setClock(nowNs uint64) error {
	c := d.cfg
	c.NowNs = nowNs
	if err := d.setConfig(c); err != nil {
		return fmt.Errorf("fastpath: clock: %w", err)
	}
	return nil
}

// setConfig writes c in one map update and keeps it as the one in force.
func (d *datapath) setConfig(c fastpathConfig) error {
	if err := d.objs.FpConfig.Update(uint32(0), &c, ebpf.UpdateAny); err != nil {
		return err
	}
	d.cfg = c
	return nil
}

// prefix6 is p as the program compares it: the bytes loaded as two native
// 64-bit words, like the program loads addresses from the packet.
func prefix6(p netip.Prefix) fastpathPrefix6 {
	p = p.Masked()
	a := p.Addr().As16()
	var m [16]byte
	for i := range p.Bits() {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return fastpathPrefix6{
		Addr: [2]uint64{nativeEndian.Uint64(a[:8]), nativeEndian.Uint64(a[8:])},
		Mask: [2]uint64{nativeEndian.Uint64(m[:8]), nativeEndian.Uint64(m[8:])},
	}
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// reapResult is what a pass over the flow table found.
type reapResult struct {
	Flows, Offloaded, Removed int
}

// reap deletes flows that have been idle longer than their timeout and
// flows whose LAN address is no longer in a LAN prefix (renumbering) or
// whose remote is excluded, and
// counts the rest. The programs expire flows lazily on lookup as well;
// this pass frees the entries of flows that went quiet.
func (d *datapath) reap(nowNs uint64, t timeouts, prefixes, exclude []netip.Prefix) (reapResult, error) {
	var (
		res  reapResult
		k    fastpathFlowKey
		v    fastpathFlowVal
		dead []fastpathFlowKey
	)
	it := d.objs.FpFlows.Iterate()
	for it.Next(&k, &v) {
		limit := t.icmp
		switch {
		case v.Flags&closing != 0:
			limit = t.closing
		case k.Proto == unix.IPPROTO_TCP:
			limit = t.tcp
		case k.Proto == unix.IPPROTO_UDP:
			limit = t.udp
		}
		lan := netip.AddrFrom16(k.Lan)
		remote := netip.AddrFrom16(k.Remote)
		if (nowNs > v.LastNs && nowNs-v.LastNs > uint64(limit)) || !inPrefixes(lan, prefixes) || inPrefixes(remote, exclude) {
			dead = append(dead, k)
			continue
		}
		res.Flows++
		if v.Flags&(seenOut|seenIn) == seenOut|seenIn && v.Flags&closing == 0 {
			res.Offloaded++
		}
	}
	if err := it.Err(); err != nil {
		return res, fmt.Errorf("fastpath: iterate flows: %w", err)
	}
	for _, k := range dead {
		if err := d.objs.FpFlows.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return res, fmt.Errorf("fastpath: delete flow: %w", err)
		}
		res.Removed++
	}
	return res, nil
}

// counters sums the per-CPU global counters.
func (d *datapath) counters() ([nCounters]uint64, error) {
	var out [nCounters]uint64
	for i := range nCounters {
		v, err := bpfobj.SumPerCPU(d.objs.FpCounters, uint32(i))
		if err != nil {
			return out, fmt.Errorf("fastpath: counter %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}

// hosts sums the per-CPU host counters.
func (d *datapath) hosts() (map[netip.Addr]HostStats, error) {
	out := map[netip.Addr]HostStats{}
	var (
		k   [16]byte
		per []fastpathHostStats
	)
	it := d.objs.FpHosts.Iterate()
	for it.Next(&k, &per) {
		var h HostStats
		for _, p := range per {
			h.OutBytes += p.OutBytes
			h.OutPackets += p.OutPackets
			h.InBytes += p.InBytes
			h.InPackets += p.InPackets
		}
		out[netip.AddrFrom16(k)] = h
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("fastpath: iterate hosts: %w", err)
	}
	return out, nil
}
