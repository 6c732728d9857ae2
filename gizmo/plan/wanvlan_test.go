package plan

import "testing"

func TestWANVLAN(t *testing.T) {
	for _, tc := range []struct {
		name          string
		flag, setting uint16
		id            uint16
		from          string
	}{
		{"the flag wins over the dashboard (the dashboard cannot change the image's flags)", 7, 10, 7, WANVLANFromFlag},
		{"the dashboard's setting without a flag", 0, 10, 10, WANVLANFromDashboard},
		{"neither: untagged unless detection finds a VLAN", 0, 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, from := WANVLAN(tc.flag, tc.setting)
			if id != tc.id || from != tc.from {
				t.Errorf("WANVLAN(%d, %d) = %d, %q; want %d, %q", tc.flag, tc.setting, id, from, tc.id, tc.from)
			}
		})
	}
}

func TestValidateWANVLAN(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   int
		ok   bool
	}{
		{"0 means none set", 0, true},
		{"IEEE 802.1Q: the first VLAN ID", 1, true},
		{"Deutsche Telekom's VLAN", 7, true},
		{"IEEE 802.1Q: the last VLAN ID", 4094, true},
		{"IEEE 802.1Q: 4095 is reserved", 4095, false},
		{"no negative IDs", -7, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateWANVLAN(tc.id); (err == nil) != tc.ok {
				t.Errorf("ValidateWANVLAN(%d) = %v", tc.id, err)
			}
		})
	}
}
