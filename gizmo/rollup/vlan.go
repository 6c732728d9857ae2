package rollup

import "codeberg.org/monostack/gizmo/services/vlan"

// vlanMetrics are the uplink's 802.1Q tagger's (services/vlan), present
// while the uplink is on a VLAN. The drops are frames a VLAN device would
// never have seen: untagged, or of another VLAN on the same wire.
var vlanMetrics = []family[vlan.Stats]{
	counter("gizmo_wan_vlan_received_total", "Frames of the WAN's VLAN received and untagged.", func(s vlan.Stats) uint64 { return s.Received }),
	counter("gizmo_wan_vlan_sent_total", "Frames tagged with the WAN's VLAN on their way out.", func(s vlan.Stats) uint64 { return s.Sent }),
	counterBy("gizmo_wan_vlan_dropped_total", "Frames the WAN's VLAN dropped, by reason.", "reason", func(s vlan.Stats) map[string]uint64 {
		return map[string]uint64{"untagged": s.DroppedUntagged, "other-vlan": s.DroppedOtherVLAN, "already-tagged": s.DroppedTagged, "helper-failed": s.Failed}
	}),
}
