package derive

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

var hostsNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func macN(i int) string { return fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff) }

// fullTable is a table of MaxHosts active hosts, each seen at hostsNow.
func fullTable() *state.State {
	st := &state.State{Hosts: map[string]*state.Host{}, Remembered: map[string]state.HostRecord{}}
	for i := range MaxHosts {
		mac := macN(i)
		st.Hosts[mac] = &state.Host{MAC: mac, Addrs: map[netip.Addr]time.Time{}, Policy: state.DefaultHostPolicy(), FirstSeen: hostsNow, LastSeen: hostsNow}
	}
	return st
}

func TestStandingOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    state.Host
		want Standing
	}{
		{"seen long ago, no lease, default policy: idle", state.Host{Policy: state.DefaultHostPolicy(), LastSeen: hostsNow.Add(-HostIdle)}, StandingIdle},
		{"seen recently: active", state.Host{Policy: state.DefaultHostPolicy(), LastSeen: hostsNow.Add(-time.Minute)}, StandingActive},
		{"a DHCPv4 lease: leased, even when idle", state.Host{Policy: state.DefaultHostPolicy(), IPv4Lease: netip.MustParseAddr("203.0.113.130")}, StandingLeased},
		{"an owner-set policy: configured", state.Host{Policy: state.HostPolicy{DNS64: false, V6OnlyPreferred: true}}, StandingConfigured},
		{"an owner-set name: configured", state.Host{Policy: state.HostPolicy{DNS64: true, V6OnlyPreferred: true, Hostname: "nas"}}, StandingConfigured},
		{"apps allowed to open pinholes: configured", state.Host{Policy: state.HostPolicy{DNS64: true, V6OnlyPreferred: true, AppPinholes: true}}, StandingConfigured},
		{"a policy equal to the defaults configures nothing", state.Host{Policy: state.DefaultHostPolicy()}, StandingIdle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := StandingOf(&tc.h, hostsNow); got != tc.want {
				t.Errorf("StandingOf = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAddHostWhenFull(t *testing.T) {
	for _, tc := range []struct {
		name      string
		setup     func(st *state.State)
		newcomer  Standing
		wantEvict string // "" : refused
	}{
		{"a sighting among active hosts is refused", func(*state.State) {}, StandingActive, ""},
		{"idle hosts go first, the one seen longest ago", func(st *state.State) {
			st.Hosts[macN(7)].LastSeen = hostsNow.Add(-2 * HostIdle)
			st.Hosts[macN(3)].LastSeen = hostsNow.Add(-3 * HostIdle)
		}, StandingActive, macN(3)},
		{"an idle host with a lease is no idle host", func(st *state.State) {
			st.Hosts[macN(3)].LastSeen = hostsNow.Add(-3 * HostIdle)
			st.Hosts[macN(3)].IPv4Lease = netip.MustParseAddr("203.0.113.130")
			st.Hosts[macN(7)].LastSeen = hostsNow.Add(-2 * HostIdle)
		}, StandingActive, macN(7)},
		{"a configured host is never evicted, however idle", func(st *state.State) {
			st.Hosts[macN(3)].LastSeen = hostsNow.Add(-100 * HostIdle)
			st.Hosts[macN(3)].Policy.DNS64 = false
		}, StandingLeased, macN(0)},
		{"a leased newcomer displaces the active host seen longest ago", func(st *state.State) {
			st.Hosts[macN(9)].LastSeen = hostsNow.Add(-time.Minute)
		}, StandingLeased, macN(9)},
		{"a configured newcomer finds no room among configured hosts", func(st *state.State) {
			for _, h := range st.Hosts {
				h.Policy.ExposedPorts = []string{"tcp/22"}
			}
		}, StandingConfigured, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := fullTable()
			tc.setup(st)
			newMAC := "02:ff:00:00:00:01"
			h, created := AddHost(st, newMAC, tc.newcomer, hostsNow)
			if tc.wantEvict == "" {
				if h != nil || st.HostTable.Refused != 1 || len(st.Hosts) != MaxHosts {
					t.Errorf("AddHost = %v, refused %d, %d hosts; want refused", h, st.HostTable.Refused, len(st.Hosts))
				}
				return
			}
			if h == nil || !created || st.Hosts[newMAC] != h {
				t.Fatalf("AddHost = %v, %v; want the newcomer admitted", h, created)
			}
			if _, ok := st.Hosts[tc.wantEvict]; ok || len(st.Hosts) != MaxHosts || st.HostTable.Evicted != 1 {
				t.Errorf("%s still there (%d hosts, evicted %d); want it evicted", tc.wantEvict, len(st.Hosts), st.HostTable.Evicted)
			}
		})
	}
}

func TestAddHostRemembered(t *testing.T) {
	t.Run("a remembered host takes its record back", func(t *testing.T) {
		st := &state.State{Hosts: map[string]*state.Host{}, Remembered: map[string]state.HostRecord{
			"02:00:00:00:00:10": {Hostname: "printer", HostnameSince: hostsNow.Add(-time.Hour), FirstSeen: hostsNow.Add(-48 * time.Hour), Policy: state.DefaultHostPolicy()},
		}}
		h, created := AddHost(st, "02:00:00:00:00:10", StandingActive, hostsNow)
		if !created || h.Hostname != "printer" || !h.FirstSeen.Equal(hostsNow.Add(-48*time.Hour)) || !h.HostnameSince.Equal(hostsNow.Add(-time.Hour)) {
			t.Errorf("host %+v", h)
		}
		if len(st.Remembered) != 0 {
			t.Errorf("the record stayed in Remembered")
		}
	})
	t.Run("a remembered configured host stands as configured", func(t *testing.T) {
		st := fullTable()
		st.Remembered["02:ff:00:00:00:01"] = state.HostRecord{Policy: state.HostPolicy{DNS64: false}}
		if h, _ := AddHost(st, "02:ff:00:00:00:01", StandingActive, hostsNow); h == nil || h.Policy.DNS64 {
			t.Errorf("AddHost = %+v; want the configured host back", h)
		}
	})
	t.Run("an evicted host with a name is remembered; one without is forgotten", func(t *testing.T) {
		st := fullTable()
		st.Hosts[macN(1)].LastSeen = hostsNow.Add(-3 * HostIdle)
		st.Hosts[macN(1)].Hostname = "laptop"
		st.Hosts[macN(2)].LastSeen = hostsNow.Add(-2 * HostIdle)
		AddHost(st, "02:ff:00:00:00:01", StandingActive, hostsNow)
		AddHost(st, "02:ff:00:00:00:02", StandingActive, hostsNow)
		if r, ok := st.Remembered[macN(1)]; !ok || r.Hostname != "laptop" {
			t.Errorf("the named host's record: %+v, %v", r, ok)
		}
		if _, ok := st.Remembered[macN(2)]; ok {
			t.Errorf("a host without name or policy was remembered")
		}
	})
}

func TestSawHost(t *testing.T) {
	mac := "02:00:00:00:00:10"
	a := netip.MustParseAddr("2001:db8:1000::10")
	b := netip.MustParseAddr("2001:db8:1000::11")
	newState := func() *state.State {
		return &state.State{Hosts: map[string]*state.Host{}, Remembered: map[string]state.HostRecord{}}
	}
	t.Run("a frame from the MAC brings the host and attaches the address", func(t *testing.T) {
		st := newState()
		if !SawHost(st, Sighting{MAC: mac, Addr: a, At: hostsNow, FromFrame: true}, hostsNow) {
			t.Error("not attached")
		}
		if h := st.Hosts[mac]; h == nil || !h.Addrs[a].Equal(hostsNow) {
			t.Errorf("host %+v", h)
		}
	})
	t.Run("a neighbour entry alone brings no host", func(t *testing.T) {
		st := newState()
		if SawHost(st, Sighting{MAC: mac, Addr: a, At: hostsNow}, hostsNow) || len(st.Hosts) != 0 || st.HostTable.Unproven != 1 {
			t.Errorf("hosts %v, unproven %d", st.Hosts, st.HostTable.Unproven)
		}
	})
	t.Run("a neighbour entry alone attaches no new address to a known host", func(t *testing.T) {
		st := newState()
		SawHost(st, Sighting{MAC: mac, Addr: a, At: hostsNow, FromFrame: true}, hostsNow)
		if SawHost(st, Sighting{MAC: mac, Addr: b, At: hostsNow}, hostsNow) {
			t.Error("attached")
		}
		if _, ok := st.Hosts[mac].Addrs[b]; ok || st.HostTable.Unproven != 1 {
			t.Errorf("addrs %v, unproven %d", st.Hosts[mac].Addrs, st.HostTable.Unproven)
		}
	})
	t.Run("a neighbour entry refreshes an address a frame attached", func(t *testing.T) {
		st := newState()
		SawHost(st, Sighting{MAC: mac, Addr: a, At: hostsNow, FromFrame: true}, hostsNow)
		later := hostsNow.Add(time.Hour)
		SawHost(st, Sighting{MAC: mac, Addr: a, At: later}, later)
		if h := st.Hosts[mac]; !h.Addrs[a].Equal(later) || !h.LastSeen.Equal(later) {
			t.Errorf("host %+v", h)
		}
	})
	t.Run("the gizmo's own LAN MAC is no host", func(t *testing.T) {
		st := newState()
		st.LAN.HardwareAddr = []byte{2, 0, 0, 0, 0, 0x10}
		if SawHost(st, Sighting{MAC: mac, Addr: a, At: hostsNow, FromFrame: true}, hostsNow) || len(st.Hosts) != 0 {
			t.Error("the gizmo became a host")
		}
	})
	t.Run("a host keeps its MaxHostAddrs newest addresses", func(t *testing.T) {
		st := newState()
		for i := range MaxHostAddrs + 10 {
			x := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x10, 0, 0, 0, 14: byte(i >> 8), 15: byte(i)})
			SawHost(st, Sighting{MAC: mac, Addr: x, At: hostsNow.Add(time.Duration(i) * time.Second), FromFrame: true}, hostsNow)
		}
		h := st.Hosts[mac]
		if len(h.Addrs) != MaxHostAddrs || st.HostTable.AddrsEvicted != 10 {
			t.Fatalf("%d addresses, %d evicted", len(h.Addrs), st.HostTable.AddrsEvicted)
		}
		for x, at := range h.Addrs {
			if at.Before(hostsNow.Add(10 * time.Second)) {
				t.Errorf("kept %s, one of the ten oldest", x)
			}
		}
	})
}

func TestBoundRecords(t *testing.T) {
	st := &state.State{Hosts: map[string]*state.Host{}, Remembered: map[string]state.HostRecord{}}
	for i := range MaxRecords + 5 {
		r := state.HostRecord{Hostname: "h", Policy: state.DefaultHostPolicy(), LastSeen: hostsNow.Add(time.Duration(i) * time.Minute)}
		if i == 2 {
			r.Policy.DNS64 = false // configured: kept however old
		}
		st.Remembered[macN(i)] = r
	}
	if n := BoundRecords(st); n != 5 || len(st.Remembered) != MaxRecords || st.HostTable.RecordsDropped != 5 {
		t.Fatalf("dropped %d, %d left", n, len(st.Remembered))
	}
	for _, i := range []int{0, 1, 3, 4, 5} {
		if _, ok := st.Remembered[macN(i)]; ok {
			t.Errorf("kept %s, one of the oldest unconfigured records", macN(i))
		}
	}
	if _, ok := st.Remembered[macN(2)]; !ok {
		t.Error("dropped the configured record")
	}
	if !CanConfigure(st, macN(2)) || !CanConfigure(st, "02:ff:00:00:00:01") {
		t.Error("CanConfigure refused with room for configured hosts")
	}
}
