package oui

import (
	"net"
	"testing"
)

func TestVendor(t *testing.T) {
	var tab Table
	for _, tc := range []struct{ mac, want string }{
		{"00:d0:ef:00:00:01", "IGT"},                     // first data row of the registry
		{"b8:27:eb:12:34:56", "Raspberry Pi Foundation"}, // a gizmo board
		{"02:00:00:00:00:10", ""},                        // locally administered: no vendor
		{"00:00:01:00:00:00", "XEROX CORPORATION"},
	} {
		mac, _ := net.ParseMAC(tc.mac)
		if got := tab.Vendor(mac); got != tc.want {
			t.Errorf("Vendor(%s) = %q, want %q", tc.mac, got, tc.want)
		}
	}
	if n := len(tab.entries); n < 20000 {
		t.Errorf("registry has %d entries; the embedded table looks truncated", n)
	}
}
