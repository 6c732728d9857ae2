package builder

import (
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/image/instance"
	"codeberg.org/monostack/gizmo/image/updater"
)

func TestGizmoStateDir(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"the daemon's default", nil, "/perm/gizmo"},
		{"-state-dir=DIR", []string{"-wan=eth0", "-state-dir=/perm/router"}, "/perm/router"},
		{"-state-dir DIR", []string{"-state-dir", "/perm/x", "-lan", "eth1"}, "/perm/x"},
		{"--state-dir=DIR", []string{"--state-dir=/perm/y"}, "/perm/y"},
	} {
		c := instance.Config{PackageConfig: map[string]instance.PackageConfig{gizmoPackage: {CommandLineFlags: tc.flags}}}
		if got := gizmoStateDir(c); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The update API shares the dashboard's TLS identity, checks signatures
// with the image's key, and is absent without a password.
func TestInitServesSignedUpdates(t *testing.T) {
	opts := Options{Config: instance.Config{Hostname: "gizmo", Update: &instance.Update{HTTPPort: "8080"}}, Password: "pw", UpdateKey: testUpdateKey}
	src, err := initSource("2026-01-01T00:00:00Z", []service{{Path: "/user/gizmo"}}, updateAPIOf(opts))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"updater.Appliance{",
		`PublicKey:     "` + updater.EncodePublicKey(testUpdateKey) + `"`,
		`PasswordFiles: []string{"/perm/gokr-pw.txt", "/etc/gizmo/password.txt"}`,
		`Port:          "8080"`,
		`StateDir:      "/perm/gizmo"`,
		`Names:         []string{"gizmo.home.arpa", "gizmo"}`,
		"Gokrazy:       http.DefaultServeMux",
		"PrivateAddrs:  gokrazy.PrivateInterfaceAddrs",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("init source lacks %s", want)
		}
	}
	opts.Password, opts.Config.Update.NoPassword = "", true
	src, err = initSource("2026-01-01T00:00:00Z", []service{{Path: "/user/gizmo"}}, updateAPIOf(opts))
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"updater", "log/slog"} {
		if strings.Contains(string(src), absent) {
			t.Errorf("without a password the init still mentions %s", absent)
		}
	}
}
