package derive

import (
	"maps"
	"slices"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// IsOwnMAC reports whether mac is one of the gizmo's own hardware
// addresses (state.LAN.OwnMACs or the LAN interface's).
func IsOwnMAC(st *state.State, mac string) bool {
	if hw := st.LAN.HardwareAddr; len(hw) > 0 && hw.String() == mac {
		return true
	}
	return slices.Contains(st.LAN.OwnMACs, mac)
}

// DropOwnHosts removes the gizmo's own ports from the hosts, the
// remembered ones included: a port whose frame was taken for a host's
// before its address was known as the gizmo's (a bridge that changed its
// MAC, a port added later) is no host, and its record would otherwise be
// persisted. It reports whether it removed any.
func DropOwnHosts(st *state.State) (dropped bool) {
	for _, mac := range slices.Collect(maps.Keys(st.Hosts)) {
		if IsOwnMAC(st, mac) {
			delete(st.Hosts, mac)
			dropped = true
		}
	}
	for _, mac := range slices.Collect(maps.Keys(st.Remembered)) {
		if IsOwnMAC(st, mac) {
			delete(st.Remembered, mac)
			dropped = true
		}
	}
	return dropped
}
