package dns64

import "testing"

func TestInZone(t *testing.T) {
	for _, tc := range []struct {
		zone, name string
		want       bool
	}{
		{"home.arpa.", "home.arpa.", true},
		{"home.arpa.", "laptop.home.arpa.", true},
		{"home.arpa.", "myhome.arpa.", false},
		{"home.arpa.", "arpa.", false},
		{"ipv4only.arpa.", "x.ipv4only.arpa.", true},
		{".", "example.", true},
	} {
		if got := inZone(tc.zone, tc.name); got != tc.want {
			t.Errorf("inZone(%q, %q) = %v, want %v", tc.zone, tc.name, got, tc.want)
		}
	}
}
