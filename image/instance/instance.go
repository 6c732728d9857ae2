// Package instance reads a gokrazy instance config.json: the hostname, the
// Go packages to run with their flags and environment, and the update
// settings. The field names follow gokrazy's schema (github.com/gokrazy/
// internal/config, which cannot be imported from outside gokrazy), so that
// one file works with both gok and the gizmo image builder.
package instance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Config is the subset of gokrazy's instance schema that the builder acts on.
// Unknown fields are an error, so that a typo does not silently drop a
// setting.
type Config struct {
	Hostname   string
	DeviceType string  `json:",omitempty"`
	Update     *Update `json:",omitempty"`

	// Packages are Go import paths of programs, installed as /user/<base>
	// and supervised by init in this order.
	Packages      []string
	PackageConfig map[string]PackageConfig `json:",omitempty"`

	// SerialConsole overrides the board's console= value ("disabled" drops
	// the serial console).
	SerialConsole string `json:",omitempty"`

	// GokrazyPackages are gokrazy's helper programs, installed as
	// /gokrazy/<base>. nil means none: unlike gok, the builder does not add
	// gokrazy's DHCP client, because the gizmo owns the network.
	GokrazyPackages *[]string `json:",omitempty"`
	KernelPackage   *string   `json:",omitempty"`
	FirmwarePackage *string   `json:",omitempty"`
	EEPROMPackage   *string   `json:",omitempty"`

	// BootloaderExtraLines are appended to the Pi's config.txt.
	BootloaderExtraLines []string      `json:",omitempty"`
	MountDevices         []MountDevice `json:",omitempty"`

	// InternalCompatibilityFlags is gok's; accepted and ignored.
	InternalCompatibilityFlags json.RawMessage `json:",omitempty"`
}

// Update holds how the running appliance is reached and protected.
type Update struct {
	Hostname     string `json:",omitempty"`
	UseTLS       string `json:",omitempty"`
	NoPassword   bool   `json:",omitempty"`
	HTTPPort     string `json:",omitempty"`
	HTTPSPort    string `json:",omitempty"`
	HTTPPassword string `json:",omitempty"`
	CertPEM      string `json:",omitempty"`
	KeyPEM       string `json:",omitempty"`
}

// PackageConfig is the per-package part of the schema.
type PackageConfig struct {
	GoBuildFlags      []string          `json:",omitempty"`
	GoBuildTags       []string          `json:",omitempty"`
	Environment       []string          `json:",omitempty"`
	CommandLineFlags  []string          `json:",omitempty"`
	DontStart         bool              `json:",omitempty"`
	WaitForClock      bool              `json:",omitempty"`
	ExtraFilePaths    map[string]string `json:",omitempty"`
	ExtraFileContents map[string]string `json:",omitempty"`
}

// MountDevice is written to /etc/gokrazy/mountdevices.json for init.
type MountDevice struct {
	Source  string
	Type    string
	Target  string
	Options string
}

// Load reads and checks the config file at p.
func Load(p string) (Config, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return Config{}, fmt.Errorf("instance: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", p, err)
	}
	return c, nil
}

// Parse decodes and checks a config.json. Errors fit on one line.
func Parse(b []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
			return Config{}, fmt.Errorf("malformed JSON at line %d: %v", line, se)
		}
		return Config{}, fmt.Errorf("malformed config: %v", err)
	}
	if dec.More() {
		return Config{}, errors.New("malformed config: trailing data after the JSON object")
	}
	if err := c.Check(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Check validates the fields against what gokrazy's init and the builder
// can act on.
func (c Config) Check() error {
	if err := checkHostname(c.Hostname); err != nil {
		return err
	}
	if len(c.Packages) == 0 {
		return errors.New("config: Packages is empty: nothing would run on the appliance")
	}
	bases := map[string]string{}
	all := slices.Clone(c.Packages)
	all = append(all, c.GokrazyPackagesOrNone()...)
	for _, p := range all {
		if err := checkImportPath(p); err != nil {
			return err
		}
		b := path.Base(p)
		if other, dup := bases[b]; dup {
			return fmt.Errorf("packages %q and %q would both be installed as %q", other, p, b)
		}
		bases[b] = p
	}
	for _, p := range slices.Sorted(maps.Keys(c.PackageConfig)) {
		if !slices.Contains(all, p) {
			return fmt.Errorf("config: PackageConfig for %q, which is not in Packages", p)
		}
		pc := c.PackageConfig[p]
		for _, e := range pc.Environment {
			if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
				return fmt.Errorf("config: PackageConfig[%q].Environment: %q is not KEY=value", p, e)
			}
		}
		for dst := range pc.ExtraFilePaths {
			if err := checkExtraPath(p, dst); err != nil {
				return err
			}
		}
		for dst := range pc.ExtraFileContents {
			if err := checkExtraPath(p, dst); err != nil {
				return err
			}
		}
	}
	if u := c.Update; u != nil {
		for _, port := range []struct{ name, v string }{{"HTTPPort", u.HTTPPort}, {"HTTPSPort", u.HTTPSPort}} {
			if port.v == "" {
				continue
			}
			if n, err := strconv.Atoi(port.v); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("config: Update.%s %q is not a port number", port.name, port.v)
			}
		}
		switch u.UseTLS {
		case "", "off":
		default:
			return fmt.Errorf("config: Update.UseTLS %q is not supported (only \"\" or \"off\")", u.UseTLS)
		}
		if strings.ContainsAny(u.HTTPPassword, "\n\r") {
			return errors.New("config: Update.HTTPPassword contains a line break")
		}
	}
	for _, md := range c.MountDevices {
		if md.Source == "" || md.Type == "" || !strings.HasPrefix(md.Target, "/") {
			return fmt.Errorf("config: MountDevices entry %+v needs Source, Type and an absolute Target", md)
		}
	}
	for _, l := range c.BootloaderExtraLines {
		if strings.ContainsAny(l, "\n\r") {
			return fmt.Errorf("config: BootloaderExtraLines entry %q contains a line break", l)
		}
	}
	return nil
}

// GokrazyPackagesOrNone returns GokrazyPackages, or nothing when unset.
func (c Config) GokrazyPackagesOrNone() []string {
	if c.GokrazyPackages == nil {
		return nil
	}
	return *c.GokrazyPackages
}

// HTTPPort is gokrazy's web UI and update port (default 80).
func (c Config) HTTPPort() string {
	if c.Update != nil && c.Update.HTTPPort != "" {
		return c.Update.HTTPPort
	}
	return "80"
}

// UpdateHost is the name to reach the appliance by for updates.
func (c Config) UpdateHost() string {
	if c.Update != nil && c.Update.Hostname != "" {
		return c.Update.Hostname
	}
	return c.Hostname
}

// RFC 1123 §2.1 host names: labels of letters, digits and hyphens, not
// starting or ending with a hyphen, at most 63 octets each.
func checkHostname(h string) error {
	if h == "" {
		return errors.New("config: Hostname is empty")
	}
	if len(h) > 253 {
		return fmt.Errorf("config: Hostname %q is longer than 253 characters", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("config: Hostname %q is not a valid host name (RFC 1123)", h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("config: Hostname %q is not a valid host name (RFC 1123)", h)
			}
		}
	}
	return nil
}

func checkImportPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "..") || strings.Contains(p, "//") {
		return fmt.Errorf("package %q is not a Go import path", p)
	}
	for _, r := range p {
		if r <= ' ' || r == '\\' || r == '"' || r == '`' || r == 0x7f {
			return fmt.Errorf("package %q is not a Go import path", p)
		}
	}
	return nil
}

func checkExtraPath(pkg, dst string) error {
	if !strings.HasPrefix(dst, "/") || path.Clean(dst) != dst || dst == "/" {
		return fmt.Errorf("config: PackageConfig[%q]: extra file path %q is not a clean absolute path", pkg, dst)
	}
	for _, reserved := range []string{"/gokrazy", "/user", "/lib/modules"} {
		if dst == reserved || strings.HasPrefix(dst, reserved+"/") {
			return fmt.Errorf("config: PackageConfig[%q]: extra file %q would shadow %s", pkg, dst, reserved)
		}
	}
	return nil
}
