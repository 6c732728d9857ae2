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
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
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
	"codeberg.org/monostack/gizmo/web/tlscert"
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
	board, config, passwordFile, signingKey string
	verbose                                 bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.board, "board", "", "board profile (see the list below)")
	fs.StringVar(&c.config, "config", "config.json", "gokrazy instance config")
	fs.StringVar(&c.passwordFile, "password-file", "", "file holding the appliance password (default: Update.HTTPPassword, else ~/.config/gokrazy/hosts/HOSTNAME/http-password.txt, created if missing)")
	fs.StringVar(&c.signingKey, "signing-key", "", "Ed25519 key that signs updates; the image trusts its public half (default: "+signingKeyFile+" beside the password file, created if missing)")
	fs.BoolVar(&c.verbose, "v", false, "log every compiler invocation")
}

// signingKeyFile is the update signing key's name beside the password.
const signingKeyFile = "gizmo-update.key"

// setup is what a build needs besides the flags.
type setup struct {
	opts builder.Options
	key  ed25519.PrivateKey
	// secrets is the directory of the password, the signing key and the
	// pinned TLS key of the gizmo.
	secrets string
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
func (c *common) options(stderr io.Writer) (setup, error) {
	if c.board == "" {
		return setup{}, fmt.Errorf("-board is required (one of %s)", strings.Join(hardware.Names(), ", "))
	}
	board, err := hardware.Lookup(c.board)
	if err != nil {
		return setup{}, err
	}
	cfg, err := instance.Load(c.config)
	if err != nil {
		return setup{}, err
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
	pw, secrets, err := c.password(cfg, log)
	if err != nil {
		return setup{}, err
	}
	st := setup{secrets: secrets, opts: builder.Options{
		Config:    cfg,
		ConfigDir: filepath.Dir(c.config),
		Board:     board,
		Password:  pw,
		Logger:    log,
	}}
	if pw == "" {
		return st, nil // no update API: nothing to sign for
	}
	keyFile := c.signingKey
	if keyFile == "" {
		keyFile = filepath.Join(secrets, signingKeyFile)
	}
	key, created, err := updater.LoadOrCreateKey(keyFile)
	if err != nil {
		return setup{}, err
	}
	if created {
		log.Info("image: generated the update signing key; images built with it accept only updates it signs: keep it with the password", "file", keyFile)
	}
	st.key, st.opts.UpdateKey = key, key.Public().(ed25519.PublicKey)
	return st, nil
}

// password finds the appliance password the way gok finds gokrazy's,
// creating one on first use so that a fresh checkout builds without setup.
// dir is where it lives (the signing key goes beside it).
func (c *common) password(cfg instance.Config, log *slog.Logger) (pw, dir string, err error) {
	if cfg.Update != nil && cfg.Update.NoPassword {
		return "", "", nil
	}
	if c.passwordFile != "" {
		b, err := os.ReadFile(c.passwordFile)
		if err != nil {
			return "", "", fmt.Errorf("-password-file: %w", err)
		}
		return strings.TrimSpace(string(b)), filepath.Dir(c.passwordFile), nil
	}
	confDir, err := os.UserConfigDir()
	if err != nil {
		return "", "", fmt.Errorf("finding the password file: %w", err)
	}
	hostFile := filepath.Join(confDir, "gokrazy", "hosts", cfg.Hostname, "http-password.txt")
	hostDir := filepath.Dir(hostFile)
	if cfg.Update != nil && cfg.Update.HTTPPassword != "" {
		return cfg.Update.HTTPPassword, hostDir, nil
	}
	for _, p := range []string{hostFile, filepath.Join(confDir, "gokrazy", "http-password.txt")} {
		if b, err := os.ReadFile(p); err == nil {
			if pw := strings.TrimSpace(string(b)); pw != "" {
				return pw, hostDir, nil
			}
		}
	}
	pw = rand.Text()
	if err := os.MkdirAll(hostDir, 0o700); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(hostFile, []byte(pw+"\n"), 0o600); err != nil {
		return "", "", err
	}
	log.Info("image: generated the appliance password", "file", hostFile)
	return pw, hostDir, nil
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
	st, err := c.options(stderr)
	if err != nil {
		return err
	}
	opts := st.opts
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

Builds the root and boot file systems, signs them with the update signing
key and sends them to a running gizmo over HTTPS: the root goes to the
inactive root partition, the boot partition is replaced, the next boot
switches to the new root, and the gizmo reboots. The gizmo installs only
images signed with the key its own image was built with.

The gizmo's TLS certificate is self-signed: on the first contact the
command trusts the key it presents, prints its fingerprint (compare it with
the one on the gizmo's serial console or the dashboard's footer) and pins it
in ` + pinFile + ` beside the password; -pin gives it instead.

`

// pinFile holds the gizmo's pinned TLS key fingerprint.
const pinFile = "gizmo-tls-key.sha256"

func runUpdate(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("image update", updateUsage, stderr)
	var c common
	c.register(fs)
	host := fs.String("host", "", "the gizmo's name or address (default: Update.Hostname or Hostname from the config)")
	eeprom := fs.Bool("eeprom", false, "also write the Pi 4 EEPROM update files (the EEPROM is flashed at the next boot)")
	noReboot := fs.Bool("no-reboot", false, "write and switch, but do not reboot")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	pin := fs.String("pin", "", "SHA-256 of the gizmo's TLS public key (default: the one pinned on first contact)")
	var cur current
	fs.StringVar(&cur.passwordFile, "current-password-file", "", "rotating the password: the file with the password the running gizmo knows (the new image gets -password-file's)")
	fs.StringVar(&cur.signingKey, "current-signing-key", "", "rotating the signing key: the key the running gizmo's image trusts, which signs this update (the new image trusts -signing-key's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	st, err := c.options(stderr)
	if err != nil {
		return err
	}
	opts := st.opts
	if opts.Password == "" {
		return errors.New("the config sets Update.NoPassword: the gizmo's update API is not reachable over the network")
	}
	authPassword, signWith, err := cur.credentials(st)
	if err != nil {
		return err
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
		BaseURL:    "https://" + hostPort(target, opts.Config.HTTPPort()),
		Password:   authPassword,
		SigningKey: signWith,
		Logger:     opts.Logger,
	}
	if cl.KeySHA256, err = pinnedKey(ctx, cl, *pin, filepath.Join(st.secrets, pinFile), opts.Logger); err != nil {
		return err
	}
	err = cl.Update(ctx, updater.Files{Root: parts.Root, Boot: parts.Boot}, !*noReboot)
	if errors.Is(err, updater.ErrKeyMismatch) {
		return fmt.Errorf("%w\n(if the gizmo was re-flashed or lost /perm, it has a new key: check it on its serial console, then pass -pin)", err)
	}
	return err
}

// current names what the running gizmo knows when an update rotates the
// password or the signing key: the update authenticates with the old
// password and is signed with the old key, while the image it installs
// carries the new password and trusts the new key from its next boot.
type current struct {
	passwordFile, signingKey string
}

// credentials are the password to authenticate with and the key to sign
// with: the current ones where given, else the new image's own.
func (c current) credentials(st setup) (password string, key ed25519.PrivateKey, err error) {
	password, key = st.opts.Password, st.key
	if c.passwordFile != "" {
		b, err := os.ReadFile(c.passwordFile)
		if err != nil {
			return "", nil, fmt.Errorf("-current-password-file: %w", err)
		}
		if password = strings.TrimSpace(string(b)); password == "" {
			return "", nil, fmt.Errorf("-current-password-file %s is empty", c.passwordFile)
		}
	}
	if c.signingKey != "" {
		if key, err = updater.LoadKey(c.signingKey); err != nil {
			return "", nil, fmt.Errorf("-current-signing-key: %w", err)
		}
	}
	return password, key, nil
}

// pinnedKey is the gizmo's TLS key fingerprint to trust: -pin (saved for
// the next time), or the one saved, or on first contact the one the gizmo
// presents (saved, and printed for the owner to compare).
func pinnedKey(ctx context.Context, cl *updater.Client, flagPin, file string, log *slog.Logger) (string, error) {
	save := func(fp string) error {
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return err
		}
		return os.WriteFile(file, []byte(fp+"\n"), 0o600)
	}
	if flagPin != "" {
		fp, err := tlscert.NormalizeFingerprint(flagPin)
		if err != nil {
			return "", fmt.Errorf("-pin: %w", err)
		}
		return fp, save(fp)
	}
	if b, err := os.ReadFile(file); err == nil {
		fp, err := tlscert.NormalizeFingerprint(string(b))
		if err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		return fp, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	fp, err := cl.KeySHA256Of(ctx)
	if err != nil {
		return "", err
	}
	log.Warn("image: first contact with this gizmo: trusting the TLS key it presents; compare it with its serial console (update API TLS ... public_key_sha256) or the dashboard's footer",
		"public_key_sha256", fp, "pinned_in", file)
	return fp, save(fp)
}

// hostPort joins host and port for a URL: IPv6 literals get brackets and
// a zone's "%" is escaped (RFC 6874 §2).
func hostPort(host, port string) string {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return net.JoinHostPort(strings.ReplaceAll(host, "%", "%25"), port)
}
