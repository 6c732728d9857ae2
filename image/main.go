// Command image builds a flashable gizmo disk image for one board from
// config.json, or updates a running gizmo over the network.
//
//	go run ./image -board rpi4 -o gizmo.img
//	go run ./image update -board rpi4 -host gizmo.home.arpa
//
// Run it from the gizmo module (go.mod pins gokrazy, the kernel, firmware
// and EEPROM modules). `go run ./image -h` lists the boards.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"codeberg.org/monostack/gizmo/hardware"
	"codeberg.org/monostack/gizmo/image/builder"
	"codeberg.org/monostack/gizmo/image/instance"
	"codeberg.org/monostack/gizmo/image/updater"
)

// defaultEpoch (2026-01-01T00:00:00Z) stamps every file in the image unless
// SOURCE_DATE_EPOCH says otherwise, so that two builds of the same tree are
// byte-identical.
const defaultEpoch = 1767225600

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", strings.TrimPrefix(err.Error(), "image: "))
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "update" {
		return runUpdate(ctx, args[1:], stderr)
	}
	return runBuild(ctx, args, stderr)
}

// common are the flags of both subcommands.
type common struct {
	board, config, passwordFile string
	verbose                     bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.board, "board", "", "board profile (see the list below)")
	fs.StringVar(&c.config, "config", "config.json", "gokrazy instance config")
	fs.StringVar(&c.passwordFile, "password-file", "", "file holding gokrazy's web UI password (default: Update.HTTPPassword, else ~/.config/gokrazy/hosts/HOSTNAME/http-password.txt, created if missing)")
	fs.BoolVar(&c.verbose, "v", false, "log every compiler invocation")
}

func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\nboards:")
		tw := tabwriter.NewWriter(stderr, 2, 8, 2, ' ', 0)
		for _, b := range hardware.All() {
			name := b.Name
			if len(b.Aliases) > 0 {
				name += " (" + strings.Join(b.Aliases, ", ") + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, b.GOARCH, b.Description)
		}
		tw.Flush()
	}
	return fs
}

// options loads everything a build needs from the flags.
func (c *common) options(stderr io.Writer) (builder.Options, error) {
	if c.board == "" {
		return builder.Options{}, fmt.Errorf("-board is required (one of %s)", strings.Join(hardware.Names(), ", "))
	}
	board, err := hardware.Lookup(c.board)
	if err != nil {
		return builder.Options{}, err
	}
	cfg, err := instance.Load(c.config)
	if err != nil {
		return builder.Options{}, err
	}
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if os.Getenv("SOURCE_DATE_EPOCH") == "" {
		// go-diskfs and mtools read the variable from the environment.
		os.Setenv("SOURCE_DATE_EPOCH", strconv.Itoa(defaultEpoch))
	}
	pw, err := c.password(cfg, log)
	if err != nil {
		return builder.Options{}, err
	}
	return builder.Options{
		Config:    cfg,
		ConfigDir: filepath.Dir(c.config),
		Board:     board,
		Password:  pw,
		Logger:    log,
	}, nil
}

// password finds gokrazy's web UI password the way gok does, creating one
// on first use so that a fresh checkout builds without setup.
func (c *common) password(cfg instance.Config, log *slog.Logger) (string, error) {
	if cfg.Update != nil && cfg.Update.NoPassword {
		return "", nil
	}
	if c.passwordFile != "" {
		b, err := os.ReadFile(c.passwordFile)
		if err != nil {
			return "", fmt.Errorf("-password-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if cfg.Update != nil && cfg.Update.HTTPPassword != "" {
		return cfg.Update.HTTPPassword, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the password file: %w", err)
	}
	hostFile := filepath.Join(dir, "gokrazy", "hosts", cfg.Hostname, "http-password.txt")
	for _, p := range []string{hostFile, filepath.Join(dir, "gokrazy", "http-password.txt")} {
		if b, err := os.ReadFile(p); err == nil {
			if pw := strings.TrimSpace(string(b)); pw != "" {
				return pw, nil
			}
		}
	}
	pw := rand.Text()
	if err := os.MkdirAll(filepath.Dir(hostFile), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(hostFile, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	log.Info("image: generated gokrazy web UI password", "file", hostFile, "user", "gokrazy")
	return pw, nil
}

const buildUsage = `usage: image -board NAME -o FILE [flags]

Builds a flashable disk image (gokrazy layout) from config.json. FILE may be
a block device, e.g. /dev/sdX: then /perm fills the whole device. Run from
the gizmo module. Network updates: image update -h.

`

func runBuild(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("image", buildUsage, stderr)
	var c common
	c.register(fs)
	out := fs.String("o", "", "output image file or block device")
	permMiB := fs.Int64("perm-size", builder.DefaultPermSize>>20, "size of /perm in MiB (image files only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags go before it? see -h)", fs.Arg(0))
	}
	if *out == "" {
		return errors.New("-o is required")
	}
	opts, err := c.options(stderr)
	if err != nil {
		return err
	}
	opts.PermSize = *permMiB << 20
	start := time.Now()
	res, err := builder.Build(ctx, opts, *out)
	if err != nil {
		return err
	}
	opts.Logger.Info("image: written", "file", *out, "board", opts.Board.Name,
		"image_mib", res.ImageSize>>20, "root_kib", res.RootSize>>10,
		"root_partuuid", res.Layout.PartGUIDs[1], "took", time.Since(start).Round(time.Millisecond))
	return nil
}

const updateUsage = `usage: image update -board NAME [-host HOST] [flags]

Builds the root and boot file systems and sends them to a running gizmo
through gokrazy's update API: the root goes to the inactive root partition,
the boot partition is replaced, the next boot switches to the new root, and
the gizmo reboots.

`

func runUpdate(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("image update", updateUsage, stderr)
	var c common
	c.register(fs)
	host := fs.String("host", "", "the gizmo's name or address (default: Update.Hostname or Hostname from the config)")
	eeprom := fs.Bool("eeprom", false, "also write the Pi 4 EEPROM update files (the EEPROM is flashed at the next boot)")
	noReboot := fs.Bool("no-reboot", false, "write and switch, but do not reboot")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	opts, err := c.options(stderr)
	if err != nil {
		return err
	}
	if opts.Password == "" {
		return errors.New("the config sets Update.NoPassword: the gizmo's update API is not reachable over the network")
	}
	opts.SkipEEPROM = !*eeprom
	target := *host
	if target == "" {
		target = opts.Config.UpdateHost()
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	parts, err := builder.BuildParts(ctx, opts)
	if err != nil {
		return err
	}
	defer parts.Close()
	cl := &updater.Client{
		BaseURL:  "http://" + hostPort(target, opts.Config.HTTPPort()),
		Password: opts.Password,
		Logger:   opts.Logger,
	}
	return cl.Update(ctx, updater.Files{Root: parts.Root, Boot: parts.Boot}, !*noReboot)
}

// hostPort joins host and port for a URL: IPv6 literals get brackets and
// a zone's "%" is escaped (RFC 6874 §2).
func hostPort(host, port string) string {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return net.JoinHostPort(strings.ReplaceAll(host, "%", "%25"), port)
}
