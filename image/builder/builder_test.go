package builder

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"codeberg.org/monostack/gizmo/hardware"
	"codeberg.org/monostack/gizmo/image/instance"
	"codeberg.org/monostack/gizmo/image/updater"
	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"
)

// standIn replaces the daemon in these tests (see testdata/gizmo): the
// structural checks are about the image, and must not break while the
// daemon's own code is mid-change. The boot test uses the real daemon.
const (
	realGizmo = "codeberg.org/monostack/gizmo/gizmo"
	standIn   = "codeberg.org/monostack/gizmo/image/builder/testdata/gizmo"
)

// testUpdateKey is a fixed key, so that two builds are byte-identical.
var testUpdateKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)).Public().(ed25519.PublicKey)

func moduleRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// repoConfig is the repository's config.json with the daemon swapped for
// the stand-in.
func repoConfig(t testing.TB, pkg string) instance.Config {
	t.Helper()
	cfg, err := instance.Load(filepath.Join(moduleRoot(t), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if pkg != realGizmo {
		for i, p := range cfg.Packages {
			if p == realGizmo {
				cfg.Packages[i] = pkg
			}
		}
		cfg.PackageConfig[pkg] = cfg.PackageConfig[realGizmo]
		delete(cfg.PackageConfig, realGizmo)
	}
	return cfg
}

func testOptions(t testing.TB, board, pkg string) Options {
	t.Helper()
	// Installs the image tools when it can, else skips naming the packages.
	depstest.Require(t, deps.Image)
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("go not in PATH: %v", err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	b, err := hardware.Lookup(board)
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Config:    repoConfig(t, pkg),
		Board:     b,
		ModuleDir: moduleRoot(t),
		Password:  "test-password",
		UpdateKey: testUpdateKey,
		CABundle:  filepath.Join(moduleRoot(t), "image", "builder", "testdata", "ca.pem"),
	}
}

func buildImage(t testing.TB, opts Options) (string, Result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), opts.Board.Name+".img")
	res, err := Build(context.Background(), opts, out)
	if err != nil {
		t.Fatal(err)
	}
	return out, res
}

// TestPiImages checks, for every Raspberry Pi board, that the image is
// what the Pi firmware and gokrazy expect. Each build takes 10-30 s, so plain
// `go test` checks the Pi 4 (firmware, EEPROM and all) and GIZMO_SLOW=1 all
// four.
func TestPiImages(t *testing.T) {
	for _, b := range hardware.All() {
		if b.Boot != hardware.BootRaspberryPi {
			continue
		}
		if b.Name != "rpi4" && os.Getenv("GIZMO_SLOW") == "" {
			continue
		}
		t.Run(b.Name, func(t *testing.T) {
			opts := testOptions(t, b.Name, standIn)
			img, res := buildImage(t, opts)
			checkPartitions(t, img, res.Layout)
			checkHybridMBR(t, img, res.Layout)
			fat := checkBootFAT(t, img, b)
			checkCmdline(t, fat["cmdline.txt"], res.Layout)
			if !strings.Contains(string(fat["config.txt"]), "kernel=vmlinuz\n") {
				t.Errorf("config.txt does not load vmlinuz:\n%s", fat["config.txt"])
			}
			checkRoot(t, img, elf.EM_AARCH64)
		})
	}
}

func checkPartitions(t *testing.T, img string, l Layout) {
	t.Helper()
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	table, ok := d.Table.(*gpt.Table)
	if !ok {
		t.Fatalf("partition table is %T, want GPT", d.Table)
	}
	want := []struct {
		start, size int64
		name        string
	}{
		{BootStart, BootSize, "boot"},
		{Root2, RootSize, "root2"},
		{Root3, RootSize, "root3"},
		{PermStart, l.PermSize, "perm"},
	}
	if len(table.Partitions) < len(want) {
		t.Fatalf("%d partitions, want %d", len(table.Partitions), len(want))
	}
	for i, w := range want {
		p := table.Partitions[i]
		if p.GetStart() != w.start || p.GetSize() != w.size || p.Name != w.name {
			t.Errorf("p%d: start %d size %d name %q; want %d %d %q", i+1, p.GetStart(), p.GetSize(), p.Name, w.start, w.size, w.name)
		}
		if !strings.EqualFold(p.GUID, l.PartGUIDs[i]) {
			t.Errorf("p%d GUID %s, want %s (derived from the hostname)", i+1, p.GUID, l.PartGUIDs[i])
		}
	}
	if BootStart/sectorSize != 8192 {
		t.Errorf("boot partition starts at LBA %d, gokrazy's layout says 8192", BootStart/sectorSize)
	}
}

// readImage reads n bytes of img at offset off.
func readImage(t *testing.T, img string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// checkHybridMBR: the Pi boot ROM reads only the MBR; Linux needs the 0xEE
// entry at LBA 1 to use the GPT.
func checkHybridMBR(t *testing.T, img string, l Layout) {
	t.Helper()
	sector := readImage(t, img, 0, 512)
	if sector[510] != 0x55 || sector[511] != 0xaa {
		t.Fatal("no MBR signature")
	}
	if got := binary.LittleEndian.Uint32(sector[440:]); got != l.MBRSignature {
		t.Errorf("disk signature %08x, want %08x", got, l.MBRSignature)
	}
	e1, e2 := sector[446:462], sector[462:478]
	if e1[0] != 0x80 || e1[4] != 0x0c || binary.LittleEndian.Uint32(e1[8:]) != BootStart/sectorSize {
		t.Errorf("MBR entry 1 = % x, want an active FAT32-LBA entry at LBA 8192", e1)
	}
	if e2[4] != 0xee || binary.LittleEndian.Uint32(e2[8:]) != 1 {
		t.Errorf("MBR entry 2 = % x, want type 0xEE from LBA 1", e2)
	}
}

// checkBootFAT reads every file of the boot partition and checks that the
// board's firmware files, device trees and the kernel are there.
func checkBootFAT(t *testing.T, img string, b hardware.Board) map[string][]byte {
	t.Helper()
	raw := readImage(t, img, BootStart, 512)
	// gokrazy's init reads cmdline.txt with a reader that understands only
	// FAT16 with one FAT (BPB: number of FATs at byte 16).
	if raw[16] != 1 || string(raw[54:62]) != "FAT16   " {
		t.Errorf("boot FAT has %d FATs, type %q; gokrazy needs one FAT, FAT16", raw[16], raw[54:62])
	}
	files := readFAT(t, img)
	want := []string{"vmlinuz", "cmdline.txt", "config.txt"}
	want = append(want, b.FirmwareFiles...)
	want = append(want, b.DeviceTrees...)
	if b.EEPROM {
		want = append(want, "recovery.bin", "pieeprom.upd", "pieeprom.sig", "vl805.bin", "vl805.sig")
	}
	for _, w := range want {
		if len(files[w]) == 0 {
			t.Errorf("boot partition lacks %s", w)
		}
	}
	var overlays int
	for name := range files {
		if strings.HasPrefix(name, "overlays/") {
			overlays++
		}
	}
	if overlays < 100 {
		t.Errorf("boot partition has %d overlays, want the kernel module's", overlays)
	}
	if b.EEPROM {
		sum := sha256.Sum256(files["pieeprom.upd"])
		if !bytes.HasPrefix(files["pieeprom.sig"], []byte(hex.EncodeToString(sum[:])+"\n")) {
			t.Errorf("pieeprom.sig %q does not start with pieeprom.upd's SHA-256", files["pieeprom.sig"])
		}
	}
	return files
}

// readFAT extracts the boot partition with mtools (go-diskfs's FAT16
// reader fails on it) and returns every file by path.
func readFAT(t *testing.T, img string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("mcopy", "-s", "-n", "-i", img+"@@"+strconv.Itoa(BootStart), "::/*", dir+"/")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v: %s", err, out)
	}
	return readTree(t, dir)
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkCmdline: root= must name p2 in the PARTUUID/PARTNROFF form that both
// the kernel and gokrazy's rootdev resolve (p1's GUID, offset 1).
func checkCmdline(t *testing.T, cmdline []byte, l Layout) {
	t.Helper()
	var root string
	for _, arg := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(arg, "root="); ok {
			root = v
		}
	}
	uuid, off, ok := strings.Cut(strings.TrimPrefix(root, "PARTUUID="), "/PARTNROFF=")
	if !ok || !strings.HasPrefix(root, "PARTUUID=") {
		t.Fatalf("cmdline.txt root=%q is not PARTUUID=<guid>/PARTNROFF=<n>", root)
	}
	part := -1
	for i, g := range l.PartGUIDs {
		if strings.EqualFold(g, uuid) {
			part = i + 1
		}
	}
	if part < 0 || off == "" || part+int(off[0]-'0') != 2 {
		t.Errorf("cmdline.txt root=%s resolves to partition %d+%s, want p2", root, part, off)
	}
	if !bytes.Contains(cmdline, []byte("init=/gokrazy/init")) {
		t.Errorf("cmdline.txt %q lacks init=/gokrazy/init", cmdline)
	}
}

// checkRoot extracts the root squashfs with unsquashfs (go-diskfs's
// squashfs reader cannot list mksquashfs output) and checks the init and the
// daemon: static executables for the board's CPU.
func checkRoot(t *testing.T, img string, machine elf.Machine) map[string][]byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	cmd := exec.Command("unsquashfs", "-n", "-no-xattrs", "-o", strconv.Itoa(Root2), "-d", dir, img, "/gokrazy", "/user", "/etc")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs: %v: %s", err, out)
	}
	files := readTree(t, dir)
	for _, p := range []string{"gokrazy/init", "user/gizmo"} {
		if files[p] == nil {
			t.Errorf("root lacks /%s", p)
			continue
		}
		e, err := elf.NewFile(bytes.NewReader(files[p]))
		if err != nil {
			t.Errorf("/%s is not ELF: %v", p, err)
			continue
		}
		if e.Machine != machine {
			t.Errorf("/%s is for %v, want %v", p, e.Machine, machine)
		}
		for _, prog := range e.Progs {
			if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
				t.Errorf("/%s is dynamically linked (%v)", p, prog.Type)
			}
		}
	}
	if string(files["etc/hostname"]) != "gizmo" || string(files["etc/http-port.txt"]) != "8080" || string(files["etc/gizmo/password.txt"]) != "test-password" {
		t.Errorf("/etc: hostname %q, http-port %q, password %q", files["etc/hostname"], files["etc/http-port.txt"], files["etc/gizmo/password.txt"])
	}
	// With gokr-pw.txt, gokrazy would serve its unsigned update API on
	// every private address.
	if files["etc/gokr-pw.txt"] != nil {
		t.Error("the root has /etc/gokr-pw.txt: gokrazy's update API would be on the network")
	}
	if !bytes.Contains(files["gokrazy/init"], []byte(updater.EncodePublicKey(testUpdateKey))) {
		t.Error("the init does not embed the update signing key")
	}
	if target, err := os.Readlink(filepath.Join(dir, "etc", "resolv.conf")); err != nil || target != "/tmp/resolv.conf" {
		t.Errorf("/etc/resolv.conf -> %q (%v), want /tmp/resolv.conf (else gokrazy mounts a tmpfs over /etc)", target, err)
	}
	for p := range files {
		if strings.HasPrefix(p, "gokrazy/") && p != "gokrazy/init" {
			t.Errorf("root holds /%s; only the init belongs there (the gizmo owns the network, no gokrazy DHCP)", p)
		}
	}
	return files
}

// TestReproducible builds the same image twice and compares the bytes.
func TestReproducible(t *testing.T) {
	opts := testOptions(t, "qemu-amd64", standIn)
	a, _ := buildImage(t, opts)
	b, _ := buildImage(t, opts)
	ha, hb := fileHash(t, a), fileHash(t, b)
	if ha != hb {
		t.Errorf("two builds differ: %s vs %s", ha, hb)
	}
	checkRoot(t, a, elf.EM_X86_64)
	checkBIOSBoot(t, a)
}

// checkBIOSBoot: syslinux's MBR code in sector 0, its loader in the FAT,
// and the kernel command line in the file gokrazy rewrites on updates.
func checkBIOSBoot(t *testing.T, img string) {
	t.Helper()
	mbrCode, err := os.ReadFile(syslinuxMBR)
	if err != nil {
		t.Fatal(err)
	}
	sector := readImage(t, img, 0, 440)
	if !bytes.HasPrefix(sector, mbrCode) {
		t.Error("sector 0 does not hold syslinux's mbr.bin")
	}
	files := readFAT(t, img)
	for _, want := range []string{"ldlinux.sys", "ldlinux.c32", "syslinux.cfg", "vmlinuz"} {
		if len(files[want]) == 0 {
			t.Errorf("boot partition lacks %s", want)
		}
	}
	entry := string(files["loader/entries/gokrazy.conf"])
	if entry != "APPEND "+string(files["cmdline.txt"]) {
		t.Errorf("gokrazy.conf %q is not APPEND + cmdline.txt %q", entry, files["cmdline.txt"])
	}
	if !strings.Contains(string(files["syslinux.cfg"]), "INCLUDE /loader/entries/gokrazy.conf") {
		t.Errorf("syslinux.cfg does not include gokrazy.conf:\n%s", files["syslinux.cfg"])
	}
}

func fileHash(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
