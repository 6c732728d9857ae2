package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/lab/deps"
)

// TestUpStopsBeforeBuildingWhenAPackageIsMissing runs the real `lab up`
// and `lab demo` with radvd hidden (PATH holds links to every other
// command the lab uses) and installing disabled: each must stop at once
// with one line naming the package, before it creates a namespace or the
// run dir. They run in a mount namespace of their own with an empty /run,
// so that a lab another test brings up meanwhile cannot change what
// `ip netns list` shows, and a lab that did start would stay in there.
func TestUpStopsBeforeBuildingWhenAPackageIsMissing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (lab up, mount namespaces)")
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
	dir := t.TempDir()
	lab := filepath.Join(dir, "lab")
	if out, err := exec.Command("go", "build", "-o", lab, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build ./lab: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range deps.Packages(deps.Lab) {
		for _, use := range p.Uses {
			if use == "radvd" || filepath.IsAbs(use) {
				continue
			}
			path, err := exec.LookPath(use)
			if err != nil {
				t.Skipf("%s (package %s) is not installed, so the test cannot hide radvd alone", use, p.Name)
			}
			if err := os.Symlink(path, filepath.Join(bin, use)); err != nil {
				t.Fatal(err)
			}
		}
	}
	const want = "lab: missing Debian packages: radvd; install them with: sudo apt-get install radvd"
	for _, tc := range []struct {
		name, run string
	}{
		{"up -no-install", "PATH=$BIN $LAB -no-install up"},
		{"demo with " + deps.NoInstallEnv, "PATH=$BIN " + deps.NoInstallEnv + "=1 $LAB demo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := `set -u
mount -t tmpfs gizmo-lab-test /run
mkdir /run/netns
before=$(ip netns list; ls -A /run)
` + tc.run + ` 2>$DIR/stderr >$DIR/stdout
echo "exit $?"
after=$(ip netns list; ls -A /run)
[ "$before" = "$after" ] && echo unchanged || printf 'changed:\n%s\n' "$after"
`
			cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
			cmd.Env = append(os.Environ(), "BIN="+bin, "LAB="+lab, "DIR="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("unshare: %v\n%s", err, out)
			}
			if got := string(out); got != "exit 1\nunchanged\n" {
				t.Errorf("lab exited and /run after it:\n%s\nwant exit 1 with nothing created", got)
			}
			stderr, _ := os.ReadFile(filepath.Join(dir, "stderr"))
			lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], want+" (not installing them: ") {
				t.Errorf("stderr:\n%s\nwant one line starting %q", stderr, want)
			}
		})
	}
}
