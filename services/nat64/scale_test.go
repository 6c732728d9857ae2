package nat64

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// TestScale100kSessions fills the table with 100 000 sessions (20 000
// bindings × 5 remotes, as endpoint-independent mapping shares a binding
// between destinations) and checks that none is refused and that a reaper
// pass sees them all. The pass time is logged, not asserted.
func TestScale100kSessions(t *testing.T) {
	if os.Getenv("GIZMO_SLOW") == "" {
		t.Skip("slow: set GIZMO_SLOW=1")
	}
	p := testPlan()
	p.PortsHigh = PortRange{1024, 65535}
	// Every host of the test is in one /64, and 100 000 sessions are
	// more than a /64's default three quarters of the table.
	p.MaxSessionsPer64 = 131072
	h := newHarness(t, p, 131072)
	remotes := []netip.Addr{}
	for i := range 5 {
		remotes = append(remotes, netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)}))
	}
	start := time.Now()
	for b := range 20000 {
		host := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(b >> 12), byte(b >> 8 & 0xf)})
		// Each host has its own MAC, as on a LAN.
		h.src = []byte{0x02, 0, 0, 0, byte(b >> 12), byte(b >> 8 & 0xf)}
		for _, r := range remotes {
			ret, _ := h.run(true, pkt6(host, to6(p, r), seg{Proto: ProtoUDP, SPort: uint16(1024 + b&0xff), DPort: 53}))
			if ret != bpftest.ActRedirect {
				t.Fatalf("binding %d to %v: verdict %d (counters %v)", b, r, ret, mustCounters(t, h))
			}
		}
	}
	t.Logf("100000 sessions created in %v", time.Since(start))
	start = time.Now()
	res, err := h.dp.reap(h.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reaper pass over %d sessions, %d bindings: %v", res.Sessions, res.Bindings, time.Since(start))
	if res.Sessions != 100000 || res.Bindings != 20000 {
		t.Errorf("%d sessions, %d bindings", res.Sessions, res.Bindings)
	}
	for _, k := range []string{"table_full", "ports_exhausted", "host_limit_refused", "mac_limit_refused", "prefix_limit_refused", "filter_table_full"} {
		if n := h.counter(k); n != 0 {
			t.Errorf("%s = %d", k, n)
		}
	}
	h.advance(uint64(UDPTimeout) + uint64(time.Second))
	start = time.Now()
	res, err = h.dp.reap(h.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reaper pass expiring %d sessions: %v", res.Expired, time.Since(start))
	if res.Expired != 100000 {
		t.Errorf("expired %d", res.Expired)
	}
}

func mustCounters(t *testing.T, h *harness) map[string]uint64 {
	c, err := h.dp.counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
