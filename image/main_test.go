package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/internal/testns"

	"codeberg.org/monostack/gizmo/image/internal/errtest"
	"codeberg.org/monostack/gizmo/image/updater"
	"golang.org/x/sys/unix"
)

// standInConfig is a valid config using the builder's test stand-in for
// the daemon, so that these tests do not depend on the daemon compiling.
const standInConfig = `{
    "Hostname": "gizmo",
    "Update": {"HTTPPort": "8080", "HTTPPassword": "test"},
    "Packages": ["codeberg.org/monostack/gizmo/image/builder/testdata/gizmo"]
}`

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runImage runs the command in-process from the module root and returns
// its error and stderr.
func runImage(t *testing.T, args ...string) (string, error) {
	t.Helper()
	t.Chdir("..") // the module root: go.mod pins the boot-file modules
	var stderr bytes.Buffer
	err := run(context.Background(), args, &stderr)
	return stderr.String(), err
}

// assertNothingWritten checks that a failed build left no image and no
// temporary file in the output directory.
func assertNothingWritten(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("failed build left %s behind", e.Name())
	}
}

func TestBadInput(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	for _, tc := range []struct {
		name   string
		config string
		args   []string
		want   string
	}{
		{"unknown board", standInConfig, []string{"-board", "rpi2"}, `unknown board "rpi2"`},
		{"no board", standInConfig, nil, "-board is required"},
		{"malformed config", "{\n\"Hostname\": \"gizmo\",\n}", []string{"-board", "rpi4"}, "line 3"},
		{"config names a missing field", `{"Hostname":"gizmo","Packages":["a/b"],"Pakages":[]}`, []string{"-board", "rpi4"}, "Pakages"},
		{"missing module", strings.Replace(standInConfig, `"Packages"`, `"KernelPackage": "github.com/gokrazy/kernel.missing", "Packages"`, 1),
			[]string{"-board", "rpi4"}, "module github.com/gokrazy/kernel.missing is not available"},
		{"perm too small", standInConfig, []string{"-board", "rpi4", "-perm-size", "8"}, "below the minimum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outDir := t.TempDir()
			args := append([]string{"-config", writeConfig(t, tc.config), "-o", filepath.Join(outDir, "gizmo.img")}, tc.args...)
			_, err := runImage(t, args...)
			errtest.OneLine(t, err, tc.want)
			assertNothingWritten(t, outDir)
		})
	}
}

// TestFileSizeLimit: with `ulimit -f` below the image size, the build
// stops before writing anything.
func TestFileSizeLimit(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = 512 << 20
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("cannot lower RLIMIT_FSIZE: %v", err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_FSIZE, &old) })
	outDir := t.TempDir()
	_, err := runImage(t, "-board", "qemu-amd64", "-config", writeConfig(t, standInConfig), "-o", filepath.Join(outDir, "gizmo.img"))
	if err == nil || !strings.Contains(err.Error(), "file size limit") {
		t.Fatalf("error %v, want one about the file size limit", err)
	}
	assertNothingWritten(t, outDir)
}

// TestBlockDeviceTooSmall writes to a 64 MiB loop device.
func TestBlockDeviceTooSmall(t *testing.T) {
	testns.NeedRoot(t)
	backing := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).Output()
	if err != nil {
		t.Skipf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	_, err = runImage(t, "-board", "rpi4", "-config", writeConfig(t, standInConfig), "-o", dev)
	if err == nil || !strings.Contains(err.Error(), "device holds 64 MiB") {
		t.Fatalf("error %v, want one about the device size", err)
	}
}

func TestHelpListsBoards(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "help requested") {
		t.Fatalf("run(-h) = %v", err)
	}
	for _, b := range []string{"rpi3", "rpi4", "rpi5", "zero2w", "apu2 (apu3, apu4)", "qemu-amd64"} {
		if !strings.Contains(stderr.String(), b) {
			t.Errorf("-h output lacks %q:\n%s", b, stderr.String())
		}
	}
}

func TestHostPort(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"gizmo.home.arpa", "gizmo.home.arpa:8080"},
		{"2001:db8::1", "[2001:db8::1]:8080"},
		{"[2001:db8::1]", "[2001:db8::1]:8080"},
		{"fe80::1%eth0", "[fe80::1%25eth0]:8080"},
	} {
		if got := hostPort(tc.host, "8080"); got != tc.want {
			t.Errorf("hostPort(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

// Rotating: the update authenticates with the password the running gizmo
// knows and is signed with the key its image trusts; without the flags,
// with the new image's own.
func TestUpdateCredentialsWhenRotating(t *testing.T) {
	dir := t.TempDir()
	newKey, _, err := updater.LoadOrCreateKey(filepath.Join(dir, "new.key"))
	if err != nil {
		t.Fatal(err)
	}
	oldKey, _, err := updater.LoadOrCreateKey(filepath.Join(dir, "old.key"))
	if err != nil {
		t.Fatal(err)
	}
	oldPW := filepath.Join(dir, "old-password.txt")
	if err := os.WriteFile(oldPW, []byte("old-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := setup{key: newKey}
	st.opts.Password = "new-secret"

	pw, key, err := current{}.credentials(st)
	if err != nil || pw != "new-secret" || !key.Equal(newKey) {
		t.Errorf("no rotation: %q, same key %v, %v; want the new image's own", pw, key.Equal(newKey), err)
	}
	pw, key, err = current{passwordFile: oldPW, signingKey: filepath.Join(dir, "old.key")}.credentials(st)
	if err != nil || pw != "old-secret" || !key.Equal(oldKey) {
		t.Errorf("rotation: %q, old key %v, %v; want the running gizmo's", pw, key.Equal(oldKey), err)
	}
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, c := range []current{{passwordFile: empty}, {passwordFile: filepath.Join(dir, "missing")}, {signingKey: filepath.Join(dir, "missing.key")}, {signingKey: oldPW}} {
		if _, _, err := c.credentials(st); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
