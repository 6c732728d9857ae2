package nat64

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// The LAN pool: IPv6-only hosts reach the LAN's own IPv4 devices, with the
// gizmo's LAN address as the source.
var (
	lanPool4   = netip.MustParsePrefix("203.0.113.129/25")
	printer    = netip.MustParseAddr("203.0.113.130")
	gadget     = netip.MustParseAddr("203.0.113.131")
	lanPref    = netip.MustParsePrefix("2001:db8:64::/96")
	ulaPref96  = netip.MustParsePrefix("fd00:1:2:46::/96")
	wellKnown  = netip.MustParsePrefix("64:ff9b::/96")
	lanLegNet4 = netip.MustParsePrefix("203.0.113.128/25")
)

// lanPoolPlan is testPlan with a LAN pool under pref: the lab's case with
// a network-specific PREF64 (pref is the PREF64 too), or a /96 of its own
// beside the well-known prefix. The LAN's network is on the deny list, as
// gizmo/plan puts it there for the WAN pool.
func lanPoolPlan(pref64, lanPref netip.Prefix) Plan {
	p := testPlan()
	p.Pref64 = pref64
	p.Deny4 = []netip.Prefix{lanLegNet4}
	p.LANLegacy = LANLegacy{Addr4: lanPool4, Prefix: lanPref}
	return p
}

// in96 is a under a /96 prefix.
func in96(p netip.Prefix, a netip.Addr) netip.Addr {
	b := p.Addr().As16()
	a4 := a.As4()
	copy(b[12:], a4[:])
	return netip.AddrFrom16(b)
}

// toLAN sends an IPv6 packet to dst (already an IPv6 address) from the LAN
// and returns the translated IPv4 packet.
func (h *harness) toLAN(t *testing.T, from, dst netip.Addr, s seg) parsed {
	t.Helper()
	ret, b := h.send(true, pkt6(from, dst, s))
	if ret != bpftest.ActRedirect {
		t.Fatalf("6→4 %v→%v %+v: verdict %d (counters %v)", from, dst, s, ret, mustCounters(t, h))
	}
	return parse(t, b)
}

// fromDevice sends an IPv4 packet from a LAN device through nat64_lan4.
func (h *harness) fromDevice(l3 []byte) (uint32, []byte) {
	h.t.Helper()
	return h.runProg(h.dp.objs.Nat64Lan4, l3)
}

func TestLANPoolUnderNetworkSpecificPREF64(t *testing.T) {
	p := lanPoolPlan(lanPref, lanPref)
	h := newHarness(t, p, 0)
	dst := in96(lanPref, printer)
	o := h.toLAN(t, hostA, dst, seg{Proto: ProtoTCP, SPort: 40000, DPort: 631, Flags: 0x02})
	if o.src != lanPool4.Addr() || o.dst != printer || o.dport != 631 {
		t.Fatalf("translated %v:%d→%v:%d, want from the LAN pool %v to %v:631", o.src, o.sport, o.dst, o.dport, lanPool4.Addr(), printer)
	}
	if o.sport < DefaultLANPorts.Min || o.sport > DefaultLANPorts.Max {
		t.Errorf("LAN pool port %d outside %d-%d", o.sport, DefaultLANPorts.Min, DefaultLANPorts.Max)
	}
	// The printer answers the gizmo; nat64_lan4 takes it back to the host,
	// from the printer's address in the prefix.
	ret, b := h.fromDevice(pkt4(printer, lanPool4.Addr(), seg{Proto: ProtoTCP, SPort: 631, DPort: o.sport, Flags: 0x12}))
	if ret != bpftest.ActRedirect {
		t.Fatalf("reply: verdict %d (counters %v)", ret, mustCounters(t, h))
	}
	r := parse(t, b)
	if r.src != dst || r.dst != hostA || r.sport != 631 || r.dport != 40000 {
		t.Errorf("reply %v:%d→%v:%d, want %v:631→%v:40000", r.src, r.sport, r.dst, r.dport, dst, hostA)
	}
	// The WAN program knows nothing of the LAN pool's address, and the LAN
	// pool's program nothing of the WAN pool's.
	if ret, _ := h.run(false, pkt4(printer, lanPool4.Addr(), seg{Proto: ProtoTCP, SPort: 631, DPort: o.sport, Flags: 0x10})); ret != bpftest.ActNext {
		t.Errorf("LAN pool address through nat64_wan: verdict %d, want next", ret)
	}
	w := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 5000, DPort: 53})
	if ret, _ := h.fromDevice(pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 53, DPort: w.sport})); ret != bpftest.ActNext {
		t.Errorf("WAN pool address through nat64_lan4: verdict %d, want next", ret)
	}
	// Only the LAN's own devices talk to the LAN pool.
	if ret, _ := h.fromDevice(pkt4(remote1, lanPool4.Addr(), seg{Proto: ProtoTCP, SPort: 631, DPort: o.sport, Flags: 0x10})); ret != bpftest.ActNext {
		t.Errorf("a source outside the LAN through nat64_lan4: verdict %d, want next", ret)
	}
	hs, err := h.dp.hosts()
	if err != nil || len(hs) != 1 {
		t.Fatalf("hosts %+v: %v", hs, err)
	}
	if x := hs[0]; x.LANPacketsOut != 1 || x.LANPacketsIn != 1 || x.LANBytesOut == 0 || x.PacketsOut != 1 || x.PacketsIn != 0 {
		t.Errorf("host counters %+v: want one packet each way through the LAN pool, one out through the WAN pool", x)
	}
}

func TestRFC6052WellKnownPrefixLANDevicesUnderOwn96(t *testing.T) {
	p := lanPoolPlan(wellKnown, ulaPref96)
	h := newHarness(t, p, 0)
	// RFC 6052 §3.1: the well-known prefix never carries the LAN's
	// (non-global) addresses.
	if ret, _ := h.send(true, pkt6(hostA, in96(wellKnown, printer), seg{Proto: ProtoUDP, SPort: 1, DPort: 2})); ret != bpftest.ActShot {
		t.Errorf("LAN device under 64:ff9b::/96: verdict %d, want drop", ret)
	}
	if got := h.counter("destination_denied"); got != 1 {
		t.Errorf("destination_denied = %d, want 1", got)
	}
	// Under the /96 of its own it is reached, and answers from there.
	dst := in96(ulaPref96, printer)
	o := h.toLAN(t, hostA, dst, seg{Proto: ProtoUDP, SPort: 5353, DPort: 161})
	if o.src != lanPool4.Addr() || o.dst != printer {
		t.Fatalf("translated %v→%v", o.src, o.dst)
	}
	ret, b := h.fromDevice(pkt4(printer, lanPool4.Addr(), seg{Proto: ProtoUDP, SPort: 161, DPort: o.sport}))
	if ret != bpftest.ActRedirect {
		t.Fatalf("reply: verdict %d", ret)
	}
	if r := parse(t, b); r.src != dst || r.dst != hostA || r.dport != 5353 {
		t.Errorf("reply %v→%v:%d, want %v→%v:5353", r.src, r.dst, r.dport, dst, hostA)
	}
	// Only the LAN's network is under the /96.
	if ret, _ := h.send(true, pkt6(hostA, in96(ulaPref96, remote1), seg{Proto: ProtoUDP, SPort: 1, DPort: 2})); ret != bpftest.ActShot {
		t.Errorf("internet address under the LAN's /96: verdict %d, want drop", ret)
	}
	// The internet is still the WAN pool's, under the well-known prefix.
	if w := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 5353, DPort: 53}); w.src != pool {
		t.Errorf("to the internet from %v, want the WAN pool %v", w.src, pool)
	}
}

// Without a WAN pool (no IPv4 on the WAN, or the upstream runs the NAT64),
// the LAN pool works alone under its own prefix, and nothing else is
// translated.
func TestLANPoolWithoutWANPool(t *testing.T) {
	p := lanPoolPlan(wellKnown, ulaPref96)
	p.Pool4 = netip.Addr{}
	p.WANIfindex = 0
	h := newHarness(t, p, 0)
	dst := in96(ulaPref96, printer)
	o := h.toLAN(t, hostA, dst, seg{Proto: ProtoICMP, ID: 77, Type: 128})
	if o.src != lanPool4.Addr() || o.icmpType != 8 {
		t.Fatalf("echo translated %v→%v type %d", o.src, o.dst, o.icmpType)
	}
	ret, b := h.fromDevice(pkt4(printer, lanPool4.Addr(), seg{Proto: ProtoICMP, ID: o.sport, Type: 0}))
	if ret != bpftest.ActRedirect {
		t.Fatalf("echo reply: verdict %d", ret)
	}
	if r := parse(t, b); r.icmpType != 129 || r.src != dst || r.sport != 77 {
		t.Errorf("echo reply type %d from %v id %d", r.icmpType, r.src, r.sport)
	}
	if ret, _ := h.send(true, pkt6(hostA, in96(wellKnown, remote1), seg{Proto: ProtoUDP, SPort: 1, DPort: 2})); ret != bpftest.ActNext {
		t.Errorf("64:ff9b:: without a WAN pool: verdict %d, want next (not ours)", ret)
	}
	if ret, _ := h.send(true, pkt6(hostA, in96(ulaPref96, remote1), seg{Proto: ProtoUDP, SPort: 1, DPort: 2})); ret != bpftest.ActShot {
		t.Errorf("internet address under the LAN's /96: verdict %d, want drop", ret)
	}
	for _, dst := range []netip.Addr{netip.AddrFrom4([4]byte{}), pool} {
		if ret, _ := h.run(false, pkt4(remote1, dst, seg{Proto: ProtoUDP, SPort: 1, DPort: 2})); ret != bpftest.ActNext {
			t.Errorf("IPv4 to %v on the WAN without a WAN pool: verdict %d, want next", dst, ret)
		}
	}
}

func TestLANPoolRefusesDevicesAndSpecialAddresses(t *testing.T) {
	p := lanPoolPlan(lanPref, lanPref)
	p.LANLegacy.Refused = []netip.Addr{gadget}
	h := newHarness(t, p, 0)
	for _, c := range []struct {
		name    string
		dst     netip.Addr
		counter string
	}{
		{"the owner keeps the gadget from IPv6-only hosts", gadget, "lan_legacy_refused"},
		{"the gizmo itself is reached over IPv6", lanPool4.Addr(), "destination_denied"},
		{"the network's own address", lanLegNet4.Addr(), "destination_denied"},
		{"the broadcast address: no amplifier", netip.MustParseAddr("203.0.113.255"), "destination_denied"},
	} {
		before := h.counter(c.counter)
		if ret, _ := h.send(true, pkt6(hostA, in96(lanPref, c.dst), seg{Proto: ProtoUDP, SPort: 9, DPort: 9})); ret != bpftest.ActShot {
			t.Errorf("%s: verdict %d, want drop", c.name, ret)
		}
		if h.counter(c.counter) != before+1 {
			t.Errorf("%s: %s not counted", c.name, c.counter)
		}
	}
	// Refusing a device ends the sessions it has.
	o := h.toLAN(t, hostA, in96(lanPref, printer), seg{Proto: ProtoUDP, SPort: 7000, DPort: 9100})
	p.LANLegacy.Refused = append(p.LANLegacy.Refused, printer)
	if err := h.dp.configure(p, flagNoFIB|flagFakeClock, h.now); err != nil {
		t.Fatal(err)
	}
	if ret, _ := h.fromDevice(pkt4(printer, lanPool4.Addr(), seg{Proto: ProtoUDP, SPort: 9100, DPort: o.sport})); ret == bpftest.ActRedirect {
		t.Error("a refused device's session still translates")
	}
	if ret, _ := h.send(true, pkt6(hostA, in96(lanPref, printer), seg{Proto: ProtoUDP, SPort: 7000, DPort: 9100})); ret != bpftest.ActShot {
		t.Errorf("to the refused printer: verdict %d, want drop", ret)
	}
}

// RFC 6146 §3.5.1: a host's port has one mapping per pool; each pool's
// ports come from its own range, and a remote of one pool is never let in
// through the other.
func TestRFC6146OneBindingPerPool(t *testing.T) {
	p := lanPoolPlan(lanPref, lanPref)
	h := newHarness(t, p, 0)
	w := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 4444, DPort: 53})
	l := h.toLAN(t, hostA, in96(lanPref, printer), seg{Proto: ProtoUDP, SPort: 4444, DPort: 53})
	if w.src != pool || l.src != lanPool4.Addr() {
		t.Fatalf("sources %v and %v", w.src, l.src)
	}
	if w.sport < p.PortsHigh.Min && w.sport > DefaultPortsHigh.Max || l.sport < DefaultLANPorts.Min {
		t.Errorf("pool ports %d (WAN) and %d (LAN) outside their ranges", w.sport, l.sport)
	}
	// Endpoint-independent within a pool: the gadget gets the printer's
	// mapping.
	if g := h.toLAN(t, hostA, in96(lanPref, gadget), seg{Proto: ProtoUDP, SPort: 4444, DPort: 53}); g.sport != l.sport {
		t.Errorf("LAN pool mapping depends on the device: %d and %d", l.sport, g.sport)
	}
	// A spoofed WAN packet from the printer's address to the WAN binding
	// is filtered: the printer is a remote of the LAN pool only.
	if ret, _ := h.run(false, pkt4(printer, pool, seg{Proto: ProtoUDP, SPort: 53, DPort: w.sport})); ret != bpftest.ActShot {
		t.Errorf("printer's address on the WAN: verdict %d, want filtered", ret)
	}
	if h.counter("filtered") != 1 {
		t.Errorf("filtered = %d", h.counter("filtered"))
	}
	res, err := h.dp.reap(h.now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sessions != 3 || res.Bindings != 2 {
		t.Errorf("%d sessions, %d bindings, want 3 and one per pool", res.Sessions, res.Bindings)
	}
	// Each pool's state expires on its own: UDP after 5 minutes, then the
	// bindings after their grace.
	h.advance(uint64(UDPTimeout + bindingGrace))
	if res, err = h.dp.reap(h.now); err != nil || res.Expired != 3 || res.BindingsExpired != 2 {
		t.Errorf("reap: %+v %v, want 3 sessions and 2 bindings expired", res, err)
	}
}

// RFC 7915 §4.2 and §5.2: ICMP errors through the LAN pool, both ways, and
// the MTU of the LAN for both sides.
func TestRFC7915ICMPErrorsThroughTheLANPool(t *testing.T) {
	p := lanPoolPlan(wellKnown, ulaPref96)
	p.LANMTU = 1400
	h := newHarness(t, p, 0)
	dst := in96(ulaPref96, printer)
	sent := pkt6(hostA, dst, seg{Proto: ProtoUDP, SPort: 3000, DPort: 9})
	ret, b := h.send(true, sent)
	if ret != bpftest.ActRedirect {
		t.Fatalf("verdict %d", ret)
	}
	o := parse(t, b)

	// The printer's port unreachable, about the translated packet.
	unreach := seg{Proto: ProtoICMP, Type: 3, Code: 3, Payload: b}
	ret, e := h.fromDevice(pkt4(printer, lanPool4.Addr(), unreach))
	if ret != bpftest.ActRedirect {
		t.Fatalf("ICMPv4 error: verdict %d (counters %v)", ret, mustCounters(t, h))
	}
	r := parse(t, e)
	if r.proto != 58 || r.icmpType != 1 || r.icmpCode != 4 || r.src != dst || r.dst != hostA {
		t.Errorf("translated error: proto %d type %d code %d %v→%v", r.proto, r.icmpType, r.icmpCode, r.src, r.dst)
	}
	if in := r.l4[8:]; len(in) < 40 || netip.AddrFrom16([16]byte(in[8:24])) != hostA || netip.AddrFrom16([16]byte(in[24:40])) != dst {
		t.Errorf("quoted packet not the host's own")
	}

	// The host's port unreachable, about a packet from the printer.
	back := pkt4(printer, lanPool4.Addr(), seg{Proto: ProtoUDP, SPort: 9, DPort: o.sport})
	ret, b = h.fromDevice(back)
	if ret != bpftest.ActRedirect {
		t.Fatalf("reply: verdict %d", ret)
	}
	ret, e = h.send(true, pkt6(hostA, dst, seg{Proto: ProtoICMP, Type: 1, Code: 4, Payload: b}))
	if ret != bpftest.ActRedirect {
		t.Fatalf("ICMPv6 error: verdict %d (counters %v)", ret, mustCounters(t, h))
	}
	r = parse(t, e)
	if r.proto != 1 || r.icmpType != 3 || r.icmpCode != 3 || r.src != lanPool4.Addr() || r.dst != printer {
		t.Errorf("translated error: proto %d type %d code %d %v→%v", r.proto, r.icmpType, r.icmpCode, r.src, r.dst)
	}
	if q := r.l4[8:]; len(q) < 20 || netip.AddrFrom4([4]byte(q[12:16])) != printer || netip.AddrFrom4([4]byte(q[16:20])) != lanPool4.Addr() {
		t.Errorf("quoted packet not the printer's")
	}

	// RFC 7915 §5: the IPv4 side of the LAN pool is the LAN.
	big := pkt6(hostA, dst, seg{Proto: ProtoUDP, SPort: 3001, DPort: 9, Payload: make([]byte, 1380)})
	ret, e = h.send(true, big)
	if ret != bpftest.ActRedirect {
		t.Fatalf("too big: verdict %d", ret)
	}
	if r := parse(t, e); r.icmpType != 2 || r.info != 1420 {
		t.Errorf("Packet Too Big type %d mtu %d, want 2 and the LAN's 1400 + 20", r.icmpType, r.info)
	}
	// An ICMPv4 error of ours to the device comes from the LAN pool.
	ttl1 := pkt4(printer, lanPool4.Addr(), seg{Proto: ProtoUDP, SPort: 9, DPort: o.sport})
	ttl1[8] = 1
	binary.BigEndian.PutUint16(ttl1[10:], 0)
	binary.BigEndian.PutUint16(ttl1[10:], bpftest.Checksum(ttl1[:20], 0))
	ret, e = h.fromDevice(ttl1)
	if ret != bpftest.ActRedirect {
		t.Fatalf("TTL 1: verdict %d", ret)
	}
	if r := parse(t, e); r.icmpType != 11 || r.src != lanPool4.Addr() || r.dst != printer {
		t.Errorf("time exceeded type %d %v→%v, want from the LAN pool", r.icmpType, r.src, r.dst)
	}
}

// A new LAN pool (the LAN's IPv4 network moved) ends its sessions and
// bindings; the WAN pool's stay.
func TestLANPoolChangeFlushesOnlyItsState(t *testing.T) {
	p := lanPoolPlan(lanPref, lanPref)
	h := newHarness(t, p, 0)
	h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 1, DPort: 2})
	h.toLAN(t, hostA, in96(lanPref, printer), seg{Proto: ProtoUDP, SPort: 1, DPort: 2})
	p.LANLegacy.Addr4 = netip.MustParsePrefix("192.168.64.1/24")
	if err := h.dp.configure(p, flagNoFIB|flagFakeClock, h.now); err != nil {
		t.Fatal(err)
	}
	var lan, wan int
	if err := scanMap(h.dp.objs.Nat64Sess, func(k nat64SessKey, _ nat64SessVal) {
		if k.Pool == poolLAN {
			lan++
		} else {
			wan++
		}
	}); err != nil {
		t.Fatal(err)
	}
	if lan != 0 || wan != 1 {
		t.Errorf("after the LAN pool moved: %d LAN and %d WAN sessions, want 0 and 1", lan, wan)
	}
	var b4 []nat64Bib4Key
	if err := scanMap(h.dp.objs.Nat64Bib4, func(k nat64Bib4Key, _ nat64Bib4Val) { b4 = append(b4, k) }); err != nil {
		t.Fatal(err)
	}
	if len(b4) != 1 || b4[0].Pool != poolWAN {
		t.Errorf("bindings left %+v, want the WAN pool's", b4)
	}
	o := h.toLAN(t, hostA, in96(lanPref, netip.MustParseAddr("192.168.64.20")), seg{Proto: ProtoUDP, SPort: 1, DPort: 2})
	if o.src != p.LANLegacy.Addr4.Addr() {
		t.Errorf("source %v, want the new LAN pool", o.src)
	}
}

func TestLANPoolPlanChecks(t *testing.T) {
	ok := lanPoolPlan(wellKnown, ulaPref96)
	if _, err := ok.toConfig(DefaultMaxSessions); err != nil {
		t.Fatalf("a good plan: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(*Plan)
	}{
		{"the LAN pool's ports overlap the WAN pool's (one quota slot per port)", func(p *Plan) { p.LANLegacy.Ports = PortRange{30000, 40000} }},
		{"the LAN pool is the WAN pool's address", func(p *Plan) { p.LANLegacy.Addr4 = netip.PrefixFrom(pool, 24) }},
		{"RFC 6052 §2.2: a prefix of its own is a /96 beside the PREF64", func(p *Plan) { p.LANLegacy.Prefix = netip.MustParsePrefix("fd00:1:2::/64") }},
		{"RFC 6052 §2.2: bits 64-71 are zero", func(p *Plan) { p.LANLegacy.Prefix = netip.MustParsePrefix("fd00:1:2:64:100::/96") }},
		{"the /96 is not inside the PREF64", func(p *Plan) { p.Pref64 = netip.MustParsePrefix("fd00:1:2::/48") }},
		{"a network with hosts besides its own and broadcast addresses", func(p *Plan) { p.LANLegacy.Addr4 = netip.MustParsePrefix("203.0.113.129/31") }},
		{"the gizmo's address is not the network's", func(p *Plan) { p.LANLegacy.Addr4 = netip.MustParsePrefix("203.0.113.128/25") }},
		{"refused devices are IPv4", func(p *Plan) { p.LANLegacy.Refused = []netip.Addr{hostA} }},
		{"refused devices are bounded", func(p *Plan) { p.LANLegacy.Refused = make([]netip.Addr, MaxLANRefused+1) }},
	} {
		p := ok
		p.LANLegacy.Refused = nil
		c.edit(&p)
		if _, err := p.toConfig(DefaultMaxSessions); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	// The LAN pool alone needs no WAN interface.
	alone := ok
	alone.Pool4, alone.WANIfindex = netip.Addr{}, 0
	c, err := alone.toConfig(DefaultMaxSessions)
	if err != nil {
		t.Fatalf("LAN pool alone: %v", err)
	}
	if c.Pool4 != 0 || c.Flags&flagLAN96 != 0 || c.Pref64Len != 96 || netip.AddrFrom16(c.Pref64) != ulaPref96.Addr() {
		t.Errorf("LAN pool alone: pool %x flags %#x prefix %v/%d, want its /96 as the only prefix", c.Pool4, c.Flags, netip.AddrFrom16(c.Pref64), c.Pref64Len)
	}
}
