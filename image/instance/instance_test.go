package instance

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/image/internal/errtest"
)

const minimal = `{"Hostname": "gizmo", "Packages": ["codeberg.org/monostack/gizmo/gizmo"]}`

func TestRepoConfigParses(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	c, err := Load(filepath.Join(filepath.Dir(file), "..", "..", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "gizmo" || c.HTTPPort() != "8080" {
		t.Errorf("Hostname %q, HTTPPort %q; want gizmo, 8080", c.Hostname, c.HTTPPort())
	}
	if len(c.Packages) != 1 || c.Packages[0] != "codeberg.org/monostack/gizmo/gizmo" {
		t.Errorf("Packages = %q", c.Packages)
	}
	if len(c.GokrazyPackagesOrNone()) != 0 {
		t.Errorf("GokrazyPackages = %q; gokrazy's DHCP client must stay out", c.GokrazyPackagesOrNone())
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPPort() != "80" || c.UpdateHost() != "gizmo" {
		t.Errorf("HTTPPort %q UpdateHost %q", c.HTTPPort(), c.UpdateHost())
	}
}

func TestRejects(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"syntax error names the line", "{\n\"Hostname\": \"gizmo\",\n\"Packages\": [\"a/b\"\n}", "line 4"},
		{"unknown field is a typo", `{"Hostname":"gizmo","Packages":["a/b"],"Pakages":[]}`, "Pakages"},
		{"trailing data", minimal + `{}`, "trailing"},
		{"empty hostname", `{"Packages":["a/b"]}`, "Hostname is empty"},
		{"RFC 1123 hostname", `{"Hostname":"-gizmo","Packages":["a/b"]}`, "RFC 1123"},
		{"hostname with underscore", `{"Hostname":"giz_mo","Packages":["a/b"]}`, "RFC 1123"},
		{"no packages", `{"Hostname":"gizmo"}`, "Packages is empty"},
		{"bad import path", `{"Hostname":"gizmo","Packages":["../x"]}`, "not a Go import path"},
		{"duplicate base name", `{"Hostname":"gizmo","Packages":["a/x","b/x"]}`, "both be installed"},
		{"config for missing package", `{"Hostname":"gizmo","Packages":["a/b"],"PackageConfig":{"c/d":{}}}`, "not in Packages"},
		{"environment without =", `{"Hostname":"gizmo","Packages":["a/b"],"PackageConfig":{"a/b":{"Environment":["FOO"]}}}`, "KEY=value"},
		{"port out of range", `{"Hostname":"gizmo","Packages":["a/b"],"Update":{"HTTPPort":"70000"}}`, "port number"},
		{"TLS unsupported", `{"Hostname":"gizmo","Packages":["a/b"],"Update":{"UseTLS":"self-signed"}}`, "UseTLS"},
		{"extra file shadows init", `{"Hostname":"gizmo","Packages":["a/b"],"PackageConfig":{"a/b":{"ExtraFileContents":{"/gokrazy/init":"x"}}}}`, "shadow"},
		{"extra file relative", `{"Hostname":"gizmo","Packages":["a/b"],"PackageConfig":{"a/b":{"ExtraFileContents":{"etc/x":"x"}}}}`, "clean absolute"},
		{"wrong type", `{"Hostname":"gizmo","Packages":"a/b"}`, "malformed config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
			errtest.OneLine(t, err, tc.want)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"))
	if !os.IsNotExist(err) && (err == nil || !strings.Contains(err.Error(), "no such file")) {
		t.Errorf("Load(missing) = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(`{"Hostname":"a","Packages":["x/y"],"PackageConfig":{"x/y":{"Environment":["A=1"],"ExtraFileContents":{"/etc/x":"1"}}},"Update":{"HTTPPort":"8080"}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses must pass its own check and name something to run.
		if err := c.Check(); err != nil {
			t.Fatalf("Parse accepted a config that Check rejects: %v", err)
		}
		if len(c.Packages) == 0 || c.Hostname == "" {
			t.Fatal("Parse accepted a config without hostname or packages")
		}
	})
}
