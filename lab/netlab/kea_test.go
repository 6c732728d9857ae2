package netlab

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const lease6Header = "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,hwaddr_source\n"

func TestParseLeases6(t *testing.T) {
	now := time.Unix(1795672600, 0)
	file := lease6Header +
		// A delegation, renewed later (the later row wins).
		"2001:db8:1000::,00:01:00:01:32:9a:86:a6:02:00:00:00:01:02,60,1795672620,1,40,2,1,56,0,0,,02:00:00:00:01:02,0,,1,2\n" +
		"2001:db8:1000::,00:01:00:01:32:9a:86:a6:02:00:00:00:01:02,60,1795672675,1,40,2,1,56,0,0,,02:00:00:00:01:02,0,,1,2\n" +
		// Released (valid lifetime 0).
		"2001:db8:1000:100::,00:01:aa,0,1795672675,1,0,2,1,56,0,0,,,0,,1,2\n" +
		// Expired.
		"2001:db8:1000:200::,00:01:bb,60,1795672000,1,40,2,1,56,0,0,,,0,,1,2\n" +
		// An address lease.
		"2001:db8:0:1::99,00:01:cc,60,1795672675,1,40,0,7,128,0,0,host,,0,,1,2\n"
	got, err := parseLeases(strings.NewReader(file), true, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []Lease{
		{Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), Type: "IA_PD", ClientID: "00:01:00:01:32:9a:86:a6:02:00:00:00:01:02",
			IAID: 1, Valid: 60 * time.Second, Preferred: 40 * time.Second, Expire: time.Unix(1795672675, 0)},
		{Prefix: netip.MustParsePrefix("2001:db8:0:1::99/128"), Type: "IA_NA", ClientID: "00:01:cc", IAID: 7, Hostname: "host",
			Valid: 60 * time.Second, Preferred: 40 * time.Second, Expire: time.Unix(1795672675, 0)},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("parseLeases (-want +got):\n%s", diff)
	}
}

func TestParseLeases4(t *testing.T) {
	file := "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n" +
		"192.0.2.100,02:00:00:00:01:02,,60,1795672675,1,0,0,gizmo,0,\n"
	got, err := parseLeases(strings.NewReader(file), false, time.Unix(1795672600, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Prefix != netip.MustParsePrefix("192.0.2.100/32") || got[0].ClientID != "02:00:00:00:01:02" {
		t.Errorf("parseLeases = %+v", got)
	}
}

func TestParseLeasesRejectsBadInput(t *testing.T) {
	for name, file := range map[string]string{
		"no address column": "foo,bar\n1,2\n",
		"bad address":       lease6Header + "not-an-ip,00,60,1,1,40,2,1,56,0,0,,,0,,1,2\n",
		"bad lease type":    lease6Header + "2001:db8::,00,60,1,1,40,9,1,56,0,0,,,0,,1,2\n",
	} {
		if _, err := parseLeases(strings.NewReader(file), true, time.Now()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzParseLeases(f *testing.F) {
	f.Add(lease6Header+"2001:db8:1000::,00:01,60,1795672675,1,40,2,1,56,0,0,,,0,,1,2\n", true)
	f.Add("address,hwaddr,valid_lifetime,expire\n192.0.2.1,aa,1,2\n", false)
	f.Add("", false)
	f.Fuzz(func(t *testing.T, file string, v6 bool) {
		leases, err := parseLeases(strings.NewReader(file), v6, time.Unix(0, 0))
		if err != nil {
			return
		}
		for _, l := range leases {
			if !l.Prefix.IsValid() || l.Valid <= 0 {
				t.Errorf("invalid lease returned: %+v", l)
			}
		}
	})
}

func FuzzParseIPAddrJSON(f *testing.F) {
	f.Add(`[{"ifname":"eth0","addr_info":[{"family":"inet6","local":"2001:db8::1","prefixlen":64,"scope":"global","dynamic":true,"valid_life_time":60,"preferred_life_time":40}]}]`)
	f.Add(`[{"addr_info":[{"local":"192.0.2.1","prefixlen":99}]}]`)
	f.Fuzz(func(t *testing.T, s string) {
		addrs, err := parseIPAddrJSON([]byte(s))
		if err != nil {
			return
		}
		for _, a := range addrs {
			if !a.Prefix.IsValid() {
				t.Errorf("invalid prefix from %q: %+v", s, a)
			}
		}
	})
}
