package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/hardware"
	"codeberg.org/monostack/gizmo/internal/filecopy"
)

// bootFile is one file of the FAT boot partition.
type bootFile struct {
	Source  string // copy from this host path ...
	Content []byte // ... or write these bytes
}

// bootTree maps FAT paths ("/overlays/foo.dtbo") to files.
type bootTree map[string]bootFile

// fatLabel is the volume label of the boot partition.
const fatLabel = "GIZMOBOOT"

// fatSerial is the FAT volume serial number: fixed, so that images are
// reproducible (mformat picks a random one otherwise).
const fatSerial = "474d5a42"

// writeFAT creates a FAT16 file system of size bytes in the file out and
// fills it with the tree, with Debian's mtools.
//
// The layout is what gokrazy's own FAT reader (github.com/gokrazy/internal/
// fat, used by init to rewrite cmdline.txt on /update/switch and to read
// the EEPROM .sig files) can parse: FAT16 with a single FAT and a fixed root
// directory. go-diskfs's FAT16 writer always writes two FATs, and that
// reader then looks for the root directory inside the second FAT, so A/B
// updates would silently fail to switch; go-diskfs has no FAT16 with one
// FAT, hence mtools. Files are added in sorted order, so directory entries
// and cluster chains come out the same every time; SOURCE_DATE_EPOCH sets
// the timestamps.
func writeFAT(ctx context.Context, tree bootTree, out string, size int64, epoch time.Time) error {
	for _, tool := range []string{"mformat", "mmd", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: install Debian's mtools package (writes the boot partition)", tool)
		}
	}
	f, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	mtools := func(args ...string) error {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch.Unix(), 10), "MTOOLS_SKIP_CHECK=1")
		var msg bytes.Buffer
		cmd.Stdout, cmd.Stderr = &msg, &msg
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %v: %s", args[0], err, strings.TrimSpace(msg.String()))
		}
		return nil
	}
	// -d 1: one FAT; -c 4: 2 KiB clusters (about 51000, well inside
	// FAT16's range); -r 32: 512 root entries; -H: the partition's first
	// LBA, which boot code adds to in-partition sector numbers.
	if err := mtools("mformat", "-i", out, "-d", "1", "-c", "4", "-r", "32",
		"-h", "64", "-s", "32", "-T", strconv.FormatInt(size/512, 10),
		"-H", strconv.FormatInt(BootStart/512, 10),
		"-N", fatSerial, "-v", fatLabel, "::"); err != nil {
		return err
	}

	staging, err := os.MkdirTemp("", "gizmo-boot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	// Group files by directory; mcopy copies its arguments in order.
	byDir := map[string][]string{}
	for _, p := range slices.Sorted(maps.Keys(tree)) {
		bf := tree[p]
		src := bf.Source
		if src == "" || filepath.Base(src) != path.Base(p) {
			src = filepath.Join(staging, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
				return err
			}
			if bf.Source != "" {
				err = filecopy.Copy(src, bf.Source, 0o600)
			} else {
				err = os.WriteFile(src, bf.Content, 0o644)
			}
			if err != nil {
				return err
			}
		}
		byDir[path.Dir(p)] = append(byDir[path.Dir(p)], src)
	}
	dirs := map[string]bool{}
	for d := range byDir {
		for ; d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if err := mtools("mmd", "-i", out, "::"+d); err != nil {
			return err
		}
	}
	for _, d := range slices.Sorted(maps.Keys(byDir)) {
		args := append([]string{"mcopy", "-i", out}, byDir[d]...)
		if err := mtools(append(args, "::"+d)...); err != nil {
			return err
		}
	}
	return nil
}

// syslinuxDir is where Debian's syslinux package keeps the BIOS files.
const syslinuxDir = "/usr/lib/syslinux"

// installSyslinux writes syslinux's volume boot record into the FAT image
// and adds ldlinux.sys and ldlinux.c32. The syslinux installer uses mtools,
// which honours SOURCE_DATE_EPOCH for the new directory entries.
func installSyslinux(ctx context.Context, fatImage string) error {
	bin, err := exec.LookPath("syslinux")
	if err != nil {
		return fmt.Errorf("syslinux not found: install Debian's syslinux package (BIOS boot for %s)", fatImage)
	}
	cmd := exec.CommandContext(ctx, bin, "--install", "--directory", "/", fatImage)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("syslinux --install: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// syslinuxConfig loads the kernel with the command line that gokrazy keeps
// in /loader/entries/gokrazy.conf. gokrazy's /update/switch and testboot
// handlers rewrite root= in cmdline.txt and in that file (they know it as
// systemd-boot's entry), so an INCLUDE of it is what lets an A/B update
// switch the root partition on a BIOS machine. The included file is one
// "APPEND ..." line: testboot appends its flag at the line end.
func syslinuxConfig() []byte {
	return []byte(strings.Join([]string{
		"# Generated by the gizmo image builder. gokrazy rewrites the included file on updates.",
		"SERIAL 0 115200",
		"DEFAULT gizmo",
		"PROMPT 0",
		"TIMEOUT 0",
		"INCLUDE /loader/entries/gokrazy.conf",
		"LABEL gizmo",
		"  LINUX /vmlinuz",
		"",
	}, "\n"))
}

// piConfigTxt is the Raspberry Pi firmware's config.txt.
func piConfigTxt(b hardware.Board, extra []string) []byte {
	lines := []string{
		"# Generated by the gizmo image builder for board " + b.Name + ".",
		"# Updates rewrite this file: put changes in config.json's BootloaderExtraLines.",
		"arm_64bit=1",
		"kernel=vmlinuz",
		"disable_splash=1",
	}
	lines = append(lines, b.ConfigTxt...)
	lines = append(lines, extra...)
	return []byte(strings.Join(lines, "\n") + "\n")
}

// eepromFiles returns the Pi 4 EEPROM update files. The boot ROM runs
// recovery.bin when it is present; recovery.bin flashes pieeprom.upd if its
// SHA-256 matches pieeprom.sig and renames itself to RECOVERY.000 so that
// the update runs once. The newest image in the module wins (file names
// carry the release date).
func eepromFiles(dir string, epoch time.Time) (bootTree, error) {
	newest := func(pattern string) (string, error) {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil || len(m) == 0 {
			return "", fmt.Errorf("EEPROM module %s has no %s", dir, pattern)
		}
		slices.Sort(m)
		return m[len(m)-1], nil
	}
	t := bootTree{"/recovery.bin": {Source: filepath.Join(dir, "recovery.bin")}}
	if _, err := os.Stat(filepath.Join(dir, "recovery.bin")); err != nil {
		return nil, fmt.Errorf("EEPROM module: %w", err)
	}
	for _, f := range []struct{ pattern, name string }{
		{"pieeprom-*.bin", "pieeprom"},
		{"vl805-*.bin", "vl805"},
	} {
		src, err := newest(f.pattern)
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		// rpi-eeprom-digest's format: the hex digest, then the timestamp
		// the bootloader compares to decide whether to update.
		sig := fmt.Sprintf("%s\nts: %d\n", hex.EncodeToString(sum[:]), epoch.Unix())
		ext := ".upd"
		if f.name == "vl805" {
			ext = ".bin"
		}
		t["/"+f.name+ext] = bootFile{Content: b}
		t["/"+f.name+".sig"] = bootFile{Content: []byte(sig)}
	}
	return t, nil
}
