package lanif

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// inScratchNamespace runs f on a locked thread inside a new network
// namespace that holds a veth pair, "lan0" and its peer.
func inScratchNamespace(t *testing.T, f func()) {
	t.Helper()
	ns := testns.New(t, "lanif")
	testns.IP(t, "-n", ns, "link", "add", "lan0", "type", "veth", "peer", "name", "lan0peer")
	testns.Inside(t, ns, f)
}

func addrs(t *testing.T) string {
	out, err := exec.Command("ip", "-br", "addr", "show", "dev", "lan0").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr: %v: %s", err, out)
	}
	return string(out)
}

func TestApplyReconcilesAddresses(t *testing.T) {
	inScratchNamespace(t, func() {
		now := time.Now()
		first := Plan{Addrs: []Addr{
			{Prefix: netip.MustParsePrefix("fd00:db8:1::1/64")},
			{Prefix: netip.MustParsePrefix("fd00:db8:1::53/64"), NoPrefixRoute: true},
			{Prefix: netip.MustParsePrefix("2001:db8:1000::1/64"), ValidUntil: now.Add(time.Hour), PreferredUntil: now.Add(30 * time.Minute)},
			{Prefix: netip.MustParsePrefix("203.0.113.129/25")},
		}}
		if err := Apply("lan0", first, now); err != nil {
			t.Fatal(err)
		}
		got := addrs(t)
		for _, want := range []string{"fd00:db8:1::1/64", "fd00:db8:1::53/64", "2001:db8:1000::1/64", "203.0.113.129/25"} {
			if !strings.Contains(got, want) {
				t.Errorf("after first plan, %s missing: %s", want, got)
			}
		}
		// Renumbering: the new prefix replaces the old; an address expired by
		// its deadline is removed, and so is anything not in the plan.
		second := Plan{Addrs: []Addr{
			{Prefix: netip.MustParsePrefix("fd00:db8:1::1/64")},
			{Prefix: netip.MustParsePrefix("2001:db8:2000::1/64")},
			{Prefix: netip.MustParsePrefix("2001:db8:1000::1/64"), ValidUntil: now.Add(-time.Second)},
		}}
		if err := Apply("lan0", second, now); err != nil {
			t.Fatal(err)
		}
		got = addrs(t)
		for _, gone := range []string{"fd00:db8:1::53", "2001:db8:1000::1", "203.0.113.129"} {
			if strings.Contains(got, gone) {
				t.Errorf("after second plan, %s still present: %s", gone, got)
			}
		}
		if !strings.Contains(got, "2001:db8:2000::1/64") {
			t.Errorf("new prefix missing: %s", got)
		}
	})
}
