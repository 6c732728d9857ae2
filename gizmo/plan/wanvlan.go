package plan

import (
	"fmt"

	"codeberg.org/monostack/gizmo/services/vlan"
)

// Where the WAN's VLAN ID comes from (state.RolesStatus.WANVLANFrom).
const (
	WANVLANFromFlag      = "flag"      // -wan-vlan
	WANVLANFromDashboard = "dashboard" // the owner's setting
	WANVLANDetected      = "detected"  // role detection heard the upstream on it
)

// WANVLAN is the VLAN the uplink must be on before anything is detected:
// the -wan-vlan flag (flag) wins over the owner's dashboard setting
// (setting), because the flag is the image's configuration and the
// dashboard cannot change it. Neither set (0, ""): the uplink is untagged
// unless role detection hears its upstream on one of the common ISP VLANs.
func WANVLAN(flag, setting uint16) (id uint16, from string) {
	switch {
	case flag != 0:
		return flag, WANVLANFromFlag
	case setting != 0:
		return setting, WANVLANFromDashboard
	}
	return 0, ""
}

// ValidateWANVLAN checks the owner's WAN VLAN setting: 0 (none set) or a
// VLAN ID a port can be put on (IEEE 802.1Q: 1..4094).
func ValidateWANVLAN(id int) error {
	if id == 0 {
		return nil
	}
	if err := vlan.ValidID(id); err != nil {
		return fmt.Errorf("WAN VLAN: %w", err)
	}
	return nil
}
