package clat

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// xlatCase is a packet the program must translate: the upper-layer
// protocol it must carry and what else to check (nil: nothing more).
type xlatCase struct {
	name  string
	in    []byte
	proto uint8
	check func(t *testing.T, p parsed)
}

func TestOutTranslates(t *testing.T) {
	h := newHarness(t, testPlan())
	payload := bytes.Repeat([]byte("legacy"), 50)
	for _, tc := range []xlatCase{
		{"RFC 7915 §4.1: TCP from the CLAT's IPv4 leaves from the CLAT address to PREF64 + the destination",
			pkt4(IPv4, remote4, seg{Proto: pTCP, SPort: 40000, DPort: 80, Flags: 0x18, Payload: payload}), pTCP,
			func(t *testing.T, p parsed) {
				if binary.BigEndian.Uint16(p.l4) != 40000 || binary.BigEndian.Uint16(p.l4[2:]) != 80 {
					t.Errorf("ports changed: % x", p.l4[:4])
				}
				if !bytes.Equal(p.l4[20:], payload) {
					t.Errorf("payload changed")
				}
			}},
		{"RFC 7915 §4.5: UDP keeps its ports and gets the IPv6 pseudo-header's checksum",
			pkt4(IPv4, remote4, seg{Proto: pUDP, SPort: 5353, DPort: 53, Payload: []byte("q")}), pUDP, nil},
		{"RFC 7915 §4.5: a UDP checksum of zero is computed, IPv6 needs one",
			pkt4(IPv4, remote4, seg{Proto: pUDP, SPort: 5353, DPort: 53, Payload: []byte("zero"), NoChecksum: true}), pUDP,
			func(t *testing.T, p parsed) {
				if binary.BigEndian.Uint16(p.l4[6:]) == 0 {
					t.Error("UDP checksum still zero")
				}
			}},
		{"RFC 7915 §4.2: an echo request becomes ICMPv6 echo request 128 with its identifier",
			pkt4(IPv4, remote4, seg{Proto: pICMP, Type: 8, ID: 77, Payload: []byte("ping")}), pICMP6,
			func(t *testing.T, p parsed) {
				if p.l4[0] != 128 || binary.BigEndian.Uint16(p.l4[4:]) != 77 {
					t.Errorf("ICMPv6 type %d id %d, want 128 77", p.l4[0], binary.BigEndian.Uint16(p.l4[4:]))
				}
			}},
		{"RFC 7915 §4.2: an echo reply becomes ICMPv6 echo reply 129",
			pkt4(IPv4, remote4, seg{Proto: pICMP, Type: 0, ID: 9}), pICMP6,
			func(t *testing.T, p parsed) {
				if p.l4[0] != 129 {
					t.Errorf("ICMPv6 type %d, want 129", p.l4[0])
				}
			}},
		{"RFC 7915 §4.1: IPv4 options are left behind",
			ip4(IPv4, remote4, pUDP, 63, 0, 0, []byte{1, 1, 1, 0}, seg{Proto: pUDP, SPort: 1, DPort: 2}.Bytes(IPv4, remote4)), pUDP, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ret, out := h.run(true, tc.in)
			if ret != bpftest.ActRedirect {
				t.Fatalf("verdict %d, want redirect", ret)
			}
			// The kernel decremented the TTL when it forwarded the
			// packet to clat0; the hop limit is that TTL.
			p := parse(t, out)
			wantForwarded(t, p, true, testCLAT6, to6(remote4), tc.proto)
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

// RFC 6877 §5 and mss.h: a legacy host's SYN advertises what its 1500-byte
// link fits; the peer's segments come back over the uplink as IPv6, 20
// bytes bigger, so the MSS is clamped to the uplink's MTU minus 60.
func TestOutClampsMSS(t *testing.T) {
	h := newHarness(t, testPlan())
	for _, tc := range []struct {
		name     string
		mss, max int
	}{
		{"RFC 6877 §5: an MSS of 1460 is lowered to 1440", 1460, 1440},
		{"a smaller MSS is left alone", 1200, 1200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.counter("mss_clamped")
			ret, out := h.run(true, pkt4(IPv4, remote4, seg{Proto: pTCP, SPort: 1, DPort: 443, Flags: 0x02, TCPOpts: mss(uint16(tc.mss))}))
			if ret != bpftest.ActRedirect {
				t.Fatalf("verdict %d", ret)
			}
			p := parse(t, out)
			if got, _ := bpftest.MSS(p.l4); int(got) != tc.max {
				t.Errorf("MSS %d, want %d", got, tc.max)
			}
			if clamped := h.counter("mss_clamped") - before; (tc.mss != tc.max) != (clamped == 1) {
				t.Errorf("mss_clamped went up by %d", clamped)
			}
		})
	}
}

func TestOutFragments(t *testing.T) {
	h := newHarness(t, testPlan())
	l4 := seg{Proto: pUDP, SPort: 1000, DPort: 2000, Payload: bytes.Repeat([]byte{7}, 64)}.Bytes(IPv4, remote4)
	first := ip4(IPv4, remote4, pUDP, 63, 0x1234, 0x2000, nil, l4[:40])
	rest := ip4(IPv4, remote4, pUDP, 63, 0x1234, 5, nil, l4[40:])
	for _, tc := range []struct {
		name string
		in   []byte
		off  int
		more bool
	}{
		{"RFC 7915 §4.1: the first fragment gets a fragment header with MF and the identification", first, 0, true},
		{"RFC 7915 §4.1: a later fragment keeps its offset", rest, 40, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ret, out := h.run(true, tc.in)
			if ret != bpftest.ActRedirect {
				t.Fatalf("verdict %d", ret)
			}
			p := parse(t, out)
			if !p.frag || p.fragOff != tc.off || p.more != tc.more || p.id != 0x1234 || p.proto != pUDP {
				t.Errorf("fragment offset %d more %v id %#x proto %d; want %d %v 0x1234 17", p.fragOff, p.more, p.id, p.proto, tc.off, tc.more)
			}
		})
	}
	// Both halves, put together, carry a UDP checksum that is right for
	// IPv6: the first fragment's header was updated for the whole datagram.
	_, o1 := h.run(true, first)
	_, o2 := h.run(true, rest)
	whole := append(append([]byte{}, parse(t, o1).l4...), parse(t, o2).l4...)
	if bpftest.Checksum(whole, bpftest.PseudoSum(testCLAT6, to6(remote4), pUDP, len(whole))) != 0 {
		t.Error("reassembled UDP checksum wrong")
	}
}

func TestOutDrops(t *testing.T) {
	h := newHarness(t, testPlan())
	lan := netip.MustParseAddr("192.168.64.23")
	for _, tc := range []struct {
		name    string
		in      []byte
		counter string
	}{
		{"RFC 6877 §6.3: a source other than the CLAT's IPv4 (not through the NAT44) is not translated",
			pkt4(lan, remote4, seg{Proto: pUDP, SPort: 1, DPort: 2}), "source_not_clat"},
		{"RFC 7915 §4.2: ICMP timestamp is silently dropped",
			pkt4(IPv4, remote4, seg{Proto: pICMP, Type: 13}), "unsupported"},
		{"RFC 7915 §4.1: an unexpired loose source route is not translated",
			ip4(IPv4, remote4, pUDP, 63, 0, 0, []byte{131, 7, 4, 198, 51, 100, 1, 0}, seg{Proto: pUDP, SPort: 1, DPort: 2}.Bytes(IPv4, remote4)), "unsupported"},
		{"a fragmented ICMP message cannot get its ICMPv6 checksum",
			ip4(IPv4, remote4, pICMP, 63, 1, 0x2000, nil, seg{Proto: pICMP, Type: 8, Payload: make([]byte, 16)}.Bytes(IPv4, remote4)), "unsupported"},
		{"a total length beyond the packet is malformed",
			func() []byte { b := pkt4(IPv4, remote4, seg{Proto: pUDP}); b[3] += 8; return b }(), "malformed"},
		{"a protocol RFC 7915 does not translate here (SCTP) is dropped",
			ip4(IPv4, remote4, 132, 63, 0, 0, nil, make([]byte, 16)), "unsupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.wantDropped(t, true, tc.in, tc.counter)
		})
	}
}

// RFC 7915 §4.2: an ICMPv4 error the kernel sends about a packet that came
// in through the CLAT (here port unreachable from the gizmo, after the
// NAT44 mapped it back to the CLAT's address) goes out as ICMPv6 with the
// quoted packet translated too.
func TestOutICMPError(t *testing.T) {
	h := newHarness(t, testPlan())
	quoted := pkt4(remote4, IPv4, seg{Proto: pUDP, SPort: 53, DPort: 33434, Payload: []byte("probe")})
	ret, out := h.run(true, pkt4(IPv4, remote4, seg{Proto: pICMP, Type: 3, Code: 3, Payload: quoted}))
	if ret != bpftest.ActRedirect {
		t.Fatalf("verdict %d", ret)
	}
	p := parse(t, out)
	if p.proto != pICMP6 || p.l4[0] != 1 || p.l4[1] != 4 {
		t.Fatalf("ICMPv6 %d/%d, want destination unreachable / port unreachable (1/4)", p.l4[0], p.l4[1])
	}
	in := parse(t, p.l4[8:])
	if in.src != to6(remote4) || in.dst != testCLAT6 || in.proto != pUDP {
		t.Errorf("quoted %v → %v proto %d, want %v → %v UDP", in.src, in.dst, in.proto, to6(remote4), testCLAT6)
	}
	if h.counter("icmp_error_translated") == 0 {
		t.Error("not counted")
	}
	// An error quoting a packet that did not come through the CLAT.
	other := pkt4(remote4, netip.MustParseAddr("192.0.2.9"), seg{Proto: pUDP, SPort: 53, DPort: 1})
	h.wantDropped(t, true, pkt4(IPv4, remote4, seg{Proto: pICMP, Type: 3, Code: 3, Payload: other}), "icmp_error_not_ours")
}

func TestInTranslates(t *testing.T) {
	h := newHarness(t, testPlan())
	big := bytes.Repeat([]byte{1}, 1300)
	for _, tc := range []xlatCase{
		{"RFC 7915 §5.1: TCP from PREF64 + an IPv4 address to the CLAT address becomes IPv4 to the CLAT's IPv4",
			pkt6(to6(remote4), testCLAT6, seg{Proto: pTCP, SPort: 80, DPort: 40000, Flags: 0x10, Payload: []byte("hello")}), pTCP,
			func(t *testing.T, p parsed) {
				if p.df {
					t.Error("DF set on a small packet (RFC 7915 §5.1: only above 1260 bytes)")
				}
			}},
		{"RFC 7915 §5.1: DF is set above 1260 bytes",
			pkt6(to6(remote4), testCLAT6, seg{Proto: pUDP, SPort: 53, DPort: 5353, Payload: big}), pUDP,
			func(t *testing.T, p parsed) {
				if !p.df {
					t.Error("DF not set")
				}
			}},
		{"RFC 7915 §5.2: an ICMPv6 echo reply becomes an ICMP echo reply",
			pkt6(to6(remote4), testCLAT6, seg{Proto: pICMP, Type: 129, ID: 77, Payload: []byte("pong")}), pICMP,
			func(t *testing.T, p parsed) {
				if p.l4[0] != 0 || binary.BigEndian.Uint16(p.l4[4:]) != 77 {
					t.Errorf("ICMP type %d id %d", p.l4[0], binary.BigEndian.Uint16(p.l4[4:]))
				}
			}},
		{"RFC 6935: a UDP checksum of zero stays zero (none, in IPv4)",
			pkt6(to6(remote4), testCLAT6, seg{Proto: pUDP, SPort: 1, DPort: 2, NoChecksum: true}), pUDP,
			func(t *testing.T, p parsed) {
				if binary.BigEndian.Uint16(p.l4[6:]) != 0 {
					t.Error("zero UDP checksum changed")
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ret, out := h.run(false, tc.in)
			if ret != bpftest.ActOK {
				t.Fatalf("verdict %d, want pass to the stack", ret)
			}
			// The kernel decrements the TTL when it forwards on.
			p := parse(t, out)
			wantForwarded(t, p, false, remote4, IPv4, tc.proto)
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

// mss.h: the peer's SYN-ACK tells the legacy host how big to make its
// segments, which leave by clat0: at most its MTU (1472) minus 40.
func TestInClampsMSS(t *testing.T) {
	h := newHarness(t, testPlan())
	ret, out := h.run(false, pkt6(to6(remote4), testCLAT6, seg{Proto: pTCP, SPort: 443, DPort: 1, Flags: 0x12, TCPOpts: mss(1440)}))
	if ret != bpftest.ActOK {
		t.Fatalf("verdict %d", ret)
	}
	got, _ := bpftest.MSS(parse(t, out).l4)
	if want := testPlan().MTU() - 40; int(got) != want {
		t.Errorf("MSS %d, want %d", got, want)
	}
}

func TestInFragment(t *testing.T) {
	h := newHarness(t, testPlan())
	src := to6(remote4)
	l4 := seg{Proto: pUDP, SPort: 53, DPort: 1, Payload: make([]byte, 100)}.Bytes(src, testCLAT6)
	fh := []byte{pUDP, 0, 0, 1, 0, 0, 0xab, 0xcd} // offset 0, M=1, id 0xabcd
	ret, out := h.run(false, ip6(src, testCLAT6, pFrag, 63, append(fh, l4[:56]...)))
	if ret != bpftest.ActOK {
		t.Fatalf("verdict %d", ret)
	}
	p := parse(t, out)
	if !p.more || p.fragOff != 0 || p.id != 0xabcd || p.proto != pUDP {
		t.Errorf("RFC 7915 §5.1.1: MF %v offset %d id %#x proto %d; want MF, 0, 0xabcd, UDP", p.more, p.fragOff, p.id, p.proto)
	}
}

func TestInNotOurs(t *testing.T) {
	h := newHarness(t, testPlan())
	other := netip.MustParseAddr("2001:db8:1000::99")
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"to another address: the next program's", pkt6(to6(remote4), other, seg{Proto: pUDP, SPort: 1, DPort: 2})},
		{"IPv4: the next program's", pkt4(remote4, IPv4, seg{Proto: pUDP, SPort: 1, DPort: 2})},
		{"RFC 4861: neighbour solicitation for the claimed address is the kernel's",
			pkt6(netip.MustParseAddr("fe80::1"), testCLAT6, seg{Proto: pICMP, Type: 135, Payload: testCLAT6.AsSlice()})},
		{"not from the NAT64 prefix: left to the stack", pkt6(router6, testCLAT6, seg{Proto: pUDP, SPort: 1, DPort: 2})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ret, out := h.run(false, tc.in)
			if ret != bpftest.ActNext || !bytes.Equal(out, tc.in) {
				t.Errorf("verdict %d, want next with the packet untouched", ret)
			}
		})
	}
}

// RFC 7915 §5.2 with RFC 6791: a Packet Too Big from a router between the
// gizmo and the NAT64 (no IPv4 form) becomes Fragmentation Needed from
// 192.0.0.8 with the MTU minus 20, capped at clat0's, and the quoted
// packet translated back to the CLAT's IPv4.
func TestInICMPError(t *testing.T) {
	h := newHarness(t, testPlan())
	sent := pkt6(testCLAT6, to6(remote4), seg{Proto: pTCP, SPort: 40000, DPort: 443, Flags: 0x10, Payload: make([]byte, 64)})
	for _, tc := range []struct {
		name         string
		from         netip.Addr
		typ, code    uint8
		rest         uint32
		src4         netip.Addr
		wantT, wantC uint8
		wantMTU      int
	}{
		{"RFC 6791: packet too big from a router", router6, 2, 0, 1400, Dummy4, 3, 4, 1380},
		{"RFC 7915 §5.2: the MTU is capped at clat0's", router6, 2, 0, 9000, Dummy4, 3, 4, testPlan().MTU()},
		{"RFC 7915 §5.2: host unreachable from the NAT64", to6(remote4), 1, 3, 0, remote4, 3, 1, 0},
		{"RFC 7915 §5.2: time exceeded", router6, 3, 0, 0, Dummy4, 11, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ret, out := h.run(false, pkt6(tc.from, testCLAT6, seg{Proto: pICMP, Type: tc.typ, Code: tc.code, Rest: tc.rest, Payload: sent}))
			if ret != bpftest.ActOK {
				t.Fatalf("verdict %d", ret)
			}
			p := parse(t, out)
			if p.src != tc.src4 || p.dst != IPv4 || p.proto != pICMP || p.l4[0] != tc.wantT || p.l4[1] != tc.wantC {
				t.Fatalf("%v → %v ICMP %d/%d; want %v → %v %d/%d", p.src, p.dst, p.l4[0], p.l4[1], tc.src4, IPv4, tc.wantT, tc.wantC)
			}
			if tc.wantMTU != 0 {
				if got := int(binary.BigEndian.Uint16(p.l4[6:])); got != tc.wantMTU {
					t.Errorf("MTU %d, want %d", got, tc.wantMTU)
				}
			}
			in := parse(t, p.l4[8:])
			if in.src != IPv4 || in.dst != remote4 || in.proto != pTCP {
				t.Errorf("quoted %v → %v proto %d, want %v → %v TCP", in.src, in.dst, in.proto, IPv4, remote4)
			}
		})
	}
	// An error quoting a packet the CLAT did not send.
	foreign := pkt6(netip.MustParseAddr("2001:db8:1000::99"), to6(remote4), seg{Proto: pUDP, SPort: 1, DPort: 2})
	h.wantDropped(t, false, pkt6(router6, testCLAT6, seg{Proto: pICMP, Type: 1, Code: 0, Payload: foreign}), "icmp_error_not_ours")
}

func TestInDrops(t *testing.T) {
	h := newHarness(t, testPlan())
	for _, tc := range []struct {
		name    string
		in      []byte
		counter string
	}{
		{"a payload length beyond the packet is malformed",
			func() []byte { b := pkt6(to6(remote4), testCLAT6, seg{Proto: pUDP}); b[5] += 8; return b }(), "malformed"},
		{"RFC 7915 §5.2: MLD and other single-hop ICMPv6 from the prefix are dropped",
			pkt6(to6(remote4), testCLAT6, seg{Proto: pICMP, Type: 143}), "unsupported"},
		{"RFC 7915 §5.1: a routing header with segments left is not translated",
			ip6(to6(remote4), testCLAT6, 43, 63, append([]byte{pUDP, 0, 0, 1, 0, 0, 0, 0}, seg{Proto: pUDP}.Bytes(to6(remote4), testCLAT6)...)), "unsupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.wantDropped(t, false, tc.in, tc.counter)
		})
	}
}

// A packet out and its reply back: what the NAT64 would do in between
// (swap the addresses) gives the same flow back, checksums intact.
func TestRoundTrip(t *testing.T) {
	h := newHarness(t, testPlan())
	ret, out := h.run(true, pkt4(IPv4, remote4, seg{Proto: pTCP, SPort: 40000, DPort: 80, Flags: 0x10, Payload: []byte("GET /")}))
	if ret != bpftest.ActRedirect {
		t.Fatalf("out: verdict %d", ret)
	}
	p := parse(t, out)
	reply := seg{Proto: pTCP, SPort: 80, DPort: 40000, Flags: 0x10, Payload: []byte("200 OK")}
	ret, back := h.run(false, pkt6(p.dst, p.src, reply))
	if ret != bpftest.ActOK {
		t.Fatalf("in: verdict %d", ret)
	}
	b := parse(t, back)
	if b.src != remote4 || b.dst != IPv4 || !bytes.Equal(b.l4, reply.Bytes(remote4, IPv4)) {
		t.Errorf("reply %v → %v % x, want the IPv4 reply", b.src, b.dst, b.l4)
	}
}

// wantForwarded checks a translated packet's IP version, addresses and
// protocol, and that it keeps the hop limit (or TTL) and traffic class
// (or TOS) of the packets pkt4 and pkt6 build: 63 (the kernel took its
// hop off before the program) and 0x28.
func wantForwarded(t *testing.T, p parsed, v6 bool, src, dst netip.Addr, proto uint8) {
	t.Helper()
	if p.v6 != v6 || p.src != src || p.dst != dst || p.proto != proto {
		t.Fatalf("got IPv6 %v %v → %v proto %d, want IPv6 %v %v → %v proto %d", p.v6, p.src, p.dst, p.proto, v6, src, dst, proto)
	}
	if p.ttl != 63 || p.tos != 0x28 {
		t.Errorf("hop limit (TTL) %d, traffic class (TOS) %#x; want 63, 0x28", p.ttl, p.tos)
	}
}
