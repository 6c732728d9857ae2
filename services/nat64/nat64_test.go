package nat64

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

var (
	pool    = netip.MustParseAddr("192.0.2.100")
	hostA   = netip.MustParseAddr("2001:db8:1000::a")
	hostB   = netip.MustParseAddr("2001:db8:1000::b")
	router6 = netip.MustParseAddr("2001:db8:1000::1")
	remote1 = netip.MustParseAddr("198.51.100.80")
	remote2 = netip.MustParseAddr("203.0.113.10")
	spoofed = netip.MustParseAddr("2001:db8:9999::1")
)

func testPlan() Plan {
	return Plan{
		Pool4:       pool,
		Pref64:      netip.MustParsePrefix("64:ff9b::/96"),
		LANPrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000::/64")},
		Router6:     router6,
		LANIfindex:  1, WANIfindex: 1,
		LANMTU: 1500, WANMTU: 1500,
	}
}

// syn6 maps an IPv4 address into the plan's prefix.
func to6(p Plan, a netip.Addr) netip.Addr {
	b := p.Pref64.Addr().As16()
	a4 := a.As4()
	copy(b[12:], a4[:])
	return netip.AddrFrom16(b)
}

// out sends an IPv6 packet from the LAN and expects an IPv4 packet out.
func (h *harness) out(t *testing.T, p Plan, from netip.Addr, to netip.Addr, s seg) parsed {
	t.Helper()
	ret, b := h.send(true, pkt6(from, to6(p, to), s))
	if ret != bpftest.ActRedirect {
		t.Fatalf("6→4 %v→%v %+v: verdict %d", from, to, s, ret)
	}
	return parse(t, b)
}

func TestRFC6146EndpointIndependentMappingAddressDependentFiltering(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	a := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 40000, DPort: 53})
	if a.src != pool || a.dst != remote1 {
		t.Fatalf("translated %v→%v, want %v→%v", a.src, a.dst, pool, remote1)
	}
	// RFC 6146 §3.5.1: the same host port gets the same pool port for
	// any destination.
	b := h.out(t, p, hostA, remote2, seg{Proto: ProtoUDP, SPort: 40000, DPort: 123})
	if b.sport != a.sport {
		t.Errorf("mapping depends on the destination: pool ports %d and %d", a.sport, b.sport)
	}
	// Replies: from the remote and port the host sent to, and — address-
	// dependent filtering — from another port of the same remote.
	for _, rport := range []uint16{53, 5353} {
		ret, out := h.send(false, pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: rport, DPort: a.sport}))
		if ret != bpftest.ActRedirect {
			t.Fatalf("reply from %v:%d: verdict %d", remote1, rport, ret)
		}
		r := parse(t, out)
		if r.dst != hostA || r.dport != 40000 || r.src != to6(p, remote1) || r.sport != rport {
			t.Errorf("reply translated to %v:%d from %v:%d", r.dst, r.dport, r.src, r.sport)
		}
	}
	// A remote the host never talked to is filtered.
	third := netip.MustParseAddr("203.0.113.99")
	if ret, _ := h.send(false, pkt4(third, pool, seg{Proto: ProtoUDP, SPort: 53, DPort: a.sport})); ret != bpftest.ActShot {
		t.Errorf("unsolicited packet from %v: verdict %d, want drop", third, ret)
	}
	if got := h.counter("filtered"); got != 1 {
		t.Errorf("filtered = %d, want 1", got)
	}
}

func TestRFC6146PortRangeAndParity(t *testing.T) {
	p := testPlan()
	p.PortsLow = PortRange{100, 200}
	p.PortsHigh = PortRange{20000, 20009}
	h := newHarness(t, p, 0)
	for i, c := range []struct {
		sport  uint16
		lo, hi uint16
	}{
		{sport: 150, lo: 100, hi: 200},       // preserved
		{sport: 53, lo: 100, hi: 200},        // low range, §3.5.1.1
		{sport: 40001, lo: 20000, hi: 20009}, // high range, odd
		{sport: 40002, lo: 20000, hi: 20009}, // high range, even
		{sport: 40003, lo: 20000, hi: 20009},
	} {
		o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: c.sport, DPort: 9})
		if o.sport < c.lo || o.sport > c.hi {
			t.Errorf("#%d: source port %d got pool port %d outside %d-%d", i, c.sport, o.sport, c.lo, c.hi)
		}
		if o.sport%2 != c.sport%2 {
			t.Errorf("#%d: UDP parity lost: %d → %d (RFC 6146 §3.5.1.1)", i, c.sport, o.sport)
		}
		if c.sport == 150 && o.sport != 150 {
			t.Errorf("free port %d not preserved: %d", c.sport, o.sport)
		}
	}
}

func TestPortsExhaustedIsCountedDrop(t *testing.T) {
	p := testPlan()
	p.PortsHigh = PortRange{20000, 20001}
	h := newHarness(t, p, 0)
	h.out(t, p, hostA, remote1, seg{Proto: ProtoTCP, SPort: 40000, DPort: 80, Flags: 2})
	h.out(t, p, hostA, remote1, seg{Proto: ProtoTCP, SPort: 40001, DPort: 80, Flags: 2})
	if ret, _ := h.send(true, pkt6(hostA, to6(p, remote1), seg{Proto: ProtoTCP, SPort: 40002, DPort: 80, Flags: 2})); ret != bpftest.ActShot {
		t.Fatalf("third binding with two ports: verdict %d", ret)
	}
	if got := h.counter("ports_exhausted"); got != 1 {
		t.Errorf("ports_exhausted = %d", got)
	}
}

func sessionState(t *testing.T, h *harness, host netip.Addr, sport uint16, r netip.Addr, rport uint16) (nat64SessVal, bool) {
	t.Helper()
	k := nat64SessKey{Addr6: host.As16(), Addr4: be32(r), Port6: be16(sport), Port4: be16(rport), Proto: ProtoTCP}
	var v nat64SessVal
	err := h.dp.objs.Nat64Sess.Lookup(&k, &v)
	return v, err == nil
}

func TestRFC6146TCPStateMachine(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	const syn, ack, fin, rst = 0x02, 0x10, 0x01, 0x04
	// §3.5.2.2: only a SYN opens a session from the IPv6 side.
	if ret, _ := h.send(true, pkt6(hostA, to6(p, remote1), seg{Proto: ProtoTCP, SPort: 40000, DPort: 80, Flags: ack})); ret != bpftest.ActShot {
		t.Errorf("ACK without session: verdict %d", ret)
	}
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoTCP, SPort: 40000, DPort: 80, Flags: syn})
	in := func(flags uint8) {
		t.Helper()
		if ret, _ := h.send(false, pkt4(remote1, pool, seg{Proto: ProtoTCP, SPort: 80, DPort: o.sport, Flags: flags})); ret != bpftest.ActRedirect {
			t.Fatalf("4→6 flags %#x: verdict %d", flags, ret)
		}
	}
	out := func(flags uint8) {
		h.out(t, p, hostA, remote1, seg{Proto: ProtoTCP, SPort: 40000, DPort: 80, Flags: flags})
	}
	state := func(want uint8, rule string) {
		t.Helper()
		v, ok := sessionState(t, h, hostA, 40000, remote1, 80)
		if !ok || v.State != want {
			t.Errorf("%s: state %d (exists %v), want %d", rule, v.State, ok, want)
		}
	}
	state(tcpV6Init, "V6 SYN: CLOSED → V6 INIT")
	in(syn | ack)
	state(tcpEstablished, "V4 SYN: V6 INIT → ESTABLISHED")
	out(ack | fin)
	state(tcpV6FinRcv, "V6 FIN: ESTABLISHED → V6 FIN RCV")
	in(ack | fin)
	state(tcpV4FinV6FinRcv, "V4 FIN: V6 FIN RCV → V4 FIN + V6 FIN RCV")

	// A second connection: RST moves it to TRANS, data brings it back.
	o2 := h.out(t, p, hostA, remote1, seg{Proto: ProtoTCP, SPort: 40010, DPort: 80, Flags: syn})
	_ = o2
	if ret, _ := h.send(false, pkt4(remote1, pool, seg{Proto: ProtoTCP, SPort: 80, DPort: o2.sport, Flags: syn | ack})); ret != bpftest.ActRedirect {
		t.Fatal(ret)
	}
	h.out(t, p, hostA, remote1, seg{Proto: ProtoTCP, SPort: 40010, DPort: 80, Flags: rst})
	if v, _ := sessionState(t, h, hostA, 40010, remote1, 80); v.State != tcpTrans {
		t.Errorf("RST: state %d, want TRANS", v.State)
	}
	h.out(t, p, hostA, remote1, seg{Proto: ProtoTCP, SPort: 40010, DPort: 80, Flags: ack})
	if v, _ := sessionState(t, h, hostA, 40010, remote1, 80); v.State != tcpEstablished {
		t.Errorf("packet in TRANS: state %d, want ESTABLISHED", v.State)
	}

	// Unsolicited inbound SYN to a port without binding: to the stack.
	if ret, _ := h.send(false, pkt4(remote2, pool, seg{Proto: ProtoTCP, SPort: 80, DPort: 2999, Flags: syn})); ret != bpftest.ActOK {
		t.Errorf("inbound SYN without binding: verdict %d, want to stack", ret)
	}
	// To a binding, from a remote it never talked to: dropped. Address-
	// dependent filtering lets a NAT64 drop such a SYN instead of holding
	// it for 6 s (RFC 6146 §3.5.2.2); the datapath chooses to drop, as
	// docs/conformance.md explains.
	if ret, _ := h.send(false, pkt4(remote2, pool, seg{Proto: ProtoTCP, SPort: 80, DPort: o.sport, Flags: syn})); ret != bpftest.ActShot {
		t.Errorf("inbound SYN from another remote: verdict %d, want drop", ret)
	}
}

func TestRFC6146SessionLifetimes(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	sec := uint64(time.Second)
	h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 40000, DPort: 53})
	h.out(t, p, hostA, remote1, seg{Proto: ProtoICMP, ID: 7, Type: 128})
	h.out(t, p, hostA, remote1, seg{Proto: ProtoTCP, SPort: 40001, DPort: 80, Flags: 2}) // V6 INIT
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoTCP, SPort: 40002, DPort: 80, Flags: 2})
	if ret, _ := h.send(false, pkt4(remote1, pool, seg{Proto: ProtoTCP, SPort: 80, DPort: o.sport, Flags: 0x12})); ret != bpftest.ActRedirect {
		t.Fatal(ret)
	}
	reap := func(wantSessions int, rule string) {
		t.Helper()
		res, err := h.dp.reap(h.now)
		if err != nil {
			t.Fatal(err)
		}
		if res.Sessions != wantSessions {
			t.Errorf("%s: %d sessions live, want %d", rule, res.Sessions, wantSessions)
		}
	}
	reap(4, "all fresh")
	h.advance(59 * sec)
	reap(4, "ICMP at 59 s")
	h.advance(2 * sec)
	reap(3, "ICMP_DEFAULT 60 s (RFC 6146 §4)")
	h.advance(4*60*sec - 61*sec + sec) // 4 min + 1 s since creation
	reap(2, "TCP_TRANS 4 min for V6 INIT")
	h.advance(60 * sec) // 5 min 1 s
	reap(1, "UDP_MIN 5 min")
	h.advance(uint64(TCPEstablishedTimeout) - 5*60*sec - 2*sec)
	reap(1, "ESTABLISHED before 2 h 4 min")
	h.advance(3 * sec)
	reap(0, "TCP_EST 2 h 4 min")

	// Bindings without sessions go after the grace period, and the
	// per-host live count goes back to zero.
	h.advance(uint64(bindingGrace) + sec)
	res, err := h.dp.reap(h.now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bindings-res.BindingsExpired != 0 {
		t.Errorf("%d bindings left of %d", res.Bindings-res.BindingsExpired, res.Bindings)
	}
	hs, err := h.dp.hosts()
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].LiveSessions != 0 || hs[0].PacketsOut != 4 || hs[0].PacketsIn != 1 {
		t.Errorf("host stats %+v", hs)
	}
}

func TestRFC6146HairpinningDynamic(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	// B talks to the pool address first (as after learning A's mapping
	// through a rendezvous), which opens B's filter for it.
	b := h.out(t, p, hostB, remote1, seg{Proto: ProtoUDP, SPort: 5000, DPort: 3478})
	// A sends to B's public transport address: 64:ff9b::192.0.2.100.
	if _, out := h.send(true, pkt6(hostA, to6(p, pool), seg{Proto: ProtoUDP, SPort: 6000, DPort: b.sport})); len(out) > 0 && out[0]>>4 == 6 {
		t.Fatalf("hairpin before B's filter allows the pool address should be filtered: %x", out[:8])
	}
	// B sends to A's public address; now both directions pass.
	var aPort uint16
	{
		k := nat64Bib6Key{Addr: hostA.As16(), Port: be16(6000), Proto: ProtoUDP}
		var v nat64Bib6Val
		if err := h.dp.objs.Nat64Bib6.Lookup(&k, &v); err != nil {
			t.Fatalf("A's binding: %v", err)
		}
		aPort = port16(v.Port4)
	}
	ret, out := h.send(true, pkt6(hostB, to6(p, pool), seg{Proto: ProtoUDP, SPort: 5000, DPort: aPort}))
	if ret != bpftest.ActRedirect {
		t.Fatalf("B→A hairpin: verdict %d", ret)
	}
	r := parse(t, out)
	// RFC 6146 §3.8: A sees B as its pool address and pool port.
	if r.dst != hostA || r.dport != 6000 || r.src != to6(p, pool) || r.sport != b.sport {
		t.Errorf("hairpinned to %v:%d from %v:%d", r.dst, r.dport, r.src, r.sport)
	}
	if r.ttl != 63 {
		t.Errorf("hop limit %d after hairpin, want 63 (one router)", r.ttl)
	}
	if h.counter("hairpinned") != 2 {
		t.Errorf("hairpinned = %d", h.counter("hairpinned"))
	}
	// To a pool port without binding: translated once already, so not
	// handed to the stack (which would see its own address as the source
	// and drop it as a martian) but dropped and counted here.
	before := h.counter("no_session")
	if ret, _ := h.send(true, pkt6(hostA, to6(p, pool), seg{Proto: ProtoUDP, SPort: 6001, DPort: 2999})); ret != bpftest.ActShot {
		t.Errorf("hairpin to a pool port without binding: verdict %d, want drop", ret)
	}
	if h.counter("no_session") != before+1 || h.counter("to_stack") != 0 {
		t.Errorf("no_session %d (was %d), to_stack %d", h.counter("no_session"), before, h.counter("to_stack"))
	}
}

func TestRFC6052WellKnownPrefixNeverNonGlobal(t *testing.T) {
	p := testPlan()
	p.Deny4 = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("198.51.100.0/24")}
	h := newHarness(t, p, 0)
	for _, dst := range []string{"10.1.2.3", "198.51.100.80"} {
		if ret, _ := h.send(true, pkt6(hostA, to6(p, netip.MustParseAddr(dst)), seg{Proto: ProtoUDP, SPort: 1, DPort: 2})); ret != bpftest.ActShot {
			t.Errorf("%s: verdict %d, want drop", dst, ret)
		}
	}
	if got := h.counter("destination_denied"); got != 2 {
		t.Errorf("destination_denied = %d", got)
	}
	h.out(t, p, hostA, remote2, seg{Proto: ProtoUDP, SPort: 1, DPort: 2})
	// The pool address itself is the hairpin target, never denied.
	p2 := p
	p2.Deny4 = append(p2.Deny4, netip.MustParsePrefix("192.0.2.0/24"))
	if err := h.dp.configure(p2, flagNoFIB|flagFakeClock, h.now); err != nil {
		t.Fatal(err)
	}
	h.send(true, pkt6(hostA, to6(p, pool), seg{Proto: ProtoUDP, SPort: 1, DPort: 2}))
	if got := h.counter("destination_denied"); got != 2 {
		t.Errorf("pool address denied: destination_denied = %d", got)
	}
}

func TestPrefixLengthsRFC6052(t *testing.T) {
	for _, pfx := range []string{"2001:db8:64::/32", "2001:db8:6400::/40", "2001:db8:64::/48", "2001:db8:64::/56", "2001:db8:64::/64", "2001:db8:64::/96"} {
		p := testPlan()
		p.Pref64 = netip.MustParsePrefix(pfx)
		h := newHarness(t, p, 0)
		// RFC 6052 §2.4 example for 192.0.2.33 in each length.
		embedded := embedRef(p.Pref64, remote2)
		ret, b := h.send(true, pkt6(hostA, embedded, seg{Proto: ProtoUDP, SPort: 1, DPort: 2}))
		if ret != bpftest.ActRedirect {
			t.Fatalf("%s: verdict %d", pfx, ret)
		}
		o := parse(t, b)
		if o.dst != remote2 {
			t.Errorf("%s: %v extracted as %v", pfx, embedded, o.dst)
		}
		ret, b = h.send(false, pkt4(remote2, pool, seg{Proto: ProtoUDP, SPort: 2, DPort: o.sport}))
		if ret != bpftest.ActRedirect {
			t.Fatalf("%s: reply verdict %d", pfx, ret)
		}
		if r := parse(t, b); r.src != embedded {
			t.Errorf("%s: reply source %v, want %v", pfx, r.src, embedded)
		}
	}
}

// embedRef is RFC 6052 §2.2 written out in Go, independent of the C.
func embedRef(p netip.Prefix, a netip.Addr) netip.Addr {
	b := p.Addr().As16()
	v := a.As4()
	pos := map[int][]int{32: {4, 5, 6, 7}, 40: {5, 6, 7, 9}, 48: {6, 7, 9, 10}, 56: {7, 9, 10, 11}, 64: {9, 10, 11, 12}, 96: {12, 13, 14, 15}}[p.Bits()]
	for i, j := range pos {
		b[j] = v[i]
	}
	return netip.AddrFrom16(b)
}

func TestOnlyLANSources(t *testing.T) {
	// A LAN of /64s is matched by compare, other prefix lengths by the
	// LPM trie; both must refuse an outside source.
	for _, lan := range []string{"2001:db8:1000::/64", "2001:db8:1000::/56"} {
		p := testPlan()
		p.LANPrefixes = []netip.Prefix{netip.MustParsePrefix(lan), netip.MustParsePrefix("fd00::/64")}
		h := newHarness(t, p, 0)
		if ret, _ := h.send(true, pkt6(spoofed, to6(p, remote1), seg{Proto: ProtoUDP, SPort: 1, DPort: 2})); ret != bpftest.ActShot {
			t.Errorf("%s: spoofed source: verdict %d", lan, ret)
		}
		if got := h.counter("source_not_lan"); got != 1 {
			t.Errorf("%s: source_not_lan = %d", lan, got)
		}
		h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 1, DPort: 2})
		h.out(t, p, netip.MustParseAddr("fd00::1"), remote1, seg{Proto: ProtoUDP, SPort: 1, DPort: 2})
	}
	p := testPlan()
	h := newHarness(t, p, 0)
	// Not for the prefix: untouched, on to the next program (and the stack).
	if ret, _ := h.send(true, pkt6(hostA, netip.MustParseAddr("2001:db8:ffff::6"), seg{Proto: ProtoUDP, SPort: 1, DPort: 2})); ret != bpftest.ActNext {
		t.Errorf("native IPv6: verdict %d, want TC_ACT_UNSPEC", ret)
	}
}

func TestRFC7915HopLimitExpiry(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	in := pkt6(hostA, to6(p, remote1), seg{Proto: ProtoUDP, SPort: 1, DPort: 33434})
	in[7] = 1
	ret, out := h.send(true, in)
	if ret != bpftest.ActRedirect {
		t.Fatalf("verdict %d", ret)
	}
	r := parse(t, out)
	if r.proto != 58 || r.icmpType != 3 || r.src != router6 || r.dst != hostA {
		t.Errorf("got proto %d type %d %v→%v, want ICMPv6 time exceeded from %v", r.proto, r.icmpType, r.src, r.dst, router6)
	}
	// 4→6: TTL 1 toward the LAN host.
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 2, DPort: 53})
	in4 := pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 53, DPort: o.sport})
	in4[8] = 1
	binary.BigEndian.PutUint16(in4[10:], 0)
	binary.BigEndian.PutUint16(in4[10:], bpftest.Checksum(in4[:20], 0))
	ret, out = h.send(false, in4)
	if ret != bpftest.ActRedirect {
		t.Fatalf("verdict %d", ret)
	}
	r = parse(t, out)
	if r.proto != 1 || r.icmpType != 11 || r.src != pool || r.dst != remote1 {
		t.Errorf("got proto %d type %d %v→%v, want ICMP time exceeded from the pool", r.proto, r.icmpType, r.src, r.dst)
	}
	if h.counter("ttl_expired") != 2 {
		t.Errorf("ttl_expired = %d", h.counter("ttl_expired"))
	}
}

func TestRFC7915PacketTooBig(t *testing.T) {
	p := testPlan()
	p.WANMTU = 1400
	p.LANMTU = 1400
	h := newHarness(t, p, 0)
	big := make([]byte, 1400)
	ret, out := h.send(true, pkt6(hostA, to6(p, remote1), seg{Proto: ProtoUDP, SPort: 1, DPort: 2, Payload: big}))
	if ret != bpftest.ActRedirect {
		t.Fatalf("verdict %d", ret)
	}
	r := parse(t, out)
	if r.icmpType != 2 || r.info != 1420 || len(out) != 1280 {
		t.Errorf("PTB type %d mtu %d length %d, want type 2 mtu 1420 length 1280", r.icmpType, r.info, len(out))
	}
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 3, DPort: 4})
	ret, out = h.send(false, pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 4, DPort: o.sport, Payload: big[:1370]}))
	if ret != bpftest.ActRedirect {
		t.Fatalf("verdict %d", ret)
	}
	r = parse(t, out)
	if r.icmpType != 3 || r.icmpCode != 4 || r.info&0xffff != 1380 || len(out) != 576 {
		t.Errorf("frag needed type %d code %d mtu %d length %d", r.icmpType, r.icmpCode, r.info&0xffff, len(out))
	}
}

func TestRFC7915UDPZeroChecksumComputed(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 5, DPort: 6})
	for _, n := range []int{0, 1, 511, 512, 513, 1400} {
		pl := make([]byte, n)
		for i := range pl {
			pl[i] = byte(i*7 + 3)
		}
		ret, out := h.send(false, pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 6, DPort: o.sport, Payload: pl, NoChecksum: true}))
		if ret != bpftest.ActRedirect {
			t.Fatalf("%d bytes: verdict %d", n, ret)
		}
		r := parse(t, out) // verifies the computed checksum
		if binary.BigEndian.Uint16(r.l4[6:]) == 0 {
			t.Errorf("%d bytes: checksum still zero", n)
		}
	}
}

func TestLimitsAreCountedDrops(t *testing.T) {
	p := testPlan()
	p.MaxSessionsPerHost = 10
	// The limits of the host's MAC and /64 are not this test's: above
	// the table.
	p.MaxSessionsPerMAC = 1000
	p.MaxSessionsPer64 = 1000
	h := newHarness(t, p, 64)
	// One host flooding new flows stops at its limit.
	for i := range 20 {
		h.send(true, pkt6(hostA, to6(p, remote1), seg{Proto: ProtoUDP, SPort: uint16(10000 + i), DPort: 53}))
	}
	if got := h.counter("host_limit_refused"); got != 10 {
		t.Errorf("host_limit_refused = %d, want 10", got)
	}
	// Other hosts fill the 64-entry table; the rest is counted.
	for i := range 80 {
		src := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, byte(i)})
		h.send(true, pkt6(src, to6(p, remote1), seg{Proto: ProtoUDP, SPort: 10000, DPort: 53}))
	}
	if got := h.counter("table_full"); got != 90-64 {
		t.Errorf("table_full = %d, want %d", got, 90-64)
	}
}

func TestMalformedInputIsCountedDrop(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	dst := to6(p, remote1)
	good := pkt6(hostA, dst, seg{Proto: ProtoUDP, SPort: 1, DPort: 2, Payload: []byte("x")})
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 1, DPort: 2})
	good4 := pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 2, DPort: o.sport})

	dstopts := func(n int) []byte {
		// n destination-options headers of 8 bytes (PadN), then UDP.
		u := seg{Proto: ProtoUDP, SPort: 1, DPort: 2}.Bytes(hostA, dst)
		var b []byte
		for i := range n {
			nh := byte(60)
			if i == n-1 {
				nh = ProtoUDP
			}
			b = append(b, nh, 0, 1, 4, 0, 0, 0, 0)
		}
		return ip6(hostA, dst, 64, 60, append(b, u...))
	}
	routing := ip6(hostA, dst, 64, 43, append([]byte{ProtoUDP, 0, 0, 1, 0, 0, 0, 0}, seg{Proto: ProtoUDP, SPort: 1, DPort: 2}.Bytes(hostA, dst)...))
	// An ICMPv6 error quoting an ICMPv6 error.
	inner := pkt6(dst, hostA, seg{Proto: ProtoICMP, Type: 1, Payload: make([]byte, 40)})
	errOfErr := pkt6(hostA, dst, seg{Proto: ProtoICMP, Type: 1, Code: 4, Payload: inner})

	for _, c := range []struct {
		name    string
		fromLAN bool
		pkt     []byte
		counter string
	}{
		{"payload length beyond the packet", true, append(append([]byte{}, good[:4]...), append([]byte{0x10, 0}, good[6:]...)...), "malformed"},
		{"UDP header cut", true, ip6(hostA, dst, 64, ProtoUDP, []byte{0, 1, 0}), "malformed"},
		{"five extension headers", true, dstopts(5), "unsupported"},
		{"routing header with segments left", true, routing, "unsupported"},
		{"ICMPv6 error about an ICMPv6 error", true, errOfErr, "unsupported"},
		{"IHL 4", false, append([]byte{0x44}, good4[1:]...), "malformed"},
		{"IHL 15 in a short packet", false, append([]byte{0x4f}, good4[1:]...), "malformed"},
		{"total length beyond the packet", false, append(append([]byte{}, good4[:2]...), append([]byte{0x05, 0xdc}, good4[4:]...)...), "malformed"},
		{"bad IPv4 header checksum", false, append(append([]byte{}, good4[:10]...), append([]byte{0xde, 0xad}, good4[12:]...)...), "malformed"},
	} {
		before := h.counter(c.counter)
		ret, _ := h.send(c.fromLAN, c.pkt)
		if ret == bpftest.ActRedirect {
			t.Errorf("%s: translated", c.name)
		}
		if c.counter != "" && h.counter(c.counter) != before+1 {
			t.Errorf("%s: %s not counted (verdict %d)", c.name, c.counter, ret)
		}
	}
	// Chains the translator may skip: four headers are fine.
	if ret, _ := h.send(true, dstopts(3)); ret != bpftest.ActRedirect {
		t.Errorf("three destination options headers: verdict %d", ret)
	}
	// A zero-length UDP datagram is valid and translated.
	h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 9, DPort: 9})
}

func TestPoolChangeFlushesDynamicState(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 1, DPort: 2})
	st := StaticBinding{Proto: ProtoUDP, Host: netip.AddrPortFrom(hostB, 7), PoolPort: 7}
	if err := h.dp.addStatic(st); err != nil {
		t.Fatal(err)
	}
	p.Pool4 = netip.MustParseAddr("192.0.2.101")
	if err := h.dp.configure(p, flagNoFIB|flagFakeClock, h.now); err != nil {
		t.Fatal(err)
	}
	res, err := h.dp.reap(h.now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sessions != 0 || res.Bindings != 1 {
		t.Errorf("after the pool changed: %d sessions, %d bindings, want 0 and the static one", res.Sessions, res.Bindings)
	}
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 1, DPort: 2})
	if o.src != p.Pool4 {
		t.Errorf("source %v, want the new pool %v", o.src, p.Pool4)
	}
	// A static binding takes traffic from any remote (a port forward).
	ret, b := h.send(false, pkt4(remote2, p.Pool4, seg{Proto: ProtoUDP, SPort: 99, DPort: 7}))
	if ret != bpftest.ActRedirect || parse(t, b).dst != hostB {
		t.Errorf("static binding: verdict %d", ret)
	}
}

func TestHostLimitCountsTheHostsOwnSessions(t *testing.T) {
	p := testPlan()
	p.MaxSessionsPerHost = 2
	h := newHarness(t, p, 0)
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 1000, DPort: 53})
	// A session of the binding opened from the IPv4 side (address-
	// dependent filtering lets the same remote in from port 54) is the
	// remote's doing: it counts against the binding, not the host.
	if ret, _ := h.send(false, pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 54, DPort: o.sport})); ret != bpftest.ActRedirect {
		t.Fatalf("inbound session: verdict %d", ret)
	}
	h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 1001, DPort: 53})
	if ret, _ := h.send(true, pkt6(hostA, to6(p, remote1), seg{Proto: ProtoUDP, SPort: 1002, DPort: 53})); ret != bpftest.ActShot {
		t.Fatalf("third session over a limit of 2: verdict %d", ret)
	}
	// All expire; the host gets its whole allowance back.
	h.advance(uint64(UDPTimeout) + uint64(time.Second))
	if _, err := h.dp.reap(h.now); err != nil {
		t.Fatal(err)
	}
	for port := uint16(2000); port < 2002; port++ {
		h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: port, DPort: 53})
	}
	// A new pool address flushes every session, and each gives its
	// charge back.
	p.Pool4 = netip.MustParseAddr("192.0.2.101")
	if err := h.dp.configure(p, flagNoFIB|flagFakeClock, h.now); err != nil {
		t.Fatal(err)
	}
	h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 3000, DPort: 53})
	h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 3001, DPort: 53})
	if ret, _ := h.send(true, pkt6(hostA, to6(p, remote1), seg{Proto: ProtoUDP, SPort: 3002, DPort: 53})); ret != bpftest.ActShot {
		t.Errorf("third session after the flush: verdict %d", ret)
	}
}

// withOptions rebuilds an IPv4 packet with the given options (a multiple
// of four bytes) after its 20-byte header.
func withOptions(pkt []byte, opts []byte) []byte {
	b := append(append(append([]byte{}, pkt[:20]...), opts...), pkt[20:]...)
	b[0] = 0x40 | byte((20+len(opts))/4)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[10:], 0)
	binary.BigEndian.PutUint16(b[10:], bpftest.Checksum(b[:20+len(opts)], 0))
	return b
}

func TestRFC7915IPv4Options(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 7, DPort: 53})
	in := pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 53, DPort: o.sport, Payload: []byte("answer")})
	// Record route: the options are dropped and the packet translated.
	ret, out := h.send(false, withOptions(in, []byte{7, 7, 4, 0, 0, 0, 0, 0}))
	if ret != bpftest.ActRedirect {
		t.Fatalf("record route: verdict %d", ret)
	}
	if r := parse(t, out); r.dst != hostA || string(r.l4[8:]) != "answer" {
		t.Errorf("record route: translated to %v, payload %q", r.dst, r.l4[8:])
	}
	// §4.1: an unexpired loose or strict source route is not translated.
	for _, typ := range []byte{131, 137} {
		before := h.counter("unsupported")
		if ret, _ := h.send(false, withOptions(in, []byte{1, typ, 7, 4, 192, 0, 2, 1})); ret != bpftest.ActShot {
			t.Errorf("source route %d: verdict %d", typ, ret)
		}
		if h.counter("unsupported") != before+1 {
			t.Errorf("source route %d not counted", typ)
		}
	}
}
