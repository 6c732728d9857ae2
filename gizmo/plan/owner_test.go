package plan

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"github.com/google/go-cmp/cmp"
)

// ownerState is fwState with a named host that holds a lease, another's
// reservation, and a remembered host's reservation.
func ownerState() *state.State {
	st := fwState()
	st.Hosts["02:00:00:00:00:02"].IPv4Lease = fwA("203.0.113.150")
	st.Hosts["02:00:00:00:00:02"].Hostname = "printer"
	st.Hosts["02:00:00:00:00:01"].Policy.IPv4 = fwA("203.0.113.140")
	st.Remembered = map[string]state.HostRecord{"02:00:00:00:00:03": {Hostname: "tv", Policy: state.HostPolicy{IPv4: fwA("203.0.113.160")}}}
	return st
}

func TestValidatePolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mac     string
		policy  state.HostPolicy
		wantErr string
	}{
		{"exposed ports and a free reservation in the legacy network", "02:00:00:00:00:04", state.HostPolicy{ExposedPorts: []string{"tcp/443", "udp/51820"}, IPv4: fwA("203.0.113.141")}, ""},
		{"a host keeps its own reservation", "02:00:00:00:00:01", state.HostPolicy{IPv4: fwA("203.0.113.140"), DNS64: true}, ""},
		{"a host may reserve the address it holds", "02:00:00:00:00:02", state.HostPolicy{IPv4: fwA("203.0.113.150")}, ""},
		{"a port beyond 65535 is refused", "02:00:00:00:00:04", state.HostPolicy{ExposedPorts: []string{"tcp/443", "tcp/99999"}}, "exposed ports"},
		{"a reservation outside the legacy network is refused", "02:00:00:00:00:04", state.HostPolicy{IPv4: fwA("192.168.1.5")}, "outside the legacy network 203.0.113.128/25"},
		{"the gizmo's own legacy address is no reservation", "02:00:00:00:00:04", state.HostPolicy{IPv4: fwA("203.0.113.129")}, "the gizmo's own address"},
		{"the broadcast address is no host's", "02:00:00:00:00:04", state.HostPolicy{IPv4: fwA("203.0.113.255")}, "broadcast"},
		{"another host's reservation is a conflict that names it", "02:00:00:00:00:04", state.HostPolicy{IPv4: fwA("203.0.113.140")}, "already reserved for 02:00:00:00:00:01"},
		{"a remembered host's reservation is a conflict too", "02:00:00:00:00:04", state.HostPolicy{IPv4: fwA("203.0.113.160")}, "already reserved for tv (02:00:00:00:00:03)"},
		{"an address leased to another host is a conflict", "02:00:00:00:00:04", state.HostPolicy{IPv4: fwA("203.0.113.150")}, "leased to printer (02:00:00:00:00:02) now"},
		{"an IPv6 address is no reservation", "02:00:00:00:00:04", state.HostPolicy{IPv4: fwA("2001:db8::1")}, "not an IPv4 address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePolicy(ownerState(), tc.mac, tc.policy)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("ValidatePolicy = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	st := ownerState()
	s := SettingsOf(st)
	if len(s.Hosts) != 3 || len(s.InboundRules) != 2 {
		t.Fatalf("settings of the state: %+v", s)
	}
	if s.Hosts["02:00:00:00:00:03"].IPv4 != fwA("203.0.113.160") {
		t.Errorf("a remembered host's reservation is missing from the settings: %+v", s.Hosts)
	}
	if err := ValidateSettings(st, s, fwNow); err != nil {
		t.Errorf("the state's own settings do not validate: %v", err)
	}
	s.Hosts["02:00:00:00:00:01"].ExposedPorts[0] = "tcp/1"
	if st.Hosts["02:00:00:00:00:01"].Policy.ExposedPorts[0] == "tcp/1" {
		t.Error("the settings share the exposed ports with the state")
	}
}

func TestValidateSettings(t *testing.T) {
	ok := state.HostPolicy{DNS64: true}
	for _, tc := range []struct {
		name string
		s    state.Settings
		want []string // one line per bad entry, in order
	}{
		{"an empty file resets everything", state.Settings{}, nil},
		{"the file's own reservations replace the current ones", state.Settings{Hosts: map[string]state.HostPolicy{
			"02:00:00:00:00:04": {IPv4: fwA("203.0.113.140")}, "02:00:00:00:00:01": ok,
		}}, nil},
		{"of two entries that reserve one address, the second names the first", state.Settings{Hosts: map[string]state.HostPolicy{
			"02:00:00:00:00:04": {IPv4: fwA("203.0.113.170")}, "02:00:00:00:00:05": {IPv4: fwA("203.0.113.170")},
		}}, []string{"host 02:00:00:00:00:05: reservation 203.0.113.170 is already reserved for 02:00:00:00:00:04"}},
		{"a reservation leased to another host now", state.Settings{Hosts: map[string]state.HostPolicy{
			"02:00:00:00:00:04": {IPv4: fwA("203.0.113.150")},
		}}, []string{"host 02:00:00:00:00:04: reservation 203.0.113.150 is leased to printer (02:00:00:00:00:02) now; pick another address, or reserve it once that host has let it go"}},
		{"a MAC that is not one, and bad entries of every kind", state.Settings{
			Hosts: map[string]state.HostPolicy{"printer": ok, "02:00:00:00:00:06": {ExposedPorts: []string{"tcp/0"}}},
			InboundRules: []state.InboundRule{
				{Name: "web", Token: fwA("::80"), Ports: []string{"tcp/443"}},
				{Name: "nothing"},
			},
		}, []string{
			`host "printer": not a MAC address in the form 02:00:00:00:00:10`,
			"host 02:00:00:00:00:06: exposed ports",
			`inbound rule 2 ("nothing"): a rule needs a token or a subnet`,
		}},
		{"upper-case MACs are not the state's keys", state.Settings{Hosts: map[string]state.HostPolicy{"02:00:00:00:00:AA": ok}},
			[]string{`host "02:00:00:00:00:AA": not a MAC address`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateSettings(ownerState(), tc.s, fwNow)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if len(got) != len(tc.want) {
				t.Fatalf("errors:\n%s\nwant %d lines:\n%s", err, len(tc.want), strings.Join(tc.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("line %d: %q, want it to start with %q", i+1, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestInboundMatches(t *testing.T) {
	st := fwState()
	st.Hosts["02:00:00:00:00:02"].Addrs[fwA("2001:db8:1000:100::80")] = fwNow
	st.Hosts["02:00:00:00:00:02"].Hostname = "nas"
	st.Hosts["02:00:00:00:00:03"] = &state.Host{MAC: "02:00:00:00:00:03", Addrs: map[netip.Addr]time.Time{
		fwA("2001:db8:1000:110::7"): fwNow, fwA("2001:db8:1000:110::8"): fwNow.Add(-8 * 24 * time.Hour),
	}}
	st.Shared = &state.UpstreamPrefix{Prefix: fwP("2001:db8:0:1::/64"), ValidUntil: fwNow.Add(time.Hour)}
	st.InboundRules = append(st.InboundRules,
		state.InboundRule{Name: "bad", Token: fwA("::80"), Ports: []string{"tcp/70000"}},
		state.InboundRule{Name: "outside", Subnet: &state.Subnet{Index: 1, Bits: 48}},
	)
	got := InboundMatches(st, fwNow)
	want := []RuleMatch{
		{ // the token in the delegated /64 and the shared one; the host that uses it
			Opens: []netip.Prefix{fwP("2001:db8:1000:100::80/128"), fwP("2001:db8:0:1::80/128")},
			Hosts: []HostAddr{{MAC: "02:00:00:00:00:02", Name: "nas", Addr: fwA("2001:db8:1000:100::80")}},
		},
		{ // index 0x10 of /64; an address not seen for 8 days has left it
			Opens: []netip.Prefix{fwP("2001:db8:1000:110::/64")},
			Hosts: []HostAddr{{MAC: "02:00:00:00:00:03", Addr: fwA("2001:db8:1000:110::7")}},
		},
		{Problem: "firewall: port"},
		{Problem: "subnet /48 is outside the delegated prefix"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d matches, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if want[i].Problem != "" {
			if !strings.Contains(got[i].Problem, strings.TrimPrefix(want[i].Problem, "firewall: ")) || got[i].Opens != nil {
				t.Errorf("rule %d: %+v, want the problem %q and nothing opened", i+1, got[i], want[i].Problem)
			}
			continue
		}
		if d := cmp.Diff(want[i], got[i], cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
			t.Errorf("rule %d (-want +got):\n%s", i+1, d)
		}
	}

	// Before a delegation: the subnet rule waits, the token rule opens
	// nothing and says why.
	st.Delegated, st.Shared = nil, nil
	got = InboundMatches(st, fwNow)
	if got[0].Waiting == "" || len(got[0].Opens) != 0 || got[1].Waiting == "" || got[1].Problem != "" {
		t.Errorf("without a prefix: %+v", got[:2])
	}
}
