package roles

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// An observation in a test sequence, at a second offset from t0.
type obs struct {
	at     float64 // seconds after t0
	port   string
	link   *bool  // carrier change
	signal Signal // or an upstream signal
}

func up(at float64, port string) obs   { b := true; return obs{at: at, port: port, link: &b} }
func down(at float64, port string) obs { b := false; return obs{at: at, port: port, link: &b} }
func heard(at float64, port string, s Signal) obs {
	return obs{at: at, port: port, signal: s}
}

var t0 = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// replay feeds the observations in order, ticking once a second up to end,
// and returns every decision with the second it was taken at.
func replay(tr *Tracker, seq []obs, end float64) (decisions []Decision, at []float64) {
	i := 0
	for s := 0.0; s <= end; s++ {
		for i < len(seq) && seq[i].at <= s {
			o := seq[i]
			if o.link != nil {
				tr.Link(o.port, *o.link, sec(o.at))
			} else {
				tr.Heard(o.port, o.signal, sec(o.at))
			}
			i++
		}
		if d, ok := tr.Tick(sec(s)); ok {
			decisions = append(decisions, d)
			at = append(at, s)
		}
	}
	return decisions, at
}

func TestTrackerDecisions(t *testing.T) {
	noWAN := Roles{LANPorts: []string{"eth0", "eth1"}}
	router := Roles{WAN: "uplink0", LANPorts: []string{"eth0"}}
	for _, tc := range []struct {
		name    string
		current Roles
		ports   []string
		seq     []obs
		end     float64
		want    []Roles
		wantAt  []float64
	}{
		{"no WAN at start: the port that comes up and hears a default router becomes the WAN after Settle + Rounds",
			noWAN, []string{"eth0", "eth1"},
			[]obs{up(0, "eth0"), up(10, "eth1"), heard(10.5, "eth1", SignalRouter)}, 30,
			[]Roles{{WAN: "eth1", LANPorts: []string{"eth0"}}},
			// carrier up at 10, counts from 12 (Settle), third round at 14.
			[]float64{14}},
		{"no WAN at start: a DHCPv6 server alone is an upstream too",
			noWAN, []string{"eth0", "eth1"},
			[]obs{up(0, "eth0"), up(0, "eth1"), heard(1, "eth0", SignalDHCPv6Server)}, 10,
			[]Roles{{WAN: "eth0", LANPorts: []string{"eth1"}}}, []float64{4}},
		{"no WAN at start: a flap shorter than Settle + Rounds does not make a WAN",
			noWAN, []string{"eth0", "eth1"},
			[]obs{up(0, "eth0"), up(10, "eth1"), heard(10.5, "eth1", SignalRouter), down(13, "eth1")}, 30,
			nil, nil},
		{"a flap forgets what was heard: the port must hear its upstream again",
			noWAN, []string{"eth0", "eth1"},
			[]obs{up(10, "eth1"), heard(10.5, "eth1", SignalRouter), down(11, "eth1"), up(12, "eth1")}, 30,
			nil, nil},
		{"RFC 4861 §4.2: an RA with router lifetime 0 is no default router and makes no WAN",
			noWAN, []string{"eth0", "eth1"},
			[]obs{up(0, "eth0"), up(0, "eth1"), heard(1, "eth1", SignalRouterNoDefault)}, 20,
			nil, nil},
		{"a stray RA on the LAN while the WAN has carrier never moves the role",
			router, []string{"uplink0", "eth0"},
			[]obs{up(0, "uplink0"), up(0, "eth0"), heard(3, "eth0", SignalRouter), heard(4, "eth0", SignalDHCPv4Server)}, 60,
			nil, nil},
		{"a WAN flap shorter than WANGone keeps the roles even if a LAN port hears a router",
			router, []string{"uplink0", "eth0"},
			[]obs{up(0, "uplink0"), up(0, "eth0"), down(5, "uplink0"), heard(6, "eth0", SignalRouter), up(12, "uplink0")}, 60,
			nil, nil},
		{"the uplink cable moved: the old WAN has been down for WANGone and another port hears a router",
			router, []string{"uplink0", "eth0"},
			[]obs{up(0, "uplink0"), down(5, "uplink0"), down(5, "eth0"), up(8, "eth0"), heard(9, "eth0", SignalRouter)}, 60,
			[]Roles{{WAN: "eth0", LANPorts: []string{"uplink0"}}},
			// WANGone runs out at 15; eth0 has settled since 10.
			[]float64{17}},
		{"an IPv4-only ISP moved to another port: a DHCPv4 server alone takes over",
			router, []string{"uplink0", "eth0"},
			[]obs{up(0, "uplink0"), down(1, "uplink0"), up(3, "eth0"), heard(4, "eth0", SignalDHCPv4Server)}, 60,
			[]Roles{{WAN: "eth0", LANPorts: []string{"uplink0"}}}, []float64{13}},
		{"two ports hear upstreams: the default router wins over a DHCPv4 server",
			Roles{LANPorts: []string{"eth0", "eth1", "eth2"}}, []string{"eth0", "eth1", "eth2"},
			[]obs{up(0, "eth0"), up(0, "eth1"), up(0, "eth2"), heard(1, "eth0", SignalDHCPv4Server), heard(1, "eth2", SignalRouter)}, 20,
			[]Roles{{WAN: "eth2", LANPorts: []string{"eth0", "eth1"}}}, []float64{4}},
		{"the WAN down for long but no other port hears anything: the roles stay",
			router, []string{"uplink0", "eth0"},
			[]obs{up(0, "eth0"), down(0, "uplink0")}, 120,
			nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(tc.current, tc.ports, DefaultThresholds, t0)
			got, at := replay(tr, tc.seq, tc.end)
			var gotRoles []Roles
			for _, d := range got {
				gotRoles = append(gotRoles, d.Roles)
				if d.Reason == "" || !strings.Contains(d.Reason, d.Roles.WAN) {
					t.Errorf("decision %+v: the reason does not name the new WAN", d)
				}
			}
			if !reflect.DeepEqual(gotRoles, tc.want) {
				t.Errorf("decisions %+v, want %+v", gotRoles, tc.want)
			}
			if !reflect.DeepEqual(at, tc.wantAt) {
				t.Errorf("decided at seconds %v, want %v", at, tc.wantAt)
			}
		})
	}
}

func TestTrackerIgnoresSignalsOnTheWAN(t *testing.T) {
	tr := NewTracker(Roles{LANPorts: []string{"eth0"}}, []string{"eth0"}, DefaultThresholds, t0)
	tr.Heard("eth0", SignalRouter, t0) // no carrier yet: a stale report
	if ev := tr.Evidence(sec(10)); ev[0].RouterAdvertisement {
		t.Errorf("a port without carrier heard a router: %+v", ev)
	}
	if !tr.WANDown() {
		t.Error("roles without a WAN: WANDown is false")
	}
	tr = NewTracker(Roles{WAN: "uplink0", LANPorts: []string{"eth0"}}, []string{"uplink0", "eth0"}, DefaultThresholds, t0)
	tr.Link("uplink0", true, t0)
	if tr.WANDown() {
		t.Error("WAN with carrier: WANDown is true")
	}
	tr.Link("uplink0", false, sec(1))
	if !tr.WANDown() {
		t.Error("WAN without carrier: WANDown is false")
	}
}

func TestTrackerDecisionReason(t *testing.T) {
	tr := NewTracker(Roles{WAN: "uplink0", LANPorts: []string{"eth0"}}, []string{"uplink0", "eth0"}, DefaultThresholds, t0)
	seq := []obs{down(0, "uplink0"), up(0, "eth0"), heard(1, "eth0", SignalRouter), heard(1, "eth0", SignalDHCPv4Server)}
	d, _ := replay(tr, seq, 30)
	if len(d) != 1 {
		t.Fatalf("decisions: %+v", d)
	}
	want := "eth0 hears a default router, a DHCPv4 server; the WAN uplink0 has had no carrier for 12s"
	if d[0].Reason != want {
		t.Errorf("reason %q, want %q", d[0].Reason, want)
	}
}

func TestTrackerForgetsWhatAProbeDidNotConfirm(t *testing.T) {
	tr := NewTracker(Roles{WAN: "uplink0", LANPorts: []string{"eth0"}}, []string{"uplink0", "eth0"}, DefaultThresholds, t0)
	tr.Link("eth0", true, t0)
	tr.Heard("eth0", SignalRouter, sec(1)) // while the WAN was up: noted only
	if !tr.HeardUpstream("eth0") {
		t.Fatal("HeardUpstream is false after a default router was heard")
	}
	tr.Forget("eth0", sec(2)) // a probe from 2 s on heard nothing
	if tr.HeardUpstream("eth0") {
		t.Error("a router heard before the probe still counts")
	}
	tr.Heard("eth0", SignalDHCPv6Server, sec(3))
	tr.Forget("eth0", sec(2))
	if !tr.HeardUpstream("eth0") {
		t.Error("a server heard after the probe started was forgotten")
	}
}

func TestTrackerPinned(t *testing.T) {
	router := Roles{WAN: "uplink0", LANPorts: []string{"eth0"}}
	for _, tc := range []struct {
		name string
		seq  []obs
	}{
		{"a rogue router on the LAN while the proven WAN is dark for long never moves the role",
			[]obs{up(0, "uplink0"), up(0, "eth0"), down(5, "uplink0"), heard(6, "eth0", SignalRouter), heard(6, "eth0", SignalDHCPv4Server),
				heard(9, "eth0", SignalRouter), heard(30, "eth0", SignalRouter)}},
		{"a rogue DHCPv4 server alone neither",
			[]obs{up(0, "uplink0"), up(0, "eth0"), down(1, "uplink0"), heard(2, "eth0", SignalDHCPv4Server), heard(20, "eth0", SignalDHCPv4Server)}},
		{"nor a DHCPv6 server",
			[]obs{up(0, "uplink0"), up(0, "eth0"), down(1, "uplink0"), heard(2, "eth0", SignalDHCPv6Server)}},
		{"nor the cable moving: that takes the owner or a reboot",
			[]obs{up(0, "uplink0"), down(5, "uplink0"), down(5, "eth0"), up(8, "eth0"), heard(9, "eth0", SignalRouter)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(router, []string{"uplink0", "eth0"}, DefaultThresholds, t0)
			tr.Pin(true)
			if got, _ := replay(tr, tc.seq, 120); got != nil {
				t.Errorf("pinned roles changed: %+v", got)
			}
			if tr.HeardUpstream("eth0") {
				t.Error("a pinned tracker kept what eth0 heard")
			}
			// Unpinned, the same sequence moves the role: what the pin
			// guards against.
			tr = NewTracker(router, []string{"uplink0", "eth0"}, DefaultThresholds, t0)
			if got, _ := replay(tr, tc.seq, 120); len(got) != 1 || got[0].Roles.WAN != "eth0" {
				t.Errorf("unpinned: decisions %+v, want eth0 to take the WAN", got)
			}
		})
	}
}

func TestTrackerPinForgetsWhatWasHeard(t *testing.T) {
	router := Roles{WAN: "uplink0", LANPorts: []string{"eth0"}}
	tr := NewTracker(router, []string{"uplink0", "eth0"}, DefaultThresholds, t0)
	seq := []obs{up(0, "uplink0"), up(0, "eth0"), down(1, "uplink0"), heard(2, "eth0", SignalRouter)}
	replay(tr, seq, 12) // the hysteresis is under way
	tr.Pin(true)
	tr.Pin(false)
	// What was heard before the pin is gone: the port must hear again.
	if d, ok := tr.Tick(sec(13)); ok || tr.HeardUpstream("eth0") {
		t.Errorf("after a pin: decision %+v %v, heard %v", d, ok, tr.HeardUpstream("eth0"))
	}
}

func TestSignalKind(t *testing.T) {
	for s, want := range map[Signal]string{SignalRouter: "RA", SignalRouterNoDefault: "RA", SignalDHCPv4Server: "DHCPv4", SignalDHCPv6Server: "DHCPv6"} {
		if got := s.Kind(); got != want {
			t.Errorf("%v.Kind() = %q, want %q", s, got, want)
		}
	}
}
