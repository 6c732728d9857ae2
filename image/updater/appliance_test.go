package updater

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// The update API answers where gokrazy's UI did: on the private addresses
// of interfaces other than uplink* (gokrazy's PrivateInterfaceAddrs lists
// them, link-local ones with their zone).
func TestUpdateAPIAnswersOnPrivateAddressesOnly(t *testing.T) {
	private := []string{"127.0.0.1", "203.0.113.129", "fd00:1::1", "fe80::1%lan0"}
	a := Appliance{PrivateAddrs: func() ([]string, error) { return private, nil }}
	allow := a.allow(nil)
	for _, tc := range []struct {
		name  string
		local net.Addr
		want  bool
	}{
		{"the LAN's ULA", &net.TCPAddr{IP: net.ParseIP("fd00:1::1")}, true},
		{"the legacy LAN address, as a v4-mapped dual-stack socket sees it", &net.TCPAddr{IP: net.ParseIP("::ffff:203.0.113.129")}, true},
		{"the LAN's link-local address", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "lan0"}, true},
		{"the same link-local address on the uplink", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "uplink0"}, false},
		{"a global address of the uplink", &net.TCPAddr{IP: net.ParseIP("2001:db8:0:1::100")}, false},
		{"not TCP", &net.UnixAddr{Name: "/run/x"}, false},
	} {
		if got := allow(tc.local); got != tc.want {
			t.Errorf("%s (%v): allowed %v, want %v", tc.name, tc.local, got, tc.want)
		}
	}
	if !allowedLocal(netip.MustParseAddr("127.0.0.1"), private) {
		t.Error("loopback refused")
	}
}

func TestPasswordFilesInOrder(t *testing.T) {
	dir := t.TempDir()
	perm, image := filepath.Join(dir, "gokr-pw.txt"), filepath.Join(dir, "password.txt")
	os.WriteFile(image, []byte("from-image\n"), 0o600)
	if pw, err := readPassword([]string{perm, image}); err != nil || pw != "from-image" {
		t.Errorf("image password: %q %v", pw, err)
	}
	os.WriteFile(perm, []byte("owner's\n"), 0o600)
	if pw, _ := readPassword([]string{perm, image}); pw != "owner's" {
		t.Errorf("/perm does not override the image: %q", pw)
	}
	if _, err := readPassword([]string{filepath.Join(dir, "none")}); err == nil {
		t.Error("no password file: the update API would run without a password")
	}
}
