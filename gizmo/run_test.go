package main

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"codeberg.org/monostack/gizmo/services/roles"
)

func TestWithoutUpstream(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ports []string
		want  roles.Roles
		ok    bool
	}{
		{"first boot, nothing heard: every port is LAN, no WAN yet",
			[]string{"eth0", "eth1", "eth2"}, roles.Roles{LANPorts: []string{"eth0", "eth1", "eth2"}}, true},
		{"the WAN of an earlier run keeps its role while its modem boots",
			[]string{"eth0", "uplink0"}, roles.Roles{WAN: "uplink0", LANPorts: []string{"eth0"}}, true},
		{"one port: no LAN of its own, it could be someone else's network",
			[]string{"eth0"}, roles.Roles{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := withoutUpstream(tc.ports)
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("withoutUpstream(%v) = %+v, %v; want %+v, %v", tc.ports, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// main loops on a *rolesChanged from run, also when it comes wrapped.
func TestRolesChangedIsTyped(t *testing.T) {
	rc := &rolesChanged{decision: roles.Decision{Roles: roles.Roles{WAN: "eth1", LANPorts: []string{"eth0"}}, Reason: "eth1 hears a default router"}}
	var next *rolesChanged
	if !errors.As(fmt.Errorf("run: %w", rc), &next) || next != rc {
		t.Fatalf("errors.As did not find the roles change")
	}
	if want := "roles changed to WAN eth1, LAN eth0: eth1 hears a default router"; rc.Error() != want {
		t.Errorf("Error() = %q, want %q", rc.Error(), want)
	}
}
