package netlab

import (
	"encoding/json"
	"testing"
)

// kea6Subnets decodes the subnet6 list of a Kea DHCPv6 config.
func kea6Subnets(t *testing.T, conf []byte) []map[string]any {
	t.Helper()
	var m struct {
		Dhcp6 struct {
			Subnet6 []map[string]any `json:"subnet6"`
		}
	}
	if err := json.Unmarshal(conf, &m); err != nil {
		t.Fatal(err)
	}
	return m.Dhcp6.Subnet6
}

func TestISPDelegationConfigs(t *testing.T) {
	base, err := kea6Conf(kea6Paths("/run/x"), PDPoolA, Lifetimes{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if s := kea6Subnets(t, base); len(s) != 1 || s[0]["pd-pools"] == nil || s[0]["interface"] != ISPWAN {
		t.Fatalf("base config: subnets %v, want one on %s with pd-pools", s, ISPWAN)
	}

	// DelegationNoPool: the link is still served, without a pd-pool.
	noPool, err := Scenario{Name: "delegation-off"}.kea6(base)
	if err != nil {
		t.Fatal(err)
	}
	if s := kea6Subnets(t, noPool); len(s) != 1 || s[0]["pd-pools"] != nil || s[0]["interface"] != ISPWAN {
		t.Errorf("no-pool config: subnets %v, want one on %s without pd-pools", s, ISPWAN)
	}

	// DelegationUnknownLink: no subnet matches the WAN link any more.
	moved, err := kea6MoveSubnet(base, ISPInet)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range kea6Subnets(t, moved) {
		if s["interface"] != ISPInet {
			t.Errorf("unknown-link config: subnet on %v, want %s", s["interface"], ISPInet)
		}
	}
	if _, err := kea6MoveSubnet([]byte(`{"Dhcp6":{}}`), ISPInet); err == nil {
		t.Error("kea6MoveSubnet accepted a config without subnets")
	}
}

func TestNFTCounter(t *testing.T) {
	out := `table inet gizmo-lab-dhcp6-loss {
	chain out {
		type filter hook output priority filter; policy accept;
		oifname "gizmo0" udp sport 547 udp dport 546 counter packets 7 bytes 1234 drop
	}
}
`
	m := nftCounter.FindStringSubmatch(out)
	if m == nil || m[1] != "7" {
		t.Errorf("nft counter in %q: %v, want 7", out, m)
	}
}

func TestISPDelegationString(t *testing.T) {
	for d, want := range map[ISPDelegation]string{
		DelegationOn: "on", DelegationNoPool: "no-pool", DelegationUnknownLink: "unknown-link", 9: "ISPDelegation(9)",
	} {
		if got := d.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(d), got, want)
		}
	}
}
