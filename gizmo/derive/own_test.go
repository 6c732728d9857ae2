package derive

import (
	"net"
	"testing"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

func TestDropOwnHosts(t *testing.T) {
	lan, _ := net.ParseMAC("02:00:00:00:01:01")
	for _, tc := range []struct {
		rule                string
		hosts, remembered   []string
		own                 []string
		wantHosts, wantRems int
		wantDropped         bool
	}{
		{"the LAN interface's own MAC is no host", []string{"02:00:00:00:01:01", "02:00:00:00:00:10"}, nil, nil, 1, 0, true},
		{"a bridged port's MAC (its role probe heard on the bridge) is no host", []string{"02:00:00:00:01:02", "02:00:00:00:00:10"}, nil, []string{"02:00:00:00:01:02"}, 1, 0, true},
		{"the uplink's MAC is not remembered either", nil, []string{"02:00:00:00:01:03", "02:00:00:00:00:20"}, []string{"02:00:00:00:01:03"}, 0, 1, true},
		{"other hosts stay", []string{"02:00:00:00:00:10"}, []string{"02:00:00:00:00:20"}, []string{"02:00:00:00:01:02"}, 1, 1, false},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			st := &state.State{Hosts: map[string]*state.Host{}, Remembered: map[string]state.HostRecord{}}
			st.LAN.HardwareAddr, st.LAN.OwnMACs = lan, tc.own
			for _, m := range tc.hosts {
				st.Hosts[m] = &state.Host{MAC: m}
			}
			for _, m := range tc.remembered {
				st.Remembered[m] = state.HostRecord{}
			}
			if got := DropOwnHosts(st); got != tc.wantDropped {
				t.Errorf("dropped = %v, want %v", got, tc.wantDropped)
			}
			if len(st.Hosts) != tc.wantHosts || len(st.Remembered) != tc.wantRems {
				t.Errorf("left %d hosts and %d remembered, want %d and %d", len(st.Hosts), len(st.Remembered), tc.wantHosts, tc.wantRems)
			}
		})
	}
}
