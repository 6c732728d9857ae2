package plan

import (
	"maps"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

func TestHostNames(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	announced := func(name string, since time.Time) *state.Host {
		return &state.Host{Hostname: name, HostnameSince: since, Policy: state.DefaultHostPolicy()}
	}
	for _, tc := range []struct {
		name              string
		hosts             map[string]*state.Host
		remembered        map[string]state.HostRecord
		wantHeld, wantTkn map[string]string
	}{
		{
			name: "a name in use stays with the host that announced it first",
			hosts: map[string]*state.Host{
				"02:00:00:00:00:01": announced("laptop", t0.Add(time.Hour)),
				"02:00:00:00:00:02": announced("laptop", t0),
			},
			wantHeld: map[string]string{"02:00:00:00:00:02": "laptop"},
			wantTkn:  map[string]string{"02:00:00:00:00:01": "laptop"},
		},
		{
			name: "RFC 1123 2.1: names that reduce to one label are one name",
			hosts: map[string]*state.Host{
				"02:00:00:00:00:01": announced("My Laptop", t0),
				"02:00:00:00:00:02": announced("my-laptop.local", t0.Add(time.Second)),
			},
			wantHeld: map[string]string{"02:00:00:00:00:01": "my-laptop"},
			wantTkn:  map[string]string{"02:00:00:00:00:02": "my-laptop"},
		},
		{
			name: "a name the owner set wins over an announced one, however old",
			hosts: map[string]*state.Host{
				"02:00:00:00:00:01": announced("nas", t0.Add(-24*time.Hour)),
				"02:00:00:00:00:02": {Hostname: "diskstation", Policy: state.HostPolicy{DNS64: true, V6OnlyPreferred: true, Hostname: "NAS"}},
			},
			wantHeld: map[string]string{"02:00:00:00:00:02": "nas"},
			wantTkn:  map[string]string{"02:00:00:00:00:01": "nas"},
		},
		{
			name:  "a remembered host keeps its name while it is away",
			hosts: map[string]*state.Host{"02:00:00:00:00:01": announced("printer", t0)},
			remembered: map[string]state.HostRecord{
				"02:00:00:00:00:02": {Hostname: "printer", HostnameSince: t0.Add(-time.Hour), Policy: state.DefaultHostPolicy()},
			},
			wantHeld: map[string]string{"02:00:00:00:00:02": "printer"},
			wantTkn:  map[string]string{"02:00:00:00:00:01": "printer"},
		},
		{
			name: "a record without HostnameSince counts from its first sighting",
			hosts: map[string]*state.Host{
				"02:00:00:00:00:01": announced("tv", t0),
				"02:00:00:00:00:02": {Hostname: "tv", FirstSeen: t0.Add(-time.Hour), Policy: state.DefaultHostPolicy()},
			},
			wantHeld: map[string]string{"02:00:00:00:00:02": "tv"},
			wantTkn:  map[string]string{"02:00:00:00:00:01": "tv"},
		},
		{
			name:     "RFC 8375: the gizmo's own name is nobody else's",
			hosts:    map[string]*state.Host{"02:00:00:00:00:01": announced("Gizmo", t0)},
			wantHeld: map[string]string{},
			wantTkn:  map[string]string{"02:00:00:00:00:01": "gizmo"},
		},
		{
			name:     "a name that reduces to nothing is no claim",
			hosts:    map[string]*state.Host{"02:00:00:00:00:01": announced("---", t0)},
			wantHeld: map[string]string{},
			wantTkn:  map[string]string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.State{Hosts: tc.hosts, Remembered: tc.remembered}
			held, taken := HostNames(st)
			if !maps.Equal(held, tc.wantHeld) || !maps.Equal(taken, tc.wantTkn) {
				t.Errorf("HostNames = %v, %v; want %v, %v", held, taken, tc.wantHeld, tc.wantTkn)
			}
		})
	}
}
