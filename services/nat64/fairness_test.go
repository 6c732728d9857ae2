package nat64

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// The hosts of a home share one /64: per-host fairness counts a host by
// the Ethernet source of its packets, whatever addresses it uses.

var macC = []byte{0x02, 0, 0, 0, 0, 0xc}

func TestRFC8981RotatingHostMeetsItsMACLimitNotItsNeighbours(t *testing.T) {
	p := testPlan()
	p.MaxSessionsPerMAC = 10
	p.MaxSessionsPerHost = 4
	h := newHarness(t, p, 0)
	// One host (macB) rotates through five addresses of the LAN's /64,
	// four new flows each: its MAC holds ten, whatever the addresses.
	h.rotate(p, 5, 4, 10, "mac_limit_refused")
	if got := h.dp.quota.chargedMAC(h.dp.seed, [6]byte(macB)); got != 10 {
		t.Errorf("the host's MAC is charged %d sessions, want 10", got)
	}
	// Its neighbour in the same /64 (another MAC) opens its flows, from
	// an address of its own and from one the first host used.
	h.src = macC
	for port := range uint16(4) {
		h.out(t, p, hostB, remote1, seg{Proto: ProtoUDP, SPort: 1000 + port, DPort: 53})
	}
	h.out(t, p, lanAddr(9), remote1, seg{Proto: ProtoUDP, SPort: 1000, DPort: 53})
	if h.counter("prefix_limit_refused") != 0 || h.counter("host_limit_refused") != 0 {
		t.Errorf("the neighbour was refused: counters %v", mustCounters(t, h))
	}
	// The reaper gives back exactly what each session was charged: once
	// they expire, the first host has its whole limit again.
	h.advance(uint64(UDPTimeout + time.Second))
	if _, err := h.dp.reap(h.now); err != nil {
		t.Fatal(err)
	}
	if got := h.dp.quota.chargedMAC(h.dp.seed, [6]byte(macB)); got != 0 {
		t.Errorf("after every session expired the host's MAC is charged %d", got)
	}
	h.src = macB
	for a := range 3 {
		for port := range 3 {
			h.out(t, p, lanAddr(10+a), remote1, seg{Proto: ProtoUDP, SPort: uint16(2000 + port), DPort: 53})
		}
	}
}

func TestDefaultLimitsAreSharesOfTheTable(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		table                     uint32
		per64, perMAC, perAddress uint32
	}{
		{"the shipped table", DefaultMaxSessions, 98304, 16384, 8192},
		{"a smaller table", 1000, 750, 125, 62},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := testPlan().toConfig(tc.table)
			if err != nil {
				t.Fatal(err)
			}
			if c.MaxSessionsPer64 != tc.per64 || c.MaxSessionsPerMac != tc.perMAC || c.MaxSessionsPerHost != tc.perAddress {
				t.Errorf("per /64, MAC, address: %d, %d, %d; want %d, %d, %d", c.MaxSessionsPer64, c.MaxSessionsPerMac,
					c.MaxSessionsPerHost, tc.per64, tc.perMAC, tc.perAddress)
			}
		})
	}
	if DefaultMaxSessionsPer64 != 98304 || DefaultMaxSessionsPerMAC != 16384 || DefaultMaxSessionsPerHost != 8192 {
		t.Errorf("the exported defaults disagree with the table's shares")
	}
	// An address's share is part of its host's.
	p := testPlan()
	p.MaxSessionsPerMAC = 100
	p.MaxSessionsPerHost = 200
	if _, err := p.toConfig(DefaultMaxSessions); err == nil {
		t.Error("an address's share above its host's limit was accepted")
	}
}

// TestFilterTableFullIsCounted: a session whose remote finds no room in
// the address-dependent filtering table still works, and the missing
// entry is counted, not ignored.
func TestFilterTableFullIsCounted(t *testing.T) {
	p := testPlan()
	p.MaxSessionsPer64, p.MaxSessionsPerMAC, p.MaxSessionsPerHost = 64, 64, 64
	h := newHarness(t, p, 8)
	remote := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}) }
	for i := range 8 {
		h.out(t, p, hostA, remote(i), seg{Proto: ProtoUDP, SPort: 4000, DPort: 53})
	}
	// The sessions go (as a pool flush removes them), their filter
	// entries stay for their grace period: the filter table is full.
	var k nat64SessKey
	var v nat64SessVal
	var keys []nat64SessKey
	for it := h.dp.objs.Nat64Sess.Iterate(); it.Next(&k, &v); {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if _, err := h.dp.removeSession(k, &v); err != nil {
			t.Fatal(err)
		}
	}
	o := h.out(t, p, hostA, remote(8), seg{Proto: ProtoUDP, SPort: 4000, DPort: 53})
	if got := h.counter("filter_table_full"); got != 1 {
		t.Errorf("filter_table_full = %d after a session without room for its filter entry", got)
	}
	// Its replies still come back; the remote's other ports stay out.
	if ret, _ := h.send(false, pkt4(remote(8), pool, seg{Proto: ProtoUDP, SPort: 53, DPort: o.sport})); ret != bpftest.ActRedirect {
		t.Errorf("reply of the session: verdict %d", ret)
	}
	if ret, _ := h.send(false, pkt4(remote(8), pool, seg{Proto: ProtoUDP, SPort: 54, DPort: o.sport})); ret != bpftest.ActShot {
		t.Errorf("another port of the remote: verdict %d", ret)
	}
	// A static binding lets any remote open a session; without room for
	// its filter entry, that is counted too.
	if err := h.dp.addStatic(StaticBinding{Proto: ProtoUDP, Host: netip.AddrPortFrom(hostB, 7000), PoolPort: 7000}); err != nil {
		t.Fatal(err)
	}
	if ret, _ := h.send(false, pkt4(remote(9), pool, seg{Proto: ProtoUDP, SPort: 53, DPort: 7000})); ret != bpftest.ActRedirect {
		t.Errorf("inbound session on a static binding: verdict %d", ret)
	}
	if got := h.counter("filter_table_full"); got != 2 {
		t.Errorf("filter_table_full = %d, want 2", got)
	}
}

// TestRFC6146ICMPQueryFromIPv4OpensNoSession: an ICMP query session is its
// identifier and remote whole, so with address-dependent filtering a query
// from the IPv4 side must match an existing session (RFC 6146 §3.5.3); it
// never opens one, even while the binding's filter entry for that remote
// lingers. A static binding (an invitation) still lets it in.
func TestRFC6146ICMPQueryFromIPv4OpensNoSession(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	e := h.out(t, p, hostA, remote1, seg{Proto: ProtoICMP, ID: 77, Type: 128})
	echo := func(id uint16) []byte { return pkt4(remote1, pool, seg{Proto: ProtoICMP, ID: id, Type: 8}) }
	if ret, _ := h.send(false, echo(e.sport)); ret != bpftest.ActRedirect {
		t.Fatalf("echo request of the existing session: verdict %d", ret)
	}
	// The session goes (as a pool flush removes it); its filter entry
	// stays for its grace period.
	var v nat64SessVal
	k := nat64SessKey{Addr6: hostA.As16(), Addr4: be32(remote1), Port6: be16(77), Proto: ProtoICMP}
	if ok, err := h.dp.removeSession(k, &v); err != nil || !ok {
		t.Fatalf("remove the session: %v %v", ok, err)
	}
	before := h.counter("filtered")
	if ret, _ := h.send(false, echo(e.sport)); ret != bpftest.ActShot || h.counter("filtered") != before+1 {
		t.Errorf("echo request without a session: verdict %d, filtered %d (was %d)", ret, h.counter("filtered"), before)
	}
	if err := h.dp.addStatic(StaticBinding{Proto: ProtoICMP, Host: netip.AddrPortFrom(hostB, 9), PoolPort: 9}); err != nil {
		t.Fatal(err)
	}
	if ret, _ := h.send(false, echo(9)); ret != bpftest.ActRedirect {
		t.Errorf("echo request to a static binding: verdict %d", ret)
	}
}
