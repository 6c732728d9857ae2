package derive

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// Derive drops the pinholes that no longer open anything: expired ones,
// all of a host whose policy was turned off, and those of an address the
// host was not seen with for HostAddrTTL.
func TestDeriveDropsPinholes(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a, old := netip.MustParseAddr("2001:db8:1000:100::a"), netip.MustParseAddr("2001:db8:1000:100::a0")
	host := func(on bool) *state.Host {
		return &state.Host{MAC: "02:00:00:00:00:0a", Policy: state.HostPolicy{AppPinholes: on},
			Addrs: map[netip.Addr]time.Time{a: now, old: now.Add(-HostAddrTTL - time.Minute)},
			Pinholes: []state.Pinhole{
				{ID: 1, Client: a, Proto: 6, Port: 8090, Expires: now.Add(time.Hour)},
				{ID: 2, Client: a, Proto: 6, Port: 8091, Expires: now},                  // lease ended
				{ID: 3, Client: old, Proto: 6, Port: 8092, Expires: now.Add(time.Hour)}, // address forgotten
			}}
	}
	for _, tc := range []struct {
		name string
		on   bool
		want []uint16
	}{
		{"expired pinholes and those of a forgotten address go", true, []uint16{1}},
		{"the policy turned off: every pinhole goes", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.State{Hosts: map[string]*state.Host{"02:00:00:00:00:0a": host(tc.on)}}
			Derive(st, Settings{}, now)
			var got []uint16
			for _, p := range st.Hosts["02:00:00:00:00:0a"].Pinholes {
				got = append(got, p.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("pinholes %v, want %v", got, tc.want)
			}
		})
	}
}

// RecordPinhole replaces a renewed pinhole in place and adds a new one,
// whose ID becomes the last handed out; RemovePinhole closes one.
func TestRecordPinhole(t *testing.T) {
	a := netip.MustParseAddr("2001:db8:1000:100::a")
	st := &state.State{LastPinholeID: 5, Hosts: map[string]*state.Host{"m": {MAC: "m"}}}
	RecordPinhole(st, "m", state.Pinhole{ID: 6, Client: a, Port: 8090})
	RecordPinhole(st, "m", state.Pinhole{ID: 6, Client: a, Port: 8090, Expires: time.Unix(1, 0)})
	RecordPinhole(st, "m", state.Pinhole{ID: 7, Client: a, Port: 8091})
	RecordPinhole(st, "nobody", state.Pinhole{ID: 8})
	h := st.Hosts["m"]
	if len(h.Pinholes) != 2 || !h.Pinholes[0].Expires.Equal(time.Unix(1, 0)) || st.LastPinholeID != 7 {
		t.Fatalf("pinholes %+v, last ID %d", h.Pinholes, st.LastPinholeID)
	}
	RemovePinhole(st, "m", 6)
	if len(h.Pinholes) != 1 || h.Pinholes[0].ID != 7 {
		t.Errorf("after removing 6: %+v", h.Pinholes)
	}
}
