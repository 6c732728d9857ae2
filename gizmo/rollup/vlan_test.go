package rollup

import (
	"testing"

	"codeberg.org/monostack/gizmo/services/vlan"
)

// The uplink's VLAN: what it passed and, by reason, what it dropped.
func TestVLANMetrics(t *testing.T) {
	wantExposed(t, Stats{VLAN: &vlan.Stats{Received: 5, Sent: 4, DroppedUntagged: 3, DroppedOtherVLAN: 2}},
		"# TYPE gizmo_wan_vlan_received_total counter\ngizmo_wan_vlan_received_total 5\n",
		"# TYPE gizmo_wan_vlan_sent_total counter\ngizmo_wan_vlan_sent_total 4\n",
		`gizmo_wan_vlan_dropped_total{reason="other-vlan"} 2`+"\n",
		`gizmo_wan_vlan_dropped_total{reason="untagged"} 3`+"\n",
	)
	if m := Metrics(Stats{}); len(m) != 0 {
		t.Errorf("no service running, an untagged uplink: %d metrics, want none", len(m))
	}
}
