package netlab

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mdlayher/ndp"
)

func TestScenarioDefaultChangesNothing(t *testing.T) {
	s, err := LookupScenario("")
	if err != nil || s.Name != DefaultScenario {
		t.Fatalf("LookupScenario(\"\") = %+v, %v", s, err)
	}
	conf, err := kea6Conf(kea6Paths("/run/x"), PDPoolA, Lifetimes{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.kea6(conf)
	if err != nil || string(got) != string(conf) {
		t.Errorf("pd56 changed the Kea config: %v", err)
	}
	if ps := s.peers([]peer{{name: "radvd"}, {name: "kea6"}}, "/lab"); len(ps) != 2 || ps[0].name != "radvd" {
		t.Errorf("pd56 changed the peers: %v", ps)
	}
	argv := []string{"gizmo", "-wan", "uplink0", "-lan", "lan0", "-pref64", "2001:db8:64::/96"}
	if got := s.gizmoArgv(argv); !slices.Equal(got, argv) {
		t.Errorf("pd56 argv %v", got)
	}
	if len(s.topologySteps()) != 0 {
		t.Error("pd56 rewires the topology")
	}
}

func TestScenarioUnknown(t *testing.T) {
	if _, err := LookupScenario("pd57"); err == nil || !strings.Contains(err.Error(), "pd56") {
		t.Errorf("unknown scenario: err %v, want one listing the known ones", err)
	}
}

func delegatedLens(t *testing.T, conf []byte) []any {
	t.Helper()
	var m struct {
		Dhcp6 struct {
			Subnet6 []struct {
				PDPools []map[string]any `json:"pd-pools"`
			} `json:"subnet6"`
		}
	}
	if err := json.Unmarshal(conf, &m); err != nil {
		t.Fatal(err)
	}
	var out []any
	for _, s := range m.Dhcp6.Subnet6 {
		for _, p := range s.PDPools {
			out = append(out, p["delegated-len"])
		}
	}
	return out
}

func TestScenarioKea6(t *testing.T) {
	conf, err := kea6Conf(kea6Paths("/run/x"), PDPoolA, Lifetimes{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]any{"pd48": {48.0}, "pd60": {60.0}, "pd64": {64.0}, "no-pd": nil, "behind-router": nil} {
		s, _ := LookupScenario(name)
		got, err := s.kea6(conf)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if lens := delegatedLens(t, got); !slices.Equal(lens, want) {
			t.Errorf("%s: delegated lengths %v, want %v", name, lens, want)
		}
	}
}

func TestScenarioUpstreamPref64(t *testing.T) {
	s, _ := LookupScenario("upstream-pref64")
	ps := s.peers([]peer{{name: "radvd"}, {name: "kea6"}}, "/lab")
	if ps[0].name != "isp-ra" || !slices.Contains(ps[0].argv, UpstreamPref64.String()) {
		t.Errorf("the ISP's RA does not carry PREF64 %s: %+v", UpstreamPref64, ps[0])
	}
	ra := ispRA(nil, UpstreamPref64)
	if p, ok := ra.Options[len(ra.Options)-1].(*ndp.PREF64); !ok || p.Prefix != UpstreamPref64 || ra.RouterLifetime == 0 {
		t.Errorf("ISP RA %+v", ra)
	}
	argv := s.gizmoArgv([]string{"gizmo", "-wan", "uplink0", "-pref64", "2001:db8:64::/96", "-listen-web", "[::]:80"})
	if want := []string{"gizmo", "-wan", "uplink0", "-listen-web", "[::]:80"}; !slices.Equal(argv, want) {
		t.Errorf("argv %v, want %v", argv, want)
	}
}

func TestScenarioRolesDropFlags(t *testing.T) {
	for _, name := range []string{"roles", "existing-network"} {
		s, _ := LookupScenario(name)
		argv := s.gizmoArgv([]string{"gizmo", "-state-dir", "/x", "-wan", "uplink0", "-lan", "lan0"})
		if want := []string{"gizmo", "-state-dir", "/x"}; !slices.Equal(argv, want) {
			t.Errorf("%s: argv %v, want %v", name, argv, want)
		}
		if len(s.topologySteps()) == 0 {
			t.Errorf("%s: no rewiring", name)
		}
	}
	s, _ := LookupScenario("ipv4-only")
	ps := s.peers([]peer{{name: "radvd"}, {name: "kea6"}, {name: "kea4"}, {name: "named"}}, "/lab")
	if len(ps) != 2 || ps[0].name != "kea4" {
		t.Errorf("ipv4-only peers %v", ps)
	}
}

// In the existing-network scenario the gizmo picks its NAT64 prefix in its
// on-link /64 (no -pref64), and gz-lan-v6 is a stock Linux host that
// ignores RIOs.
func TestScenarioExistingNetwork(t *testing.T) {
	s, _ := LookupScenario("existing-network")
	argv := s.gizmoArgv([]string{"gizmo", "-state-dir", "/x", "-pref64", "2001:db8:64::/96", "-lan-ipv4", "203.0.113.129/25"})
	if want := []string{"gizmo", "-state-dir", "/x", "-lan-ipv4", "203.0.113.129/25"}; !slices.Equal(argv, want) {
		t.Errorf("argv %v, want %v", argv, want)
	}
	var stock bool
	for _, st := range s.topologySteps() {
		if slices.Contains(st, NSLanV6) && slices.Contains(st, "net.ipv6.conf."+HostIf+".accept_ra_rt_info_max_plen=0") {
			stock = true
		}
	}
	if !stock {
		t.Errorf("gz-lan-v6 is not set to Linux's default accept_ra_rt_info_max_plen of 0: %v", s.topologySteps())
	}
}
