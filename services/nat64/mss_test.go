package nat64

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// synOptions is a SYN's option list as Linux sends it (MSS, SACK
// permitted, timestamps, window scale), with the MSS option at offset at
// (after at no-ops) and the list padded to a multiple of four.
func synOptions(mss uint16, at int) []byte {
	var o []byte
	for range at {
		o = append(o, 1)
	}
	o = append(o, 2, 4, byte(mss>>8), byte(mss))
	o = append(o, 4, 2)                          // SACK permitted
	o = append(o, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0) // timestamps
	o = append(o, 1, 3, 3, 7)                    // no-op, window scale 7
	for len(o)%4 != 0 {
		o = append(o, 0)
	}
	return o
}

// withoutMSS is the option bytes of a TCP header with the MSS value
// zeroed, to check that nothing else changed.
func withoutMSS(tcp []byte, at int) []byte {
	hl := int(tcp[12]>>4) * 4
	o := append([]byte{}, tcp[20:hl]...)
	o[at+2], o[at+3] = 0, 0
	return o
}

// TestMSSClamp checks the clamp of bpf/mss.h: on a SYN translated 6→4 the
// MSS is at most LAN MTU − 60, so that the IPv4 peer's segments still fit
// the LAN after growing by 20 bytes into IPv6 (GSO packets are not checked
// against the MTU and, since Linux 5.13, bpf_skb_change_proto keeps their
// gso_size); on a SYN translated 4→6 it is at most WAN MTU − 40, so that
// the IPv6 host's segments fit the WAN as IPv4. The checksum stays valid
// (parse checks it), the other options are untouched.
func TestMSSClamp(t *testing.T) {
	const syn, ack = 0x02, 0x10
	p := testPlan()
	p.LANMTU = 1500
	p.WANMTU = 1400
	h := newHarness(t, p, 0)

	out := []struct {
		rule   string
		mss    uint16
		at     int // no-ops before the MSS option: odd offsets straddle checksum words
		flags  uint8
		want   uint16
		clamps bool
	}{
		{"6→4 SYN of an IPv4 stack behind a CLAT: MTU − 40 lowered to LAN MTU − 60", 1460, 0, syn, 1440, true},
		{"6→4 SYN one over the limit is lowered", 1441, 0, syn, 1440, true},
		{"6→4 SYN at the limit is kept", 1440, 0, syn, 1440, false},
		{"6→4 SYN below the limit is kept", 1220, 0, syn, 1220, false},
		{"6→4 SYN with the MSS at an odd offset", 9000, 1, syn, 1440, true},
		{"6→4 SYN with the MSS after three no-ops", 65535, 3, syn, 1440, true},
		{"6→4 SYN-ACK (inbound connection to a static binding)", 1460, 0, syn | ack, 1440, true},
		{"RFC 9293 §3.2: MSS only in a SYN; other segments untouched", 1460, 0, ack, 1460, false},
	}
	for i, c := range out {
		t.Run(c.rule, func(t *testing.T) {
			before := h.counter("mss_clamped")
			opts := synOptions(c.mss, c.at)
			sport := uint16(41000 + i)
			if c.flags&syn == 0 {
				// A session to carry the non-SYN segment.
				h.out(t, p, hostA, remote1, seg{Proto: ProtoTCP, SPort: sport, DPort: 80, Flags: syn})
			}
			o := h.out(t, p, hostA, remote1, seg{Proto: ProtoTCP, SPort: sport, DPort: 80, Flags: c.flags, TCPOpts: opts})
			got, ok := bpftest.MSS(o.l4)
			if !ok || got != c.want {
				t.Errorf("MSS %d (found %v), want %d", got, ok, c.want)
			}
			in := seg{Proto: ProtoTCP, Flags: c.flags, TCPOpts: opts}
			want := withoutMSS(in.Bytes(hostA, remote1), c.at)
			if g := withoutMSS(o.l4, c.at); !bytes.Equal(g, want) {
				t.Errorf("options changed:\n got % x\nwant % x", g, want)
			}
			if d := h.counter("mss_clamped") - before; d != map[bool]uint64{true: 1}[c.clamps] {
				t.Errorf("mss_clamped went up by %d", d)
			}
		})
	}

	// 4→6: the IPv4 server's SYN-ACK. A session first.
	o := h.out(t, p, hostA, remote2, seg{Proto: ProtoTCP, SPort: 42000, DPort: 443, Flags: syn})
	for _, c := range []struct {
		rule      string
		mss, want uint16
		at        int
	}{
		{"4→6 SYN-ACK over WAN MTU − 40 is lowered (the IPv6 host's segments fit the WAN)", 1460, 1360, 0},
		{"4→6 SYN-ACK at WAN MTU − 40 is kept", 1360, 1360, 0},
		{"4→6 SYN-ACK with the MSS at an odd offset", 1461, 1360, 1},
	} {
		t.Run(c.rule, func(t *testing.T) {
			opts := synOptions(c.mss, c.at)
			ret, b := h.send(false, pkt4(remote2, pool, seg{Proto: ProtoTCP, SPort: 443, DPort: o.sport, Flags: syn | ack, TCPOpts: opts}))
			if ret != bpftest.ActRedirect {
				t.Fatalf("verdict %d", ret)
			}
			r := parse(t, b)
			if got, ok := bpftest.MSS(r.l4); !ok || got != c.want {
				t.Errorf("MSS %d (found %v), want %d", got, ok, c.want)
			}
			if g, w := withoutMSS(r.l4, c.at), withoutMSS(seg{Proto: ProtoTCP, TCPOpts: opts}.Bytes(remote2, pool), c.at); !bytes.Equal(g, w) {
				t.Errorf("options changed:\n got % x\nwant % x", g, w)
			}
		})
	}

	// Options the walk does not understand are left as they are and the
	// SYN is still translated: the hosts judge their own options.
	for _, opts := range [][]byte{
		{0, 2, 4, 5, 0xb4, 0, 0, 0},  // end of list before the MSS
		{3, 0, 2, 4, 5, 0xb4, 0, 0},  // an option of length zero
		{8, 40, 2, 4, 5, 0xb4, 0, 0}, // a length past the end
		{2, 3, 5, 0xb4},              // an MSS option of the wrong length
		{1, 1, 1, 1, 1, 1, 2, 4},     // an MSS option cut by the header length
	} {
		t.Run(fmt.Sprintf("malformed % x", opts), func(t *testing.T) {
			for len(opts)%4 != 0 {
				opts = append(opts, 0)
			}
			o := h.out(t, p, hostB, remote1, seg{Proto: ProtoTCP, SPort: 43000 + uint16(opts[0])*16 + uint16(opts[1]), DPort: 80, Flags: syn, TCPOpts: opts})
			hl := int(o.l4[12]>>4) * 4
			if !bytes.Equal(o.l4[20:hl], opts) {
				t.Errorf("options changed: % x, want % x", o.l4[20:hl], opts)
			}
		})
	}
}

// TestNetnsMSSClampCLATDownload plays an IPv4 stack behind a CLAT: the
// IPv6 host advertises an MSS of 1460 (its MTU − 40, as an IPv4 stack
// does) instead of 1440. Unclamped, the IPv4 server's full-sized segments
// would be 1520 bytes as IPv6, over the LAN's 1500, and the download would
// depend on Fragmentation Needed from the translator. Clamped, the SYN
// reaches the server with 1440 and nothing is ever too big.
func TestNetnsMSSClampCLATDownload(t *testing.T) {
	tp, s := runTopo(t, 1500, Config{})
	sh(t, in(tp.h6, "ip", "-6", "route", "change", "default", "via", "2001:db8:1000::1", "dev", "eth0", "advmss", "1460")...)

	srv := command(in(tp.v4, "iperf3", "-s", "-1", "-B", "198.51.100.80"))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	time.Sleep(300 * time.Millisecond)
	// -R: the server sends, 8 MB of IPv4→IPv6 segments.
	out, err := command(in(tp.h6, "iperf3", "-c", "64:ff9b::198.51.100.80", "-R", "-n", "8M", "-J")).CombinedOutput()
	if err != nil {
		t.Fatalf("iperf3 -R through NAT64: %v\n%s", err, out)
	}
	srv.Wait()
	c := s.Stats().Counters
	if c["mss_clamped"] == 0 {
		t.Errorf("no SYN clamped: %v", c)
	}
	if c["too_big"] != 0 {
		t.Errorf("%d packets too big for the LAN despite the clamp: %v", c["too_big"], c)
	}
}
