package state

import (
	"encoding/json"
	"testing"
)

// A record written before a switch existed reads the switch's default: a
// printer known from earlier runs stays reachable from IPv6-only hosts.
func TestHostRecordMissingSwitchTakesItsDefault(t *testing.T) {
	for _, c := range []struct {
		name string
		json string
		want bool
	}{
		{"a record without lan_reachable", `{"hostname":"printer","policy":{"dns64":true,"v6only_preferred":false,"app_pinholes":false}}`, true},
		{"an owner's off stays off", `{"policy":{"dns64":true,"lan_reachable":false}}`, false},
		{"an owner's on stays on", `{"policy":{"lan_reachable":true}}`, true},
	} {
		var r HostRecord
		if err := json.Unmarshal([]byte(c.json), &r); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.Policy.LANReachable != c.want {
			t.Errorf("%s: lan_reachable %v, want %v", c.name, r.Policy.LANReachable, c.want)
		}
	}
	// The other switches keep what the record says.
	var r HostRecord
	if err := json.Unmarshal([]byte(`{"policy":{"dns64":false,"v6only_preferred":false}}`), &r); err != nil || r.Policy.DNS64 || r.Policy.V6OnlyPreferred {
		t.Errorf("record's own switches lost: %+v %v", r.Policy, err)
	}
	if !DefaultHostPolicy().LANReachable {
		t.Error("a household's printer must just work: reachable by default")
	}
}

// A device the owner keeps from IPv6-only hosts is the owner's setting:
// the host is configured and its record kept across reboots.
func TestLANReachableOffIsConfigured(t *testing.T) {
	p := DefaultHostPolicy()
	if p.Configured() {
		t.Fatal("the defaults configure something")
	}
	p.LANReachable = false
	if r := (HostRecord{Policy: p}); !r.Configured() || !r.Durable() {
		t.Error("lan_reachable off is not a configured, durable host")
	}
}
