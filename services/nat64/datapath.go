package nat64

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/bpfobj"
)

var nativeEndian = binary.NativeEndian

// Protocol numbers as the bindings and sessions store them.
const (
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
)

const bibStatic = 1

// The pools, mirrored from bpf/nat64.h.
const (
	poolWAN = 0
	poolLAN = 1
)

// datapath is the loaded BPF objects: programs, maps and, once attached,
// the tcx links.
type datapath struct {
	objs    nat64Objects
	pinDir  string
	lanLink link.Link
	wanLink link.Link
	// lan4Link is nat64_lan4 on the LAN, while the plan has a LAN pool.
	lan4Link link.Link
	lanIdx   int
	wanIdx   int
	cur      nat64Config
	// refused are the LAN devices in nat64_lan_refused.
	refused map[uint32]bool
	seed    uint32 // config.hash_seed: unknown outside, kept across restarts
	quota   *quotas
	// orphans are the pool ports the last reaper pass found without an
	// IPv6 half (reapOrphanPorts).
	orphans map[nat64Bib4Key]bool
}

// loadDatapath loads the programs and maps. With pinDir set, the maps are
// pinned there and reused when they already exist, so that sessions
// survive a restart of the daemon.
func loadDatapath(pinDir string, maxSessions int) (*datapath, error) {
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}); err != nil {
		// Kernels since 5.11 account BPF memory to cgroups instead.
		_ = err
	}
	spec, err := loadNat64()
	if err != nil {
		return nil, fmt.Errorf("nat64: load spec: %w", err)
	}
	if maxSessions > 0 {
		for _, name := range []string{"nat64_sess", "nat64_adf"} {
			spec.Maps[name].MaxEntries = uint32(maxSessions)
		}
		// One binding per session at most; a single pool address has
		// 3×64k ports.
		bib := min(maxSessions, 3*65536)
		spec.Maps["nat64_bib4"].MaxEntries = uint32(bib)
		spec.Maps["nat64_bib6"].MaxEntries = uint32(bib)
	}
	opts := &ebpf.CollectionOptions{}
	if pinDir == "" {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	} else {
		if err := os.MkdirAll(pinDir, 0o700); err != nil {
			return nil, fmt.Errorf("nat64: pin dir: %w", err)
		}
		opts.Maps.PinPath = pinDir
	}
	d := &datapath{pinDir: pinDir}
	err = spec.LoadAndAssign(&d.objs, opts)
	if errors.Is(err, ebpf.ErrMapIncompatible) && pinDir != "" {
		// An older layout is pinned (upgrade, other table size): its
		// sessions cannot be kept.
		if rerr := removePins(pinDir); rerr != nil {
			return nil, fmt.Errorf("nat64: replace incompatible pinned maps: %w", rerr)
		}
		err = spec.LoadAndAssign(&d.objs, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("nat64: %w", bpfobj.LoadError(err))
	}
	if d.quota, err = mapQuotas(&d.objs); err != nil {
		d.objs.Close()
		return nil, err
	}
	// A restarted daemon keeps the seed of the pinned configuration:
	// the addresses' quota slots stay where their sessions were charged.
	var old nat64Config
	if err := d.objs.Nat64Config.Lookup(uint32(0), &old); err == nil && old.HashSeed != 0 {
		d.seed = old.HashSeed
	}
	for d.seed == 0 {
		d.seed = rand.Uint32()
	}
	return d, nil
}

func removePins(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// attach puts the programs on the interfaces' tcx ingress hooks, moving
// them when an index changed. Each is appended at the tail of its hook.
// With one port (lan == wan, the existing-network mode) both share one hook:
// the WAN program goes right after the LAN program. The order does not
// matter for correctness, since each program returns TC_ACT_UNSPEC
// (TCX_NEXT) for what is not its own and the programs own disjoint
// packets (IPv6 to the prefix, IPv4 to a pool address); the anchor keeps
// them adjacent and the order fixed for the tests and for bpftool output.
// The LAN pool's program (lanPool) goes after the others on the LAN, and
// comes and goes with the LAN pool without moving them. Without a WAN
// interface (wan 0: a plan with the LAN pool only) nothing goes on a WAN.
func (d *datapath) attach(lan, wan int, lanPool bool) error {
	if lan != d.lanIdx || wan != d.wanIdx || d.lanLink == nil || (wan > 0 && d.wanLink == nil) {
		d.detach()
		l, err := link.AttachTCX(link.TCXOptions{Interface: lan, Program: d.objs.Nat64Lan, Attach: ebpf.AttachTCXIngress, Anchor: link.Tail()})
		if err != nil {
			return fmt.Errorf("nat64: attach to LAN ifindex %d: %w", lan, err)
		}
		d.lanLink, d.lanIdx, d.wanIdx = l, lan, wan
		if wan > 0 {
			anchor := link.Tail()
			if wan == lan {
				anchor = link.AfterLink(l)
			}
			w, err := link.AttachTCX(link.TCXOptions{Interface: wan, Program: d.objs.Nat64Wan, Attach: ebpf.AttachTCXIngress, Anchor: anchor})
			if err != nil {
				d.detach()
				return fmt.Errorf("nat64: attach to WAN ifindex %d: %w", wan, err)
			}
			d.wanLink = w
		}
	}
	switch {
	case lanPool && d.lan4Link == nil:
		last := d.lanLink
		if wan == lan {
			last = d.wanLink
		}
		l4, err := link.AttachTCX(link.TCXOptions{Interface: lan, Program: d.objs.Nat64Lan4, Attach: ebpf.AttachTCXIngress, Anchor: link.AfterLink(last)})
		if err != nil {
			return fmt.Errorf("nat64: attach the LAN pool to ifindex %d: %w", lan, err)
		}
		d.lan4Link = l4
	case !lanPool && d.lan4Link != nil:
		d.lan4Link.Close()
		d.lan4Link = nil
	}
	return nil
}

func (d *datapath) detach() {
	for _, l := range []*link.Link{&d.lan4Link, &d.lanLink, &d.wanLink} {
		if *l != nil {
			(*l).Close()
			*l = nil
		}
	}
	d.lanIdx, d.wanIdx = 0, 0
}

// close detaches and releases everything; with unpin, the pinned maps go
// too and nothing is left behind.
func (d *datapath) close(unpin bool) error {
	d.detach()
	var errs []error
	if unpin && d.pinDir != "" {
		for _, m := range d.maps() {
			if err := m.Unpin(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.Remove(d.pinDir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	d.quota.unmap()
	if err := d.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (d *datapath) maps() []*ebpf.Map {
	m := &d.objs.nat64Maps
	return []*ebpf.Map{m.Nat64Adf, m.Nat64Bib4, m.Nat64Bib6, m.Nat64Config, m.Nat64Counters, m.Nat64Deny4,
		m.Nat64Frag4, m.Nat64Hstats, m.Nat64Lan6, m.Nat64LanRefused, m.Nat64Quota128, m.Nat64Quota64, m.Nat64Quotamac,
		m.Nat64Quotabind, m.Nat64Sess}
}

// configure applies a plan: the source, deny and refused tables, then the
// config value in one atomic map update (the program reads either the old
// or the new one). A changed pool address makes every dynamic binding of
// its pool meaningless, so they are flushed; a LAN device the owner has
// just refused loses its sessions.
func (d *datapath) configure(p Plan, extraFlags uint8, nowNs uint64) error {
	c, err := p.toConfig(d.objs.Nat64Sess.MaxEntries())
	if err != nil {
		return err
	}
	c.Flags |= extraFlags
	c.NowNs = nowNs
	c.HashSeed = d.seed
	if err := syncLPM6(d.objs.Nat64Lan6, p.LANPrefixes); err != nil {
		return fmt.Errorf("nat64: LAN prefixes: %w", err)
	}
	if err := syncLPM4(d.objs.Nat64Deny4, p.Deny4); err != nil {
		return fmt.Errorf("nat64: deny list: %w", err)
	}
	refused := refusedSet(p.LANLegacy)
	if err := d.syncRefused(refused); err != nil {
		return fmt.Errorf("nat64: refused LAN devices: %w", err)
	}
	var old nat64Config
	_ = d.objs.Nat64Config.Lookup(uint32(0), &old)
	if err := d.setConfig(c); err != nil {
		return fmt.Errorf("nat64: config: %w", err)
	}
	if old.Pool4 != 0 && old.Pool4 != c.Pool4 {
		if err := d.flushDynamic(poolWAN); err != nil {
			return err
		}
	}
	if old.LanPool4 != 0 && lanIdentityOf(old) != lanIdentityOf(c) {
		if err := d.flushDynamic(poolLAN); err != nil {
			return err
		}
	}
	return d.cutRefused(refused)
}

// disable turns translation off: the programs pass everything (both pool
// addresses 0). The seed stays, for the quota slots of the sessions that
// remain.
func (d *datapath) disable() error {
	if err := d.setConfig(nat64Config{HashSeed: d.seed}); err != nil {
		return fmt.Errorf("nat64: disable: %w", err)
	}
	return nil
}

// setClock moves the fake clock used by tests (F_FAKE_CLOCK).
func (d *datapath) setClock(nowNs uint64) error {
	c := d.cur
	c.NowNs = nowNs
	return d.setConfig(c)
}

// setConfig writes c in one map update, so that the programs see the old
// config or the new one, never a mix, and keeps it as the one in force.
func (d *datapath) setConfig(c nat64Config) error {
	if err := d.objs.Nat64Config.Update(uint32(0), &c, ebpf.UpdateAny); err != nil {
		return err
	}
	d.cur = c
	return nil
}

func syncLPM6(m *ebpf.Map, want []netip.Prefix) error {
	keys := make([]nat64Lpm6Key, 0, len(want))
	for _, p := range want {
		p = p.Masked()
		if !p.Addr().Is6() || p.Addr().Is4In6() {
			return fmt.Errorf("%s is not an IPv6 prefix", p)
		}
		keys = append(keys, nat64Lpm6Key{Prefixlen: uint32(p.Bits()), Addr: p.Addr().As16()})
	}
	return syncSet(m, keys)
}

func syncLPM4(m *ebpf.Map, want []netip.Prefix) error {
	keys := make([]nat64Lpm4Key, 0, len(want))
	for _, p := range want {
		p = p.Masked()
		if !p.Addr().Is4() {
			return fmt.Errorf("%s is not an IPv4 prefix", p)
		}
		keys = append(keys, nat64Lpm4Key{Prefixlen: uint32(p.Bits()), Addr: be32(p.Addr())})
	}
	return syncSet(m, keys)
}

// syncSet makes the set m (every value 1) hold exactly keys: the new ones
// go in before the stale ones leave, so a key in both plans never misses.
func syncSet[K comparable](m *ebpf.Map, keys []K) error {
	keep := make(map[K]bool, len(keys))
	for _, k := range keys {
		keep[k] = true
		if err := m.Update(&k, uint8(1), ebpf.UpdateAny); err != nil {
			return err
		}
	}
	return clearMap(m, func(k K, _ uint8) bool { return !keep[k] })
}

// StaticBinding maps an IPv6 transport address to a fixed pool port
// (RFC 6146 §3.5.1: manually configured BIB entries).
type StaticBinding struct {
	Proto    uint8 // ProtoTCP, ProtoUDP or ProtoICMP
	Host     netip.AddrPort
	PoolPort uint16
}

func (d *datapath) addStatic(b StaticBinding) error {
	if !b.Host.Addr().Is6() || b.Host.Addr().Is4In6() {
		return fmt.Errorf("nat64: static binding %s: host must be IPv6", b.Host)
	}
	switch b.Proto {
	case ProtoTCP, ProtoUDP, ProtoICMP:
	default:
		return fmt.Errorf("nat64: static binding: protocol %d is not TCP, UDP or ICMP", b.Proto)
	}
	if b.PoolPort == 0 {
		return errors.New("nat64: static binding: pool port 0")
	}
	k6 := nat64Bib6Key{Addr: b.Host.Addr().As16(), Port: be16(b.Host.Port()), Proto: b.Proto}
	v6 := nat64Bib6Val{Port4: be16(b.PoolPort), Flags: bibStatic}
	k4 := nat64Bib4Key{Port4: be16(b.PoolPort), Proto: b.Proto}
	v4 := nat64Bib4Val{Addr: b.Host.Addr().As16(), Port: be16(b.Host.Port()), Flags: bibStatic}
	var cur nat64Bib4Val
	if err := d.objs.Nat64Bib4.Lookup(&k4, &cur); err == nil && (cur.Addr != v4.Addr || cur.Port != v4.Port) {
		return fmt.Errorf("nat64: static binding: pool port %d/%d is taken", b.PoolPort, b.Proto)
	}
	if err := d.objs.Nat64Bib4.Update(&k4, &v4, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("nat64: static binding: %w", err)
	}
	if err := d.objs.Nat64Bib6.Update(&k6, &v6, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("nat64: static binding: %w", err)
	}
	return nil
}

func (d *datapath) removeStatic(b StaticBinding) error {
	k6 := nat64Bib6Key{Addr: b.Host.Addr().As16(), Port: be16(b.Host.Port()), Proto: b.Proto}
	k4 := nat64Bib4Key{Port4: be16(b.PoolPort), Proto: b.Proto}
	err1 := d.objs.Nat64Bib6.Delete(&k6)
	err2 := d.objs.Nat64Bib4.Delete(&k4)
	if errors.Is(err1, ebpf.ErrKeyNotExist) && errors.Is(err2, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("nat64: static binding %v: not found", b)
	}
	return nil
}

// flushDynamic removes every session and every binding of a pool that
// was not set through the API.
func (d *datapath) flushDynamic(pool uint8) error {
	if err := d.removeSessions(func(k nat64SessKey) bool { return k.Pool == pool }); err != nil {
		return fmt.Errorf("nat64: flush sessions: %w", err)
	}
	adf := func(k nat64AdfKey, _ uint64) bool { return k.Pool == pool }
	if err := clearMap(d.objs.Nat64Adf, adf); err != nil {
		return fmt.Errorf("nat64: flush filters: %w", err)
	}
	dyn6 := func(k nat64Bib6Key, v nat64Bib6Val) bool { return k.Pool == pool && v.Flags&bibStatic == 0 }
	if err := clearMap(d.objs.Nat64Bib6, dyn6); err != nil {
		return fmt.Errorf("nat64: flush bindings: %w", err)
	}
	dyn4 := func(k nat64Bib4Key, v nat64Bib4Val) bool { return k.Pool == pool && v.Flags&bibStatic == 0 }
	if err := clearMap(d.objs.Nat64Bib4, dyn4); err != nil {
		return fmt.Errorf("nat64: flush bindings: %w", err)
	}
	return nil
}

// removeSessions removes the sessions that match, one by one, each giving
// its charges back: a session the program opens meanwhile keeps its
// charge, and no count drifts. Their bindings and filter entries go with
// the reaper, after their grace.
func (d *datapath) removeSessions(match func(nat64SessKey) bool) error {
	var keys []nat64SessKey
	if err := scanMap(d.objs.Nat64Sess, func(k nat64SessKey, _ nat64SessVal) {
		if match(k) {
			keys = append(keys, k)
		}
	}); err != nil {
		return err
	}
	for _, k := range keys {
		var old nat64SessVal
		if _, err := d.removeSession(k, &old); err != nil {
			return err
		}
	}
	return nil
}

// syncRefused makes nat64_lan_refused hold exactly the refused devices.
func (d *datapath) syncRefused(want map[uint32]bool) error {
	m := d.objs.Nat64LanRefused
	for a := range want {
		if err := m.Update(a, uint8(1), ebpf.UpdateAny); err != nil {
			return err
		}
	}
	return clearMap(m, func(a uint32, _ uint8) bool { return !want[a] })
}

// cutRefused ends the LAN pool's sessions with devices that became
// refused, and their address-filter entries, through which they could
// open new ones: the owner's "not reachable" holds for connections already
// open too.
func (d *datapath) cutRefused(refused map[uint32]bool) error {
	newly := map[uint32]bool{}
	for a := range refused {
		if !d.refused[a] {
			newly[a] = true
		}
	}
	if len(newly) == 0 {
		d.refused = refused
		return nil
	}
	// The filter entries first: a session is only ever opened from the
	// IPv4 side through one, and the table no longer lets the IPv6 side
	// open one.
	adf := func(k nat64AdfKey, _ uint64) bool { return k.Pool == poolLAN && newly[k.Addr4] }
	if err := clearMap(d.objs.Nat64Adf, adf); err != nil {
		return fmt.Errorf("nat64: filters of refused LAN devices: %w", err)
	}
	if err := d.removeSessions(func(k nat64SessKey) bool { return k.Pool == poolLAN && newly[k.Addr4] }); err != nil {
		return fmt.Errorf("nat64: end sessions with refused LAN devices: %w", err)
	}
	// Only now: a failed cut is tried again with the next plan.
	d.refused = refused
	return nil
}

func clearMap[K comparable, V any](m *ebpf.Map, match func(K, V) bool) error {
	var k K
	var v V
	var del []K
	it := m.Iterate()
	for it.Next(&k, &v) {
		if match == nil || match(k, v) {
			del = append(del, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range del {
		if err := m.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}
