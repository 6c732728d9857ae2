// Package builder turns a gokrazy instance config (config.json) and a board
// profile into a flashable disk image in gokrazy's layout: a hybrid MBR+GPT,
// a FAT boot partition with the board's firmware, kernel and command line,
// a squashfs root holding the generated init and the Go programs, an empty
// second root for A/B updates, and an ext4 /perm.
//
// The same inputs give a byte-identical image. Inputs are the config, the
// board, the source tree and go.mod (which pins gokrazy, the kernel, the
// firmware and the EEPROM modules), SOURCE_DATE_EPOCH, the host's CA bundle
// and the Debian tools used (syslinux, mke2fs).
package builder

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/hardware"
	"codeberg.org/monostack/gizmo/image/instance"
)

// Options are the inputs of a build.
type Options struct {
	Config instance.Config
	// ConfigDir resolves relative ExtraFilePaths (the config file's dir).
	ConfigDir string
	Board     hardware.Board
	// ModuleDir is the main module whose go.mod pins every package and
	// boot-file module; "" means the module of the working directory.
	ModuleDir string
	// Password becomes /etc/gizmo/password.txt: the appliance password of
	// the dashboard and of the update API. Required unless
	// Config.Update.NoPassword is set.
	Password string
	// UpdateKey is the Ed25519 public key the update API checks images
	// against; the image embeds it. Required with a password.
	UpdateKey ed25519.PublicKey
	// PermSize is /perm's size in image files (default DefaultPermSize).
	PermSize int64
	// SkipEEPROM leaves the Pi 4 EEPROM update files out of the boot
	// partition (network updates do, so that the EEPROM is not re-flashed
	// on every update).
	SkipEEPROM bool
	// CABundle is copied to /etc/ssl/certs/ca-certificates.crt; "" means the
	// build host's Debian bundle if it exists.
	CABundle string
	Logger   *slog.Logger
}

// Parts are the two file systems an image and an update are made of.
type Parts struct {
	Dir      string // temporary directory holding the files below
	Boot     string // FAT image, exactly BootSize bytes
	Root     string // squashfs image
	RootSize int64
	Layout   Layout
	Epoch    time.Time
	Board    hardware.Board
}

// Close removes the temporary files.
func (p *Parts) Close() error { return os.RemoveAll(p.Dir) }

// Result describes a written image.
type Result struct {
	ImageSize int64 // bytes, apparent size
	RootSize  int64 // bytes of the root squashfs
	Layout    Layout
}

// Epoch returns SOURCE_DATE_EPOCH, which every timestamp in the image is set
// to. It is read from the environment because mtools (the FAT and syslinux's
// installer) and squashfs-tools follow that convention; the image command
// sets a default.
func Epoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Time{}, errors.New("SOURCE_DATE_EPOCH is not set: every timestamp in the image comes from it")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 315532800 { // FAT cannot store dates before 1980
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a Unix time after 1980", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

func (o *Options) defaults() error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ModuleDir == "" {
		dir, err := mainModuleDir()
		if err != nil {
			return err
		}
		o.ModuleDir = dir
	}
	if o.PermSize == 0 {
		o.PermSize = DefaultPermSize
	}
	if err := o.Config.Check(); err != nil {
		return err
	}
	if o.Board.Name == "" {
		return errors.New("no board profile")
	}
	noPassword := o.Config.Update != nil && o.Config.Update.NoPassword
	if o.Password == "" && !noPassword {
		return errors.New("no password for gokrazy's web UI (set Update.HTTPPassword or Update.NoPassword)")
	}
	if strings.ContainsAny(o.Password, "\n\r") {
		return errors.New("password contains a line break")
	}
	if o.Password != "" && len(o.UpdateKey) != ed25519.PublicKeySize {
		return errors.New("no update signing key: the image's update API would have no key to check images against")
	}
	return nil
}

// mainModuleDir is the directory of the go.mod that governs the working
// directory, so that the command works from any subdirectory.
func mainModuleDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module: run the image command from the gizmo module")
	}
	return filepath.Dir(gomod), nil
}

// step logs a long-running step and its duration.
func (o *Options) step(name string, fn func() error) error {
	start := time.Now()
	o.Logger.Info("image: "+name, "board", o.Board.Name)
	if err := fn(); err != nil {
		return err
	}
	o.Logger.Info("image: "+name+" done", "board", o.Board.Name, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// BuildParts compiles the programs and writes the root and boot file
// systems into a temporary directory. The caller must Close the result.
func BuildParts(ctx context.Context, opts Options) (_ *Parts, err error) {
	if err := opts.defaults(); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	epoch, err := Epoch()
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, errors.New("image: the go command is not in $PATH")
	}
	layout, err := NewLayout(opts.Config.Hostname, opts.PermSize)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	dir, err := os.MkdirTemp("", "gizmo-image-")
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	p := &Parts{Dir: dir, Boot: filepath.Join(dir, "boot.fat"), Root: filepath.Join(dir, "root.squashfs"), Layout: layout, Epoch: epoch, Board: opts.Board}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()

	mods := map[string]string{}
	if err := opts.step("locating boot-file modules", func() error {
		for _, m := range bootModules(opts.Board, opts.Config) {
			if m == "" {
				continue
			}
			d, err := moduleDir(ctx, goTool, opts.ModuleDir, m)
			if err != nil {
				return err
			}
			mods[m] = d
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}

	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	services, progs := servicesOf(opts.Config)
	if err := opts.step("compiling init and packages", func() error {
		src, err := initSource(epoch.Format(time.RFC3339), services, updateAPIOf(opts))
		if err != nil {
			return err
		}
		c := compiler{goTool: goTool, moduleDir: opts.ModuleDir, goarch: opts.Board.GOARCH,
			logf: func(f string, a ...any) { opts.Logger.Debug(fmt.Sprintf(f, a...)) }}
		return c.build(ctx, bin, src, progs)
	}); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}

	if err := opts.step("writing root squashfs", func() error {
		tree, err := rootTreeFor(opts, bin, mods[kernelModule(opts.Board, opts.Config)], epoch)
		if err != nil {
			return err
		}
		p.RootSize, err = writeSquashfs(ctx, tree, p.Root, epoch)
		if err != nil {
			return err
		}
		if p.RootSize > RootSize {
			return fmt.Errorf("root file system is %d MiB, the root partition holds %d MiB", p.RootSize/mib, RootSize/mib)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}

	if err := opts.step("writing boot FAT", func() error {
		tree, err := bootTreeFor(opts, layout, epoch, mods)
		if err != nil {
			return err
		}
		if err := writeFAT(ctx, tree, p.Boot, BootSize, epoch); err != nil {
			return err
		}
		if opts.Board.Boot == hardware.BootSyslinuxBIOS {
			return installSyslinux(ctx, p.Boot)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return p, nil
}

// Build writes a complete image to out (a file, replaced atomically, or a
// block device, overwritten in place).
func Build(ctx context.Context, opts Options, out string) (Result, error) {
	if err := opts.defaults(); err != nil {
		return Result{}, fmt.Errorf("image: %w", err)
	}
	// Fail before the slow steps when the target cannot hold the image.
	layout, err := NewLayout(opts.Config.Hostname, opts.PermSize)
	if err != nil {
		return Result{}, fmt.Errorf("image: %w", err)
	}
	if err := preflight(out, layout); err != nil {
		return Result{}, fmt.Errorf("image: %s: %w", out, err)
	}
	parts, err := BuildParts(ctx, opts)
	if err != nil {
		return Result{}, err
	}
	defer parts.Close()
	var res Result
	err = opts.step("writing disk image", func() error {
		var err error
		res, err = WriteImage(ctx, parts, out)
		return err
	})
	return res, err
}

// bootModules lists the modules the board's boot files come from; the
// config's KernelPackage/FirmwarePackage/EEPROMPackage override the board.
func bootModules(b hardware.Board, c instance.Config) []string {
	return []string{kernelModule(b, c), firmwareModule(b, c), eepromModule(b, c)}
}

func kernelModule(b hardware.Board, c instance.Config) string {
	if c.KernelPackage != nil {
		return *c.KernelPackage
	}
	return b.KernelModule
}

func firmwareModule(b hardware.Board, c instance.Config) string {
	if c.FirmwarePackage != nil {
		return *c.FirmwarePackage
	}
	return b.FirmwareModule
}

func eepromModule(b hardware.Board, c instance.Config) string {
	if !b.EEPROM {
		return ""
	}
	if c.EEPROMPackage != nil {
		return *c.EEPROMPackage
	}
	return b.EEPROMModule
}

// servicesOf lists what init supervises and what to compile: the config's
// Packages as /user/<name>, then GokrazyPackages as /gokrazy/<name>.
func servicesOf(c instance.Config) ([]service, []program) {
	var svcs []service
	var progs []program
	add := func(pkg, dir string) {
		pc := c.PackageConfig[pkg]
		svcs = append(svcs, service{
			Path:         dir + "/" + binaryName(pkg),
			Args:         pc.CommandLineFlags,
			Env:          pc.Environment,
			DontStart:    pc.DontStart,
			WaitForClock: pc.WaitForClock,
		})
		progs = append(progs, program{ImportPath: pkg, Tags: pc.GoBuildTags, Flags: pc.GoBuildFlags})
	}
	for _, p := range c.Packages {
		add(p, "/user")
	}
	for _, p := range c.GokrazyPackagesOrNone() {
		add(p, "/gokrazy")
	}
	return svcs, progs
}

// cmdline is the kernel command line (without a trailing newline).
func cmdline(b hardware.Board, c instance.Config, l Layout) string {
	var args []string
	switch c.SerialConsole {
	case "":
		args = b.Cmdline()
	case "disabled":
		for _, con := range b.ExtraConsoles {
			args = append(args, "console="+con)
		}
	default:
		for _, con := range b.ExtraConsoles {
			args = append(args, "console="+con)
		}
		args = append(args, "console="+c.SerialConsole)
	}
	// panic=10 reboots ten seconds after a kernel panic and oops=panic turns
	// an oops into one: an unattended router should come back by itself.
	args = append(args, l.RootCmdline(), "rootfstype=squashfs", "init=/gokrazy/init", "rootwait", "panic=10", "oops=panic")
	return strings.Join(args, " ")
}

// bootTreeFor lists the files of the FAT boot partition.
func bootTreeFor(opts Options, l Layout, epoch time.Time, mods map[string]string) (bootTree, error) {
	b := opts.Board
	kdir := mods[kernelModule(b, opts.Config)]
	cl := cmdline(b, opts.Config, l)
	t := bootTree{
		"/vmlinuz":     {Source: filepath.Join(kdir, "vmlinuz")},
		"/cmdline.txt": {Content: []byte(cl + "\n")},
	}
	switch b.Boot {
	case hardware.BootRaspberryPi:
		fdir := mods[firmwareModule(b, opts.Config)]
		for _, f := range b.FirmwareFiles {
			t["/"+f] = bootFile{Source: filepath.Join(fdir, f)}
		}
		for _, f := range b.DeviceTrees {
			t["/"+f] = bootFile{Source: filepath.Join(kdir, f)}
		}
		overlays, err := filepath.Glob(filepath.Join(kdir, "overlays", "*"))
		if err != nil {
			return nil, err
		}
		for _, o := range overlays {
			t["/overlays/"+filepath.Base(o)] = bootFile{Source: o}
		}
		t["/config.txt"] = bootFile{Content: piConfigTxt(b, opts.Config.BootloaderExtraLines)}
		if b.EEPROM && !opts.SkipEEPROM {
			e, err := eepromFiles(mods[eepromModule(b, opts.Config)], epoch)
			if err != nil {
				return nil, err
			}
			for k, v := range e {
				t[k] = v
			}
		}
	case hardware.BootSyslinuxBIOS:
		t["/syslinux.cfg"] = bootFile{Content: syslinuxConfig()}
		t["/loader/entries/gokrazy.conf"] = bootFile{Content: []byte("APPEND " + cl + "\n")}
	default:
		return nil, fmt.Errorf("board %s: unknown boot method %v", b.Name, b.Boot)
	}
	for p, f := range t {
		if f.Source == "" {
			continue
		}
		if _, err := os.Stat(f.Source); err != nil {
			return nil, fmt.Errorf("board %s needs %s: %w", b.Name, path.Base(p), err)
		}
	}
	return t, nil
}

// debianCABundle is the build host's CA bundle (Debian's ca-certificates).
const debianCABundle = "/etc/ssl/certs/ca-certificates.crt"

// rootTreeFor lists the files of the root file system: gokrazy's mount
// points, /etc, the kernel modules, init and the programs.
// BuildTimeFile holds the image's build time, RFC 3339, in the root file
// system.
const BuildTimeFile = "/etc/gizmo/built.txt"

func rootTreeFor(opts Options, bin, kernelDir string, epoch time.Time) (rootTree, error) {
	t := rootTree{}
	// Mount points that gokrazy.Boot mounts over (/perm is p4).
	for _, d := range []string{"/dev", "/etc", "/mnt", "/perm", "/proc", "/run", "/sys", "/tmp", "/gokrazy", "/user"} {
		t.dir(d)
	}
	t.symlink("/var", "/perm/var")
	// gokrazy points resolv.conf at /tmp/resolv.conf, which the DHCP client
	// or the gizmo writes; without this symlink gokrazy mounts a tmpfs
	// over all of /etc.
	t.symlink("/etc/resolv.conf", "/tmp/resolv.conf")
	t.file("/etc/hostname", 0o644, []byte(opts.Config.Hostname))
	t.file("/etc/hosts", 0o644, fmt.Appendf(nil, "127.0.0.1 localhost\n::1 localhost\n127.0.1.1 %s\n", opts.Config.Hostname))
	t.file("/etc/http-port.txt", 0o644, []byte(opts.Config.HTTPPort()))
	if u := opts.Config.Update; u != nil && u.HTTPSPort != "" {
		t.file("/etc/https-port.txt", 0o644, []byte(u.HTTPSPort))
	}
	// Not gokrazy's /etc/gokr-pw.txt: without it gokrazy keeps its update
	// API on its unix socket, and the init serves the signed one.
	if opts.Password != "" {
		t.file(PasswordFile, 0o600, []byte(opts.Password))
	}
	t.file("/etc/gizmo/board.txt", 0o644, []byte(opts.Board.Name+"\n"))
	// The build's time (SOURCE_DATE_EPOCH): the dashboard names the
	// firmware by it, since the image's binaries carry no VCS stamp.
	t.file(BuildTimeFile, 0o644, []byte(epoch.UTC().Format(time.RFC3339)+"\n"))
	ca := opts.CABundle
	if ca == "" {
		if _, err := os.Stat(debianCABundle); err == nil {
			ca = debianCABundle
		}
	}
	if ca != "" {
		t.copy("/etc/ssl/certs/ca-certificates.crt", 0o644, ca)
		t.symlink("/etc/ssl/ca-bundle.pem", "certs/ca-certificates.crt")
	}
	if len(opts.Config.MountDevices) > 0 {
		b, err := json.Marshal(opts.Config.MountDevices)
		if err != nil {
			return nil, err
		}
		t.file("/etc/gokrazy/mountdevices.json", 0o644, b)
		for _, md := range opts.Config.MountDevices {
			t.dir(md.Target)
		}
	}
	if err := t.addTree("/lib/modules", filepath.Join(kernelDir, "lib", "modules")); err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	t.copy("/gokrazy/init", 0o755, filepath.Join(bin, "init"))
	services, _ := servicesOf(opts.Config)
	for _, s := range services {
		t.copy(s.Path, 0o755, filepath.Join(bin, path.Base(s.Path)))
	}
	for _, pkg := range append(append([]string{}, opts.Config.Packages...), opts.Config.GokrazyPackagesOrNone()...) {
		pc := opts.Config.PackageConfig[pkg]
		for dst, content := range pc.ExtraFileContents {
			t.file(dst, 0o644, []byte(content))
		}
		for dst, src := range pc.ExtraFilePaths {
			if !filepath.IsAbs(src) {
				src = filepath.Join(opts.ConfigDir, src)
			}
			fi, err := os.Stat(src)
			if err != nil {
				return nil, fmt.Errorf("extra file for %s: %w", pkg, err)
			}
			mode := os.FileMode(0o644)
			if fi.Mode()&0o111 != 0 {
				mode = 0o755
			}
			t.copy(dst, mode, src)
		}
	}
	return t, nil
}
