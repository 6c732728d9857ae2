package zeroconf

import (
	"context"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// vlanStatus is the WAN VLAN part of GET /api/status.
type vlanStatus struct {
	WAN struct {
		Interface string `json:"interface"`
		IPv4      string `json:"ipv4"`
		VLAN      uint16 `json:"vlan"`
		VLANFrom  string `json:"vlan_from"`
		VLANError string `json:"vlan_error"`
	} `json:"wan"`
	Roles *struct {
		WANVLAN     uint16 `json:"wan_vlan"`
		WANVLANFrom string `json:"wan_vlan_from"`
	} `json:"roles"`
	Delegated *struct {
		Prefix string `json:"prefix"`
	} `json:"delegated_prefix"`
}

// TestVLANWANFlag: the ISP serves only on VLAN 7 (untagged frames are
// dropped on its side); with -wan-vlan 7 the gizmo gets its delegation and
// DHCPv4 lease over the VLAN, and gz-lan-v6 its RA.
func TestVLANWANFlag(t *testing.T) {
	checkVLANWAN(t, "vlan-wan", "flag")
}

// TestVLANWANDetected: the same ISP, the gizmo started without -wan, -lan
// or -wan-vlan: role detection hears nothing untagged on either port, finds
// the ISP on VLAN 7 of eth1, and puts uplink0 on it.
func TestVLANWANDetected(t *testing.T) {
	checkVLANWAN(t, "vlan-wan-detect", "detected")
}

func checkVLANWAN(t *testing.T, scenario, from string) {
	l := upScenario(t, scenario)
	ctx := testContext(t, 3*time.Minute)
	st := waitStatusAs(t, ctx, "a delegation and a DHCPv4 lease over VLAN 7", func(s vlanStatus) bool {
		return s.Delegated != nil && s.WAN.IPv4 != ""
	})
	if st.WAN.Interface != "uplink0" || st.WAN.VLAN != netlab.ISPVLANID || st.WAN.VLANFrom != from || st.WAN.VLANError != "" {
		t.Errorf("WAN %q on VLAN %d from %q (error %q); want uplink0 on VLAN %d from %q",
			st.WAN.Interface, st.WAN.VLAN, st.WAN.VLANFrom, st.WAN.VLANError, netlab.ISPVLANID, from)
	}
	if st.Roles != nil && (st.Roles.WANVLAN != netlab.ISPVLANID || st.Roles.WANVLANFrom != from) {
		t.Errorf("roles: VLAN %d from %q; want %d from %q", st.Roles.WANVLAN, st.Roles.WANVLANFrom, netlab.ISPVLANID, from)
	}
	if a, err := netip.ParsePrefix(st.WAN.IPv4); err != nil || !netlab.WANPrefix4.Contains(a.Addr()) {
		t.Errorf("WAN IPv4 %q is not a lease from %s", st.WAN.IPv4, netlab.WANPrefix4)
	}
	p, err := netip.ParsePrefix(st.Delegated.Prefix)
	if err != nil {
		t.Fatalf("delegated prefix %q: %v", st.Delegated.Prefix, err)
	}
	checkServedV6(t, ctx, l, p)
	checkVLANLineReachesIPv4(t, ctx, l)

	// The gizmo's tagger counts what went through the VLAN both ways.
	m, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gizmo_wan_vlan_received_total", "gizmo_wan_vlan_sent_total"} {
		sub := regexp.MustCompile(`(?m)^` + name + ` (\d+)$`).FindStringSubmatch(m)
		if sub == nil {
			t.Errorf("/metrics has no %s", name)
			continue
		}
		if n, _ := strconv.Atoi(sub[1]); n == 0 {
			t.Errorf("%s is 0: nothing went over the VLAN", name)
		}
	}
}

// checkVLANLineReachesIPv4: over the VLAN, the dashboard names the line
// and the VLAN, gz-lan-v6 reaches the IPv4 internet by name (DNS64 +
// NAT64) and gz-lan-legacy by address (NAT44).
func checkVLANLineReachesIPv4(t *testing.T, ctx context.Context, l *netlab.Lab) {
	t.Run("the dashboard names the line and the VLAN", func(t *testing.T) {
		body, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"IPv6 and IPv4 (dual-stack)", "uplink0 on VLAN " + strconv.Itoa(netlab.ISPVLANID)} {
			if !strings.Contains(body, want) {
				t.Errorf("the overview does not say %q", want)
			}
		}
	})
	t.Run("gz-lan-v6 reaches the IPv4 internet by name", func(t *testing.T) {
		st := waitStatus(t, ctx, "the RDNSS address", func(s status) bool { return s.LAN.DNS["rdnss"] != "" })
		body, err := fetchByName(ctx, l, netlab.NSLanV6, rdnss(t, st), "v4only.example.test")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body, "server="+netlab.V4OnlyServer.String()) {
			t.Errorf("v4only answered %q", body)
		}
	})
	t.Run("gz-lan-legacy reaches the IPv4 internet by address", func(t *testing.T) {
		if _, err := fetchV4Only(ctx, l, netlab.NSLanLegacy); err != nil {
			t.Fatal(err)
		}
	})
}
