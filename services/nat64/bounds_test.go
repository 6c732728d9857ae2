package nat64

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// The tests of this file attack the translator's bounds: every table and
// counter that a hostile LAN host or a hostile remote can grow must stop at
// its limit with a counted refusal, and give its room back when the state
// it counts expires.

// rotate opens flows the way a host with RFC 8981 temporary addresses
// does: from each of the LAN /64's addresses 0 to addrs-1, flows new
// flows each (UDP from port 1000 up, to remote1's DNS port). It checks
// that the translator created limit sessions and counted every other flow
// as refused under counter.
func (h *harness) rotate(p Plan, addrs, flows, limit int, counter string) {
	h.t.Helper()
	created := 0
	for a := range addrs {
		for port := range flows {
			ret, _ := h.send(true, pkt6(lanAddr(a), to6(p, remote1), seg{Proto: ProtoUDP, SPort: uint16(1000 + port), DPort: 53}))
			if ret == bpftest.ActRedirect {
				created++
			}
		}
	}
	if refused := h.counter(counter); created != limit || refused != uint64(addrs*flows-limit) {
		h.t.Errorf("%d of %d flows got a session with a limit of %d; %s %d", created, addrs*flows, limit, counter, refused)
	}
}

// lanAddr returns address number i in the test plan's LAN /64.
func lanAddr(i int) netip.Addr {
	b := hostA.As16()
	binary.BigEndian.PutUint32(b[8:], 0x02000000)
	binary.BigEndian.PutUint32(b[12:], uint32(i))
	return netip.AddrFrom16(b)
}

func TestRFC8981RotatingAddressesStayInsideThe64sLimit(t *testing.T) {
	p := testPlan()
	ula := netip.MustParsePrefix("fd00:1::/64")
	p.LANPrefixes = append(p.LANPrefixes, ula)
	p.MaxSessionsPerHost = 4
	p.MaxSessionsPer64 = 10
	h := newHarness(t, p, 0)
	// Five privacy addresses of one host, four new flows each: the /64
	// holds ten, whatever the addresses.
	h.rotate(p, 5, 4, 10, "prefix_limit_refused")
	// One address cannot take the whole /64's share: its fifth flow is
	// refused while the /64 still has room.
	p2 := p
	p2.MaxSessionsPer64 = 100
	if err := h.dp.configure(p2, flagNoFIB|flagFakeClock, h.now); err != nil {
		t.Fatal(err)
	}
	before := h.counter("host_limit_refused")
	if ret, _ := h.send(true, pkt6(lanAddr(0), to6(p, remote1), seg{Proto: ProtoUDP, SPort: 2000, DPort: 53})); ret != bpftest.ActShot {
		t.Errorf("fifth flow of an address with a share of 4: verdict %d", ret)
	}
	if h.counter("host_limit_refused") != before+1 {
		t.Errorf("host_limit_refused %d, was %d", h.counter("host_limit_refused"), before)
	}
	// Another /64 of the LAN has its own allowance.
	if err := h.dp.configure(p, flagNoFIB|flagFakeClock, h.now); err != nil {
		t.Fatal(err)
	}
	h.out(t, p, ula.Addr().Next(), remote1, seg{Proto: ProtoUDP, SPort: 1000, DPort: 53})
}

// TestHostCountsNeverJam: the per-host bookkeeping has no side table that
// can fill up. Five thousand addresses (more than any fixed per-address
// table of the datapath held) each open one session; the last one must
// still meet its share. (Addresses that hash to one quota slot share it,
// so it may meet it a little early, never late.)
func TestHostCountsNeverJam(t *testing.T) {
	p := testPlan()
	p.MaxSessionsPerHost = 8
	p.MaxSessionsPer64 = 100000
	h := newHarness(t, p, 0)
	const n = 5000
	for a := range n {
		if ret, _ := h.run(true, pkt6(lanAddr(a), to6(p, remote1), seg{Proto: ProtoUDP, SPort: uint16(40000 + a%2), DPort: 53})); ret != bpftest.ActRedirect {
			t.Fatalf("address %d: verdict %d (counters %v)", a, ret, mustCounters(t, h))
		}
	}
	opened := 1
	for port := uint16(40002); port < 40020; port++ {
		if ret, _ := h.run(true, pkt6(lanAddr(n-1), to6(p, remote1), seg{Proto: ProtoUDP, SPort: port, DPort: 53})); ret != bpftest.ActRedirect {
			break
		}
		opened++
	}
	if opened > 8 || h.counter("host_limit_refused") != 1 {
		t.Errorf("address %d opened %d sessions with a share of 8; host_limit_refused %d", n-1, opened, h.counter("host_limit_refused"))
	}
}

// TestPoolPortsNeverLeak fills half the pool ports, lets the sessions
// expire, reaps, and fills the same number again: the reaper must finish
// every pass, so that no binding (and no port) outlives its sessions. Had
// the first round's ports leaked, the second would need the whole pool
// (and random probing does not find the last free ports).
func TestPoolPortsNeverLeak(t *testing.T) {
	p := testPlan()
	p.PortsLow = PortRange{}
	p.PortsHigh = PortRange{10000, 19999}
	p.MaxSessionsPer64 = 100000
	h := newHarness(t, p, 0)
	const n = 5000
	fill := func(round int) {
		t.Helper()
		for a := range n {
			src := lanAddr(round*n + a)
			sport := uint16(40000 + a%2) // UDP keeps the parity: half the pool each
			if ret, _ := h.run(true, pkt6(src, to6(p, remote1), seg{Proto: ProtoUDP, SPort: sport, DPort: 53})); ret != bpftest.ActRedirect {
				t.Fatalf("round %d, address %d: verdict %d (counters %v)", round, a, ret, mustCounters(t, h))
			}
		}
	}
	fill(0)
	h.advance(uint64(UDPTimeout + bindingGrace + time.Second))
	res, err := h.dp.reap(h.now)
	if err != nil {
		t.Fatalf("reap: %v", err)
	}
	if res.Expired != n || res.BindingsExpired != n {
		t.Errorf("reaped %d sessions and %d bindings, want %d of each", res.Expired, res.BindingsExpired, n)
	}
	var k nat64Bib4Key
	var v nat64Bib4Val
	left := 0
	for it := h.dp.objs.Nat64Bib4.Iterate(); it.Next(&k, &v); {
		left++
	}
	if left != 0 {
		t.Errorf("%d pool ports still bound after every binding expired", left)
	}
	fill(1)
}

// TestRFC6146InboundSessionsBoundedPerBinding: the sessions the IPv4 side
// opens on a binding are bounded per binding, and charged to the binding,
// not to the LAN host's address or MAC, so that a remote cannot spend a
// host's share.
func TestRFC6146InboundSessionsBoundedPerBinding(t *testing.T) {
	p := testPlan()
	p.MaxInboundSessionsPerBinding = 8
	p.MaxSessionsPerHost = 4
	h := newHarness(t, p, 0)
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 5000, DPort: 3478})
	spray := func() (in int) {
		t.Helper()
		for port := range 100 {
			if ret, _ := h.send(false, pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: uint16(20000 + port), DPort: o.sport})); ret == bpftest.ActRedirect {
				in++
			}
		}
		return in
	}
	// Address-dependent filtering lets the remote in from any port; only
	// eight of its ports open sessions on the binding.
	if in := spray(); in != 8 || h.counter("inbound_session_refused") != 92 {
		t.Errorf("%d of 100 ports got in with a bound of 8; inbound_session_refused %d", in, h.counter("inbound_session_refused"))
	}
	// The remote's sessions are not the host's: its own share of 4 is
	// untouched (one used above, three more), and its MAC is charged
	// these four alone.
	for port := uint16(5001); port < 5004; port++ {
		h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: port, DPort: 53})
	}
	if h.counter("host_limit_refused") != 0 {
		t.Errorf("host_limit_refused %d", h.counter("host_limit_refused"))
	}
	if got := h.dp.quota.chargedMAC(h.dp.seed, [6]byte(macB)); got != 4 {
		t.Errorf("the host's MAC is charged %d sessions, want its own 4", got)
	}
	// Expired inbound sessions give the binding its room back.
	h.advance(uint64(UDPTimeout - time.Second))
	h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 5000, DPort: 3478}) // keeps the binding
	h.advance(uint64(2 * time.Second))
	if _, err := h.dp.reap(h.now); err != nil {
		t.Fatal(err)
	}
	if in := spray(); in != 8 {
		t.Errorf("after the inbound sessions expired: %d ports got in, want 8", in)
	}
}

// setTTL sets an IPv4 packet's TTL and fixes the header checksum.
func setTTL(b []byte, ttl uint8) []byte {
	b[8] = ttl
	binary.BigEndian.PutUint16(b[10:], 0)
	binary.BigEndian.PutUint16(b[10:], bpftest.Checksum(b[:20], 0))
	return b
}

// frag4 makes b (an IPv4 packet without options) a fragment of datagram id
// at offset off (bytes) with MF as given.
func frag4(b []byte, id uint16, off int, mf bool) []byte {
	binary.BigEndian.PutUint16(b[4:], id)
	f := uint16(off / 8)
	if mf {
		f |= 0x2000
	}
	binary.BigEndian.PutUint16(b[6:], f)
	return setTTL(b, b[8])
}

func TestRFC1812NoICMPErrorAboutAnICMPError(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 7000, DPort: 53})
	// RFC 1812 §4.3.2.7: an ICMPv4 error whose TTL runs out here is
	// dropped, never answered with time exceeded.
	quoted := ip4(pool, remote1, 64, ProtoUDP, false, seg{Proto: ProtoUDP, SPort: o.sport, DPort: 53}.Bytes(pool, remote1))
	icmpErr := setTTL(pkt4(remote2, pool, seg{Proto: ProtoICMP, Type: 3, Code: 3, Payload: quoted}), 1)
	if ret, out := h.send(false, icmpErr); ret != bpftest.ActShot {
		t.Errorf("ICMPv4 error with TTL 1: verdict %d, %d bytes out", ret, len(out))
	}
	// RFC 4443 §2.4(e.1): nor an ICMPv6 error whose hop limit runs out.
	inner := pkt6(to6(p, remote1), hostA, seg{Proto: ProtoUDP, SPort: 53, DPort: 7000})
	icmp6Err := pkt6(hostA, to6(p, remote1), seg{Proto: ProtoICMP, Type: 1, Code: 4, Payload: inner})
	icmp6Err[7] = 1
	if ret, out := h.send(true, icmp6Err); ret != bpftest.ActShot {
		t.Errorf("ICMPv6 error with hop limit 1: verdict %d, %d bytes out", ret, len(out))
	}
	// RFC 1812 §4.3.2.7: nor a non-initial fragment.
	first := frag4(pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 53, DPort: o.sport, Payload: make([]byte, 16)}), 77, 0, true)
	if ret, _ := h.send(false, first); ret != bpftest.ActRedirect {
		t.Fatalf("first fragment: verdict %d", ret)
	}
	rest := setTTL(frag4(ip4(remote1, pool, 64, ProtoUDP, false, make([]byte, 8)), 77, 24, false), 1)
	if ret, out := h.send(false, rest); ret != bpftest.ActShot {
		t.Errorf("non-initial fragment with TTL 1: verdict %d, %d bytes out", ret, len(out))
	}
	if got := h.counter("icmp_error_not_allowed"); got != 3 {
		t.Errorf("icmp_error_not_allowed = %d, want 3", got)
	}
}

func TestRFC4443ICMPErrorsRateLimited(t *testing.T) {
	p := testPlan()
	p.ICMPErrorsPerSecond = 50 // a burst of a fifth of a second: 10
	h := newHarness(t, p, 0)
	expire := func(n int) (answered int) {
		for i := range n {
			in := pkt6(hostA, to6(p, remote1), seg{Proto: ProtoUDP, SPort: uint16(3000 + i), DPort: 33434})
			in[7] = 1
			if ret, out := h.send(true, in); ret == bpftest.ActRedirect && len(out) > 0 && parse(t, out).icmpType == 3 {
				answered++
			}
		}
		return answered
	}
	if got := expire(30); got != 10 || h.counter("icmp_error_suppressed") != 20 {
		t.Errorf("30 expiring packets at once: %d answered, icmp_error_suppressed %d; want 10 and 20", got, h.counter("icmp_error_suppressed"))
	}
	// 100 ms at 50 per second: five more.
	h.advance(uint64(100 * time.Millisecond))
	if got := expire(10); got != 5 {
		t.Errorf("100 ms later: %d answered, want 5", got)
	}
	// The IPv4 side has its own bucket: a flood from the WAN does not
	// silence the errors the LAN hosts need (Packet Too Big).
	h.advance(uint64(time.Second))
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 9, DPort: 9})
	for range 20 {
		h.send(false, setTTL(pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 9, DPort: o.sport}), 1))
	}
	if got := expire(1); got != 1 {
		t.Error("the WAN's expiring packets used up the LAN's ICMP errors")
	}
}

func TestRFC791FragmentStateExpires(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 8000, DPort: 53})
	datagram := func(id uint16, gap time.Duration) uint32 {
		t.Helper()
		first := frag4(pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 53, DPort: o.sport, Payload: make([]byte, 16)}), id, 0, true)
		if ret, _ := h.send(false, first); ret != bpftest.ActRedirect {
			t.Fatalf("first fragment: verdict %d", ret)
		}
		h.advance(uint64(gap))
		ret, _ := h.send(false, frag4(ip4(remote1, pool, 64, ProtoUDP, false, make([]byte, 8)), id, 24, false))
		return ret
	}
	if ret := datagram(1, time.Second); ret != bpftest.ActRedirect {
		t.Errorf("fragment 1 s after the first: verdict %d", ret)
	}
	// RFC 791 §3.2: a reassembly timer of 15 s; a fragment after that
	// belongs to no datagram the host still waits for.
	if ret := datagram(2, 16*time.Second); ret != bpftest.ActShot {
		t.Errorf("fragment 16 s after the first: verdict %d", ret)
	}
	if h.counter("fragment_state_expired") != 1 {
		t.Errorf("fragment_state_expired = %d", h.counter("fragment_state_expired"))
	}
}

// TestOrphanPoolPortFreed: a pool port whose binding lost its IPv6 half (a
// reaper pass cut short between the two deletes) is freed by the next
// passes, not held for ever.
func TestOrphanPoolPortFreed(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	k4 := nat64Bib4Key{Port4: be16(20000), Proto: ProtoUDP}
	v4 := nat64Bib4Val{Addr: hostB.As16(), Port: be16(5000)}
	if err := h.dp.objs.Nat64Bib4.Update(&k4, &v4, 0); err != nil {
		t.Fatal(err)
	}
	// A live binding is no orphan.
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 6000, DPort: 53})
	for pass := range 2 {
		res, err := h.dp.reap(h.now)
		if err != nil {
			t.Fatal(err)
		}
		// The program claims a port a moment before it writes the IPv6
		// half: only the second pass that sees the orphan frees it.
		if want := pass; res.OrphanPorts != want {
			t.Errorf("pass %d: %d orphan ports freed, want %d", pass, res.OrphanPorts, want)
		}
	}
	var v nat64Bib4Val
	if err := h.dp.objs.Nat64Bib4.Lookup(&k4, &v); err == nil {
		t.Error("the orphan port is still bound")
	}
	if err := h.dp.objs.Nat64Bib4.Lookup(&nat64Bib4Key{Port4: be16(o.sport), Proto: ProtoUDP}, &v); err != nil {
		t.Errorf("the live binding's port: %v", err)
	}
}

// TestLiveSessionsPerAddress reads each address's charged sessions the
// way Stats does: the Go side must hash an address to the slot the
// program charged.
func TestLiveSessionsPerAddress(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	for port := range uint16(3) {
		h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 1000 + port, DPort: 53})
	}
	h.out(t, p, hostB, remote1, seg{Proto: ProtoUDP, SPort: 1000, DPort: 53})
	hs, err := h.dp.hosts()
	if err != nil {
		t.Fatal(err)
	}
	got := map[netip.Addr]uint64{}
	for _, x := range hs {
		got[x.Addr] = x.LiveSessions
	}
	if got[hostA] != 3 || got[hostB] != 1 {
		t.Errorf("live sessions %v, want %v: 3 and %v: 1", got, hostA, hostB)
	}
}
