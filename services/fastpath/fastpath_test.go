package fastpath

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

func udp(sport, dport uint16) seg { return seg{proto: 17, sport: sport, dport: dport, payload: 16} }
func tcp(sport, dport uint16, flags uint8) seg {
	return seg{proto: 6, sport: sport, dport: dport, flags: flags}
}

// establishUDP lets the firewall accept one packet each way.
func (h *harness) establishUDP(lan netip.Addr, lport, rport uint16) {
	h.t.Helper()
	h.acceptOut(pkt6(lan, remote, udp(lport, rport)))
	h.acceptIn(pkt6(remote, lan, udp(rport, lport)))
}

func TestUDPOffloadedAfterBothDirections(t *testing.T) {
	h := newHarness(t)
	out := pkt6(hostA, remote, udp(40000, 9999))
	in := pkt6(remote, hostA, udp(9999, 40000))
	if r := h.lanIngress(out); r.verdict != bpftest.ActNext {
		t.Fatalf("unknown flow: verdict %d, want next (the stack)", r.verdict)
	}
	h.acceptOut(out)
	if r := h.lanIngress(out); r.verdict != bpftest.ActNext {
		t.Fatalf("only LAN→WAN accepted: verdict %d, want next", r.verdict)
	}
	h.acceptIn(in)
	r := h.lanIngress(out)
	if r.verdict != bpftest.ActRedirect {
		t.Fatalf("established: verdict %d, want redirect", r.verdict)
	}
	if r.l3[7] != 63 {
		t.Errorf("hop limit after the fast path: %d, want 63 (RFC 8200 §3)", r.l3[7])
	}
	if r.mark&DefaultMark == 0 {
		t.Errorf("mark %#x: the fast path's bit is not set", r.mark)
	}
	if r := h.wanIngress(in); r.verdict != bpftest.ActRedirect {
		t.Fatalf("reply direction: verdict %d, want redirect", r.verdict)
	}
	c := h.counters()
	if c[cFastPackets] != 2 || c[cFastBytes] != uint64(2*len(out)) {
		t.Errorf("fast counters: %d packets %d bytes, want 2 and %d", c[cFastPackets], c[cFastBytes], 2*len(out))
	}
	if c[sNoFlow] != 1 || c[sHalfOpen] != 1 {
		t.Errorf("stack reasons: no-flow %d half-open %d, want 1 and 1", c[sNoFlow], c[sHalfOpen])
	}
	hosts, err := h.dp.hosts()
	if err != nil {
		t.Fatal(err)
	}
	want := HostStats{OutBytes: uint64(len(out)), OutPackets: 1, InBytes: uint64(len(in)), InPackets: 1}
	if hosts[hostA] != want || len(hosts) != 1 {
		t.Errorf("host counters %v, want only %v: %+v", hosts, hostA, want)
	}
}

func TestLearnerSkipsFastPathedPackets(t *testing.T) {
	h := newHarness(t)
	out := pkt6(hostA, remote, udp(40000, 9999))
	r := h.run(h.dp.objs.FpLearnWan, out, lanIdx, DefaultMark|0x1)
	if r.mark != 0x1 {
		t.Errorf("mark after the learner: %#x, want %#x (its own bit cleared, others kept)", r.mark, 0x1)
	}
	if c := h.counters(); c[lLearned] != 0 {
		t.Errorf("a fast-pathed packet was learned as accepted by the firewall")
	}
}

func TestOnlyForwardedPacketsAreLearned(t *testing.T) {
	for _, c := range []struct {
		name    string
		ingress int
		l3      []byte
		outward bool
	}{
		{"router-originated LAN→WAN (no ingress interface)", 0, pkt6(hostA, remote, udp(1, 2)), true},
		{"LAN→WAN that came in on uplink0", wanIdx, pkt6(hostA, remote, udp(1, 2)), true},
		{"router-originated WAN→LAN", 0, pkt6(remote, hostA, udp(2, 1)), false},
		{"WAN→LAN that came in on lan0 (hairpin)", lanIdx, pkt6(remote, hostA, udp(2, 1)), false},
		{"LAN→LAN between two LAN prefixes", lanIdx, pkt6(hostA, netip.MustParseAddr("fd12:3456:789a::7"), udp(1, 2)), true},
		{"source outside the LAN prefixes", lanIdx, pkt6(netip.MustParseAddr("2001:db8:2000::1"), remote, udp(1, 2)), true},
	} {
		h := newHarness(t)
		prog := h.dp.objs.FpLearnLan
		if c.outward {
			prog = h.dp.objs.FpLearnWan
		}
		h.run(prog, c.l3, c.ingress, 0)
		if n := h.counters()[lLearned]; n != 0 {
			t.Errorf("%s: learned %d, want 0", c.name, n)
		}
	}
}

// A WAN packet that claims a LAN source never forms a key the learners
// wrote (RFC 7084 WAA-style anti-spoofing stays the firewall's; the fast
// path must not bypass it).
func TestSpoofedSourcesNeverMatch(t *testing.T) {
	h := newHarness(t)
	h.establishUDP(hostA, 40000, 9999)
	for _, c := range []struct {
		name string
		l3   []byte
	}{
		{"from the WAN, LAN host B's address to host A", pkt6(hostB, hostA, udp(9999, 40000))},
		{"from the WAN, host A's address to the remote", pkt6(hostA, remote, udp(40000, 9999))},
		{"from the WAN, the ULA to host A", pkt6(netip.MustParseAddr("fd12:3456:789a::1"), hostA, udp(9999, 40000))},
	} {
		if r := h.wanIngress(c.l3); r.verdict != bpftest.ActNext {
			t.Errorf("%s: verdict %d, want next (the firewall decides)", c.name, r.verdict)
		}
	}
	if c := h.counters(); c[cFastPackets] != 0 || c[sNotLAN] != 3 {
		t.Errorf("fast %d, not-lan %d; want 0 and 3", c[cFastPackets], c[sNotLAN])
	}
	// From the LAN, a host that uses the remote's address as source.
	if r := h.lanIngress(pkt6(remote, hostA, udp(9999, 40000))); r.verdict != bpftest.ActNext {
		t.Errorf("from the LAN with an outside source: verdict %d, want next", r.verdict)
	}
}

func TestTCPOffloadedOnlyAfterHandshake(t *testing.T) {
	h := newHarness(t)
	o := func(f uint8) []byte { return pkt6(hostA, remote, tcp(40000, 443, f)) }
	i := func(f uint8) []byte { return pkt6(remote, hostA, tcp(443, 40000, f)) }
	h.acceptOut(o(tcpSYN))
	h.acceptIn(i(tcpSYN | tcpACK))
	if r := h.lanIngress(o(tcpACK)); r.verdict != bpftest.ActNext {
		t.Fatalf("after SYN, SYN-ACK: verdict %d, want next (conntrack must see the third ACK)", r.verdict)
	}
	h.acceptOut(o(tcpACK))
	h.acceptIn(i(tcpACK))
	if r := h.lanIngress(o(tcpACK)); r.verdict != bpftest.ActRedirect {
		t.Fatalf("established: verdict %d, want redirect", r.verdict)
	}
	if r := h.wanIngress(i(tcpACK)); r.verdict != bpftest.ActRedirect {
		t.Fatalf("established, inbound: verdict %d, want redirect", r.verdict)
	}
	// The FIN goes to the stack so that conntrack sees the close, and
	// so does the rest of the connection.
	if r := h.lanIngress(o(tcpFIN | tcpACK)); r.verdict != bpftest.ActNext {
		t.Fatalf("FIN: verdict %d, want next", r.verdict)
	}
	h.acceptOut(o(tcpFIN | tcpACK))
	h.acceptIn(i(tcpACK))
	h.acceptOut(o(tcpACK))
	for _, r := range []result{h.wanIngress(i(tcpACK)), h.lanIngress(o(tcpACK))} {
		if r.verdict != bpftest.ActNext {
			t.Errorf("after the FIN: verdict %d, want next", r.verdict)
		}
	}
	c := h.counters()
	if c[sTCPClose] != 1 || c[sClosing] != 2 {
		t.Errorf("tcp-close %d, closing %d; want 1 and 2", c[sTCPClose], c[sClosing])
	}
	// A new connection on the same tuple starts afresh.
	h.acceptOut(o(tcpSYN))
	h.acceptIn(i(tcpSYN | tcpACK))
	h.acceptOut(o(tcpACK))
	h.acceptIn(i(tcpACK))
	if r := h.lanIngress(o(tcpACK)); r.verdict != bpftest.ActRedirect {
		t.Errorf("reused tuple after a new handshake: verdict %d, want redirect", r.verdict)
	}
	// An RST seen by the firewall ends it too.
	h.acceptIn(i(tcpRST))
	if r := h.lanIngress(o(tcpACK)); r.verdict != bpftest.ActNext {
		t.Errorf("after an RST: verdict %d, want next", r.verdict)
	}
}

func TestICMPv6EchoOffloaded(t *testing.T) {
	h := newHarness(t)
	req := pkt6(hostA, remote, seg{proto: 58, icmpType: 128, sport: 77})
	rep := pkt6(remote, hostA, seg{proto: 58, icmpType: 129, sport: 77})
	h.acceptOut(req)
	h.acceptIn(rep)
	if r := h.lanIngress(req); r.verdict != bpftest.ActRedirect {
		t.Errorf("echo request: verdict %d, want redirect", r.verdict)
	}
	if r := h.wanIngress(rep); r.verdict != bpftest.ActRedirect {
		t.Errorf("echo reply: verdict %d, want redirect", r.verdict)
	}
	other := pkt6(hostA, remote, seg{proto: 58, icmpType: 128, sport: 78})
	if r := h.lanIngress(other); r.verdict != bpftest.ActNext {
		t.Errorf("another identifier: verdict %d, want next", r.verdict)
	}
	// RFC 4443 errors are RELATED in conntrack: always the stack's.
	ptb := pkt6(remote, hostA, seg{proto: 58, icmpType: 2, sport: 77})
	if r := h.wanIngress(ptb); r.verdict != bpftest.ActNext {
		t.Errorf("packet too big: verdict %d, want next", r.verdict)
	}
}

func TestStackKeepsWhatTheRouterMustSee(t *testing.T) {
	h := newHarness(t)
	h.establishUDP(hostA, 40000, 9999)
	hop1 := pkt6(hostA, remote, udp(40000, 9999))
	hop1[7] = 1
	hbh := pkt6(hostA, remote, udp(40000, 9999))
	hbh[6] = 0 // a hop-by-hop options header (RFC 8200 §4.3)
	frag := pkt6(hostA, remote, udp(40000, 9999))
	frag[6] = 44
	for _, c := range []struct {
		name   string
		l3     []byte
		reason int
	}{
		{"hop limit 1: the router sends Time Exceeded (RFC 4443 §3.3)", hop1, sHopLimit},
		{"hop-by-hop options", hbh, sNextHeader},
		{"fragment header", frag, sNextHeader},
		{"IPv4", []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1, 0, 1, 0, 2, 0, 8, 0, 0}, sNotIPv6},
		{"truncated UDP header", pkt6(hostA, remote, udp(40000, 9999))[:42], sShort},
	} {
		before := h.counters()[c.reason]
		if r := h.lanIngress(c.l3); r.verdict != bpftest.ActNext {
			t.Errorf("%s: verdict %d, want next", c.name, r.verdict)
		}
		if after := h.counters()[c.reason]; after != before+1 {
			t.Errorf("%s: reason %s counted %d times, want 1", c.name, stackReasons[c.reason], after-before)
		}
	}
}

func TestIdleFlowExpires(t *testing.T) {
	h := newHarness(t)
	h.establishUDP(hostA, 40000, 9999)
	out := pkt6(hostA, remote, udp(40000, 9999))
	h.advance(UDPTimeout + time.Second)
	if r := h.lanIngress(out); r.verdict != bpftest.ActNext {
		t.Fatalf("after the idle timeout: verdict %d, want next", r.verdict)
	}
	if c := h.counters(); c[sExpired] != 1 {
		t.Errorf("expired %d, want 1", c[sExpired])
	}
	if r := h.lanIngress(out); r.verdict != bpftest.ActNext || h.counters()[sNoFlow] != 1 {
		t.Errorf("expired flow is still in the table")
	}
}

// Each direction goes back through the firewall for a packet every
// RefreshAfter: conntrack stays alive, and a direction the firewall no
// longer accepts leaves the fast path.
func TestRefreshThroughTheStack(t *testing.T) {
	h := newHarness(t)
	h.establishUDP(hostA, 40000, 9999)
	out := pkt6(hostA, remote, udp(40000, 9999))
	in := pkt6(remote, hostA, udp(9999, 40000))
	h.advance(RefreshAfter / 2)
	if r := h.lanIngress(out); r.verdict != bpftest.ActRedirect {
		t.Fatalf("within the refresh time: verdict %d, want redirect", r.verdict)
	}
	h.advance(RefreshAfter)
	if r := h.lanIngress(out); r.verdict != bpftest.ActNext {
		t.Fatalf("refresh due: verdict %d, want next", r.verdict)
	}
	h.acceptOut(out) // the firewall still accepts it
	if r := h.lanIngress(out); r.verdict != bpftest.ActRedirect {
		t.Errorf("after the refresh: verdict %d, want redirect", r.verdict)
	}
	// The firewall stops accepting the inbound direction (its conntrack
	// entry was flushed, say): it never gets back on the fast path.
	for range 3 {
		if r := h.wanIngress(in); r.verdict != bpftest.ActNext {
			t.Errorf("inbound, not accepted since the refresh: verdict %d, want next", r.verdict)
		}
	}
	if c := h.counters(); c[sRefresh] != 4 {
		t.Errorf("refresh %d, want 4", c[sRefresh])
	}
}

func TestRenumberingRetiresFlows(t *testing.T) {
	h := newHarness(t)
	h.establishUDP(hostA, 40000, 9999)
	out := pkt6(hostA, remote, udp(40000, 9999))
	h.prefixes = []netip.Prefix{netip.MustParsePrefix("2001:db8:1000:200::/64"), ulaPrefix}
	h.configure()
	if r := h.lanIngress(out); r.verdict != bpftest.ActNext {
		t.Errorf("flow of the retired prefix: verdict %d, want next", r.verdict)
	}
	res, err := h.dp.reap(h.now, h.tmo(), h.prefixes, h.exclude)
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 1 || res.Flows != 0 {
		t.Errorf("reap after renumbering: %+v, want the flow removed", res)
	}
}

func TestReapCountsAndExpires(t *testing.T) {
	h := newHarness(t)
	h.establishUDP(hostA, 40000, 9999)
	h.acceptOut(pkt6(hostB, remote, udp(40001, 9999))) // half open
	res, err := h.dp.reap(h.now, h.tmo(), h.prefixes, h.exclude)
	if err != nil {
		t.Fatal(err)
	}
	if res != (reapResult{Flows: 2, Offloaded: 1}) {
		t.Errorf("reap: %+v, want 2 flows, 1 offloaded", res)
	}
	res, err = h.dp.reap(h.now+uint64(UDPTimeout+time.Second), h.tmo(), h.prefixes, h.exclude)
	if err != nil {
		t.Fatal(err)
	}
	if res != (reapResult{Removed: 2}) {
		t.Errorf("reap after the timeout: %+v, want both removed", res)
	}
}

func TestDisabledWithoutPrefixes(t *testing.T) {
	h := newHarness(t)
	h.establishUDP(hostA, 40000, 9999)
	h.prefixes = nil
	h.configure()
	if r := h.lanIngress(pkt6(hostA, remote, udp(40000, 9999))); r.verdict != bpftest.ActNext {
		t.Errorf("no LAN prefixes: verdict %d, want next", r.verdict)
	}
}

// The NAT64's replies leave lan0 as IPv6 from the NAT64 prefix; their other
// direction leaves as IPv4, so they can never be offloaded and must not
// fill the table.
func TestExcludedRemotesNeverLearned(t *testing.T) {
	h := newHarness(t)
	h.exclude = []netip.Prefix{netip.MustParsePrefix("2001:db8:64::/96")}
	h.configure()
	nat64 := netip.MustParseAddr("2001:db8:64::c000:201")
	h.acceptIn(pkt6(nat64, hostA, udp(9999, 40000)))
	h.acceptOut(pkt6(hostA, nat64, udp(40000, 9999)))
	c := h.counters()
	if c[lLearned] != 0 {
		t.Errorf("learned %d directions of a flow to the NAT64 prefix, want 0", c[lLearned])
	}
	if r := h.lanIngress(pkt6(hostA, nat64, udp(40000, 9999))); r.verdict != bpftest.ActNext {
		t.Errorf("to the NAT64 prefix: verdict %d, want next", r.verdict)
	}
	if h.counters()[sExcluded] != 1 {
		t.Errorf("excluded counted %d times, want 1", h.counters()[sExcluded])
	}
}
