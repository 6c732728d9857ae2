package web

import (
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// /api/status says when the host table is full, so that the dashboard can
// tell why a new device is missing; /api/hosts says which host asked for
// a name another one holds.
func TestStatusHostTable(t *testing.T) {
	st := state.State{Hosts: map[string]*state.Host{
		"02:00:00:00:00:01": {MAC: "02:00:00:00:00:01"},
		"02:00:00:00:00:02": {MAC: "02:00:00:00:00:02", NameTaken: "printer"},
	}, HostTable: state.HostTableStats{Capacity: 2, Refused: 7, Evicted: 3}}
	got := statusOf(st, time.Now()).HostTable
	want := HostTableJSON{Hosts: 2, Capacity: 2, Full: true, Refused: 7, Evicted: 3, NameTaken: 1}
	if got != want {
		t.Errorf("host_table = %+v, want %+v", got, want)
	}
	st.HostTable.Capacity = 3
	if statusOf(st, time.Now()).HostTable.Full {
		t.Error("a table with room says it is full")
	}
	if h := hostOf(st.Hosts["02:00:00:00:00:02"]); h.NameTaken != "printer" {
		t.Errorf("host %+v lacks name_taken", h)
	}
}
