package rollup

import (
	"net/http/httptest"
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/services/vlan"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The uplink's VLAN: what it passed and, by reason, what it dropped.
func TestVLANMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(constCollector(Metrics(Stats{VLAN: &vlan.Stats{Received: 5, Sent: 4, DroppedUntagged: 3, DroppedOtherVLAN: 2}})))
	w := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		"# TYPE gizmo_wan_vlan_received_total counter\ngizmo_wan_vlan_received_total 5\n",
		"# TYPE gizmo_wan_vlan_sent_total counter\ngizmo_wan_vlan_sent_total 4\n",
		`gizmo_wan_vlan_dropped_total{reason="other-vlan"} 2` + "\n",
		`gizmo_wan_vlan_dropped_total{reason="untagged"} 3` + "\n",
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("/metrics lacks\n%s\ngot:\n%s", want, w.Body)
		}
	}
	if m := Metrics(Stats{}); len(m) != 0 {
		t.Errorf("no service running, an untagged uplink: %d metrics, want none", len(m))
	}
}
