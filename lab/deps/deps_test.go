package deps

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Each command the lab and the tests run comes from the Debian package
// that really provides it (dpkg -S on Debian 12).
func TestProviderOfWhatTheCodeRuns(t *testing.T) {
	for use, want := range map[string]struct {
		pkg   string
		group Group
	}{
		"kea-dhcp6":                      {"kea-dhcp6-server", Lab},
		"kea-dhcp4":                      {"kea-dhcp4-server", Lab},
		"named":                          {"bind9", Lab},
		"dig":                            {"bind9-dnsutils", Lab},
		"unbound":                        {"unbound", Lab},
		"radvd":                          {"radvd", Lab},
		"dhcpcd":                         {"dhcpcd-base", Lab},
		"dhclient":                       {"isc-dhcp-client", Lab},
		"tayga":                          {"tayga", Lab},
		"rdisc6":                         {"ndisc6", Lab},
		"nft":                            {"nftables", Lab},
		"ip":                             {"iproute2", Lab},
		"tshark":                         {"tshark", Lab},
		"dnsperf":                        {"dnsperf", Lab},
		"iperf3":                         {"iperf3", Lab},
		"curl":                           {"curl", Lab},
		"chronyd":                        {"chrony", Lab},
		"clang":                          {"clang", EBPF},
		"llvm-strip":                     {"llvm", EBPF},
		"/usr/include/bpf/bpf_helpers.h": {"libbpf-dev", EBPF},
		"mksquashfs":                     {"squashfs-tools", Image},
		"mkfs.ext4":                      {"e2fsprogs", Image},
		"syslinux":                       {"syslinux", Image},
		"qemu-system-x86_64":             {"qemu-system-x86", QEMU},
		"/usr/share/seabios/bios.bin":    {"seabios", QEMU},
		"chromium":                       {"chromium", Browser},
	} {
		p, ok := Provider(use)
		if !ok {
			t.Errorf("%s: no package provides it", use)
			continue
		}
		if p.Name != want.pkg || p.Group != want.group {
			t.Errorf("%s: provided by %s (group %s), want %s (group %s)", use, p.Name, p.Group, want.pkg, want.group)
		}
	}
	if _, ok := Provider("no-such-tool"); ok {
		t.Error("a package provides no-such-tool")
	}
}

// The list is one list: every package and every use appears once, and
// every package is in a known group, every group has packages.
func TestListIsConsistent(t *testing.T) {
	names := map[string]bool{}
	uses := map[string]string{}
	for _, p := range Packages() {
		if names[p.Name] {
			t.Errorf("package %s listed twice", p.Name)
		}
		names[p.Name] = true
		if !slices.Contains(Groups, p.Group) {
			t.Errorf("package %s in unknown group %q", p.Name, p.Group)
		}
		if len(p.Uses) == 0 {
			t.Errorf("package %s: nothing uses it", p.Name)
		}
		for _, u := range p.Uses {
			if other, ok := uses[u]; ok {
				t.Errorf("%s provided by both %s and %s", u, other, p.Name)
			}
			uses[u] = p.Name
		}
	}
	for _, g := range Groups {
		if len(Packages(g)) == 0 {
			t.Errorf("group %s is empty", g)
		}
		if got, err := ParseGroup(string(g)); err != nil || got != g {
			t.Errorf("ParseGroup(%q) = %q, %v", g, got, err)
		}
	}
	if _, err := ParseGroup("lab2"); err == nil {
		t.Error("ParseGroup accepted an unknown group")
	}
}

// fakeHave finds everything except the listed uses.
func fakeHave(absent ...string) func(string) bool {
	return func(use string) bool { return !slices.Contains(absent, use) }
}

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		absent []string
		groups []Group
		want   []string
	}{
		{"all there", nil, []Group{Lab}, nil},
		{"one command of a lab package", []string{"kea-dhcp6"}, []Group{Lab}, []string{"kea-dhcp6-server"}},
		{"a package is missing when one of its uses is", []string{"mcopy"}, []Group{Image}, []string{"mtools"}},
		{"in list order", []string{"radvd", "kea-dhcp6", "named"}, []Group{Lab}, []string{"kea-dhcp6-server", "bind9", "radvd"}},
		{"other groups' packages do not count", []string{"chromium", "qemu-system-x86_64"}, []Group{Lab}, nil},
		{"only the groups asked for", []string{"chromium", "qemu-system-x86_64", "tayga"}, []Group{Browser, Lab}, []string{"tayga", "chromium"}},
		{"no group means all", []string{"chromium", "tayga"}, nil, []string{"tayga", "chromium"}},
		{"a file path", []string{"/usr/share/seabios/bios.bin"}, []Group{QEMU}, []string{"seabios"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Missing(fakeHave(tc.absent...), tc.groups...); !slices.Equal(got, tc.want) {
				t.Errorf("Missing = %v, want %v", got, tc.want)
			}
		})
	}
}

// fakeApt records the commands run and installs (makes have find) the
// packages named on an `apt-get install` line, unless told to fail.
type fakeApt struct {
	t       *testing.T
	absent  []string // uses not found
	guard   string
	calls   []string
	fail    map[string]int // command prefix → failures still to give
	install bool           // a successful install makes the packages' uses found
	guarded []bool         // whether the guard forbade starts during each call
}

func (f *fakeApt) have(use string) bool { return !slices.Contains(f.absent, use) }

func (f *fakeApt) run(_ context.Context, argv ...string) ([]byte, error) {
	line := strings.Join(argv, " ")
	f.calls = append(f.calls, line)
	b, err := os.ReadFile(f.guard)
	f.guarded = append(f.guarded, err == nil && strings.Contains(string(b), "exit 101"))
	for prefix, n := range f.fail {
		if strings.HasPrefix(line, prefix) && n > 0 {
			f.fail[prefix] = n - 1
			return []byte("Reading package lists...\nE: Unable to locate package " + argv[len(argv)-1] + "\n"), errors.New("exit status 100")
		}
	}
	if argv[1] == "install" && f.install {
		for _, name := range argv {
			for _, p := range packages {
				if p.Name == name {
					f.absent = slices.DeleteFunc(f.absent, func(u string) bool { return slices.Contains(p.Uses, u) })
				}
			}
		}
	}
	return nil, nil
}

func newFake(t *testing.T, absent ...string) (*fakeApt, *Installer, *bytes.Buffer) {
	f := &fakeApt{t: t, absent: absent, guard: filepath.Join(t.TempDir(), "policy-rc.d"), fail: map[string]int{}, install: true}
	var out bytes.Buffer
	in := &Installer{Have: f.have, Out: &out, run: f.run, isRoot: func() bool { return true }, policyRC: f.guard}
	return f, in, &out
}

const installLine = "apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600"

func TestEnsureInstallsWhatIsMissing(t *testing.T) {
	t.Setenv(NoInstallEnv, "")
	f, in, out := newFake(t, "radvd", "kea-dhcp6", "chromium")
	if err := in.Ensure(context.Background(), Lab); err != nil {
		t.Fatal(err)
	}
	if want := []string{installLine + " kea-dhcp6-server radvd"}; !slices.Equal(f.calls, want) {
		t.Errorf("ran %q, want %q", f.calls, want)
	}
	if got, want := out.String(), "lab: installing 2 Debian packages the lab needs: kea-dhcp6-server radvd\n"; got != want {
		t.Errorf("announced %q, want %q", got, want)
	}
	if !f.guarded[0] {
		t.Error("apt-get ran without a policy-rc.d forbidding service starts")
	}
	if _, err := os.Stat(f.guard); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the policy-rc.d written for the install is still there: %v", err)
	}
	// Nothing missing: nothing run, nothing said.
	out.Reset()
	f.calls = nil
	if err := in.Ensure(context.Background(), Lab); err != nil || len(f.calls) > 0 || out.Len() > 0 {
		t.Errorf("second Ensure: %v, ran %q, said %q", err, f.calls, out.String())
	}
}

func TestEnsureKeepsAnExistingGuard(t *testing.T) {
	t.Setenv(NoInstallEnv, "")
	f, in, _ := newFake(t, "tayga")
	own := "#!/bin/sh\nexit 101\n# the administrator's\n"
	if err := os.WriteFile(f.guard, []byte(own), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := in.Ensure(context.Background(), Lab); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(f.guard); err != nil || string(b) != own {
		t.Errorf("policy-rc.d after the install: %q, %v; want it untouched", b, err)
	}
}

func TestEnsureUpdatesListsOnceWhenInstallFails(t *testing.T) {
	t.Setenv(NoInstallEnv, "")
	f, in, _ := newFake(t, "tayga")
	f.fail["apt-get install"] = 1
	if err := in.Ensure(context.Background(), Lab); err != nil {
		t.Fatal(err)
	}
	want := []string{installLine + " tayga", "apt-get update -qq", installLine + " tayga"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("ran %q, want %q", f.calls, want)
	}
}

// Where apt-get cannot run, Ensure stops with one line naming the packages,
// and runs nothing.
func TestEnsureStopsWhereItCannotInstall(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fakeApt, in *Installer)
		why   string
	}{
		{"not root", func(f *fakeApt, in *Installer) { in.isRoot = func() bool { return false } }, "not root, so not installing them"},
		{"-no-install", func(f *fakeApt, in *Installer) { in.NoInstall = true }, "not installing them: -no-install"},
		{"environment", func(f *fakeApt, in *Installer) { os.Setenv(NoInstallEnv, "1") }, "not installing them: GIZMO_LAB_NO_INSTALL is set"},
		{"apt fails", func(f *fakeApt, in *Installer) { f.fail["apt-get install"] = 2 },
			"apt-get install: exit status 100: E: Unable to locate package radvd"},
		{"installed but not in PATH", func(f *fakeApt, in *Installer) { f.install = false },
			"apt-get installed them, but kea-dhcp6, radvd is still not found (is it in PATH?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(NoInstallEnv, "")
			f, in, _ := newFake(t, "radvd", "kea-dhcp6")
			tc.setup(f, in)
			err := in.Ensure(context.Background(), Lab)
			var me *MissingError
			if !errors.As(err, &me) {
				t.Fatalf("Ensure: %v, want a *MissingError", err)
			}
			want := "missing Debian packages: kea-dhcp6-server radvd; install them with: sudo apt-get install kea-dhcp6-server radvd (" + tc.why + ")"
			if err.Error() != want {
				t.Errorf("error\n%s\nwant\n%s", err, want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Error("the error is more than one line")
			}
			if tc.name != "apt fails" && tc.name != "installed but not in PATH" && len(f.calls) > 0 {
				t.Errorf("ran %q", f.calls)
			}
			if _, err := os.Stat(f.guard); !errors.Is(err, os.ErrNotExist) {
				t.Error("policy-rc.d left behind")
			}
		})
	}
}
