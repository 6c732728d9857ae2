// Package netlab builds the gizmo's virtual home network (the topology in
// lab/README.md) in network namespaces, with real software as the peers: radvd, Kea
// (DHCPv6-PD and DHCPv4) and BIND in gz-isp; HTTP servers in gz-inet;
// dhcpcd and a tayga CLAT on the LAN hosts. It starts the gizmo daemon in
// gz-gizmo and supervises it as gokrazy does.
//
// A Lab is for one process at a time on the machine: Up takes a
// machine-wide lock (see LockName) and Down releases it, so tests in
// different packages serialize.
//
//	l, err := netlab.Up(ctx, netlab.Options{})
//	defer l.Down()
//	out, err := l.Exec(ctx, netlab.NSLanV6, "ip", "-6", "addr")
//
// Only the gz-* namespaces and loopback carry traffic; nothing connects to
// the host's uplink, and every address is a documentation prefix.
package netlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"codeberg.org/monostack/gizmo/internal/filecopy"
)

// DefaultRunDir holds configs, logs, pid files, leases and the gizmo's state
// dir while a lab is up. Down removes it.
const DefaultRunDir = "/run/gizmo-lab"

// Options configure Up. The zero value builds the whole lab with the gizmo.
type Options struct {
	// NoGizmo builds the topology and the peers but does not start the
	// gizmo daemon (gz-gizmo gets only its interfaces).
	NoGizmo bool
	// GizmoBinary is a prebuilt gizmo daemon. Empty: Up runs
	// `go build -o <rundir>/gizmo ./gizmo` in ModuleRoot.
	GizmoBinary string
	// GizmoArgs are appended to the gizmo's standard flags.
	GizmoArgs []string
	// HelperBinary is the lab binary (package codeberg.org/monostack/gizmo/lab)
	// that serves HTTP in gz-inet and runs the CLAT; it is copied into the run
	// dir. Empty: Up builds ./lab in ModuleRoot.
	HelperBinary string
	// ModuleRoot is the gizmo module's root. Empty: found from this
	// package's source directory, else from the working directory upwards.
	ModuleRoot string
	// RunDir; empty means DefaultRunDir.
	RunDir string
	// Lifetimes of the ISP's DHCP leases; zero means short lab defaults
	// (renew 20s, rebind 32s, preferred 40s, valid 60s).
	Lifetimes Lifetimes
	// Logger for the lab's own progress; nil means slog.Default().
	Logger *slog.Logger
	// Scenario names the kind of upstream the lab builds (scenario.go,
	// Scenarios()); empty means DefaultScenario.
	Scenario string
	// NoInstall: Up does not install missing Debian packages (package
	// deps) but fails naming them; so does GIZMO_LAB_NO_INSTALL=1.
	NoInstall bool
	// HaveTool replaces the check whether a command or file the lab uses
	// is there (tests); nil means deps.Have.
	HaveTool func(use string) bool
}

func (o Options) withDefaults() Options {
	if o.RunDir == "" {
		o.RunDir = DefaultRunDir
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Lifetimes = o.Lifetimes.withDefaults()
	return o
}

// Lab is a running lab. Its methods are safe for concurrent use.
type Lab struct {
	opts   Options
	logger *slog.Logger
	runDir string
	helper string // lab binary in the run dir
	built  string // binaries built before taking the lock
	lock   *machineLock
	// scenario is Options.Scenario, looked up (scenario.go).
	scenario Scenario

	mu     sync.Mutex
	procs  map[string]*process
	pdPool netip.Prefix
	gizmo  *supervisor
	down   bool
}

// Up builds the lab and starts its daemons; it returns when every peer is
// ready and the gizmo has been started. It first installs the Debian
// packages the lab lacks (or fails naming them, before it builds
// anything), waits (until ctx is done) for the machine-wide lock, then
// removes whatever a crashed lab left.
// On error nothing is left behind and the lock is released.
func Up(ctx context.Context, opts Options) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("netlab: the lab needs root (network namespaces)")
	}
	sc, err := LookupScenario(opts.Scenario)
	if err != nil {
		return nil, err
	}
	if opts.Lifetimes == (Lifetimes{}) {
		opts.Lifetimes = sc.Lifetimes
	}
	opts = opts.withDefaults()
	if err := ensureDeps(ctx, opts); err != nil {
		return nil, err
	}
	built, err := prebuild(ctx, opts)
	if err != nil {
		return nil, err
	}
	if built != "" {
		defer os.RemoveAll(built)
	}
	lock, err := acquireLock(ctx, opts.Logger)
	if err != nil {
		return nil, err
	}
	l := &Lab{
		opts:   opts,
		logger: opts.Logger.With("component", "netlab"),
		runDir: opts.RunDir,
		lock:   lock,
		procs:  map[string]*process{},
		pdPool: PDPoolA,

		scenario: sc,
	}
	l.built = built
	start := time.Now()
	if err := l.up(ctx); err != nil {
		if derr := l.Down(); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	l.logger.Info("lab is up", "rundir", l.runDir, "gizmo", !opts.NoGizmo, "took", time.Since(start).Round(time.Millisecond))
	return l, nil
}

func (l *Lab) up(ctx context.Context) error {
	if left := Leftovers(ctx, l.runDir); len(left) > 0 {
		l.logger.Info("removing leftovers of an earlier lab", "items", strings.Join(left, "; "))
	}
	if err := cleanup(ctx, l.logger, l.runDir); err != nil {
		return err
	}
	if err := os.MkdirAll(l.runDir, 0o755); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}

	// Build the binaries while the topology comes up.
	buildErr := make(chan error, 1)
	go func() { buildErr <- l.buildBinaries(ctx) }()
	topoErr := l.buildTopology(ctx)
	if topoErr == nil {
		topoErr = runBatches(ctx, batches(l.scenario.topologySteps()))
	}
	if err := <-buildErr; err != nil {
		return err
	}
	if topoErr != nil {
		return topoErr
	}
	if err := l.startPeers(ctx); err != nil {
		return err
	}
	if l.scenario.ISPUnplugged {
		if err := l.SetISPLink(ctx, false); err != nil {
			return err
		}
	}
	if !l.opts.NoGizmo {
		l.gizmo = newSupervisor(l)
		if err := l.gizmo.start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// moduleRoot finds the gizmo module's root directory.
func (l *Lab) moduleRoot() (string, error) {
	if l.opts.ModuleRoot != "" {
		return l.opts.ModuleRoot, nil
	}
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			b, err := os.ReadFile(filepath.Join(d, "go.mod"))
			if err == nil && strings.Contains(string(b), "module codeberg.org/monostack/gizmo\n") {
				return d, nil
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return "", errors.New("netlab: cannot find the gizmo module root (set Options.ModuleRoot)")
}

// prebuild builds the binaries Up needs into a temporary directory. It runs
// before Up takes the lab lock: compiling can take minutes on a busy machine,
// and other test packages should not wait for it.
func prebuild(ctx context.Context, opts Options) (string, error) {
	var build []string
	if opts.HelperBinary == "" {
		build = append(build, "./lab", "lab")
	}
	if !opts.NoGizmo && opts.GizmoBinary == "" {
		build = append(build, "./gizmo", "gizmo")
	}
	if len(build) == 0 {
		return "", nil
	}
	root, err := (&Lab{opts: opts}).moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "gizmo-lab-build-")
	if err != nil {
		return "", fmt.Errorf("netlab: %w", err)
	}
	for i := 0; i < len(build); i += 2 {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, build[i+1]), build[i])
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("netlab: go build %s: %w\n%s", build[i], err, tail(out, 20))
		}
	}
	return dir, nil
}

// buildBinaries puts the lab binary and the gizmo into the run dir.
func (l *Lab) buildBinaries(context.Context) error {
	l.helper = filepath.Join(l.runDir, "lab")
	src := l.opts.HelperBinary
	if src == "" {
		src = filepath.Join(l.built, "lab")
	}
	if err := filecopy.Copy(l.helper, src, 0o755); err != nil {
		return fmt.Errorf("netlab: install lab binary: %w", err)
	}
	if !l.opts.NoGizmo && l.opts.GizmoBinary == "" {
		if err := filecopy.Copy(filepath.Join(l.runDir, "gizmo"), filepath.Join(l.built, "gizmo"), 0o755); err != nil {
			return fmt.Errorf("netlab: install gizmo: %w", err)
		}
	}
	return nil
}

func (l *Lab) now() time.Time { return time.Now() }

func (l *Lab) addProc(p *process) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.procs[p.name] = p
}

// Down stops the gizmo (SIGTERM first, so it can send its final RA), stops
// every peer, deletes the namespaces and the run dir, and releases the
// machine-wide lock. It returns an error if anything of the lab is left
// (namespaces, processes, files), so that the next Up starts from nothing.
// It is safe to call more than once.
func (l *Lab) Down() error {
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		return nil
	}
	l.down = true
	sup := l.gizmo
	procs := l.procs
	l.mu.Unlock()

	var errs []error
	if sup != nil {
		if err := sup.shutdown(); err != nil {
			errs = append(errs, err)
		}
	}
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.stop(3 * time.Second); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cleanup(ctx, l.logger, l.runDir); err != nil {
		errs = append(errs, err)
	}
	// Check while still holding the lock: once it is released, the next lab
	// in the queue creates its namespaces at once.
	if left := Leftovers(ctx, l.runDir); len(left) > 0 {
		errs = append(errs, fmt.Errorf("netlab: down left behind: %s", strings.Join(left, "; ")))
	}
	l.lock.release()
	l.logger.Info("lab is down")
	return errors.Join(errs...)
}

// RunDir is the lab's run directory (configs, logs, leases).
func (l *Lab) RunDir() string { return l.runDir }

// LogPath returns the log file of a lab process: "gizmo", "named", "kea6",
// "kea4", "chrony", "radvd", "http", "clat", "dhcpcd-lan-v6", "dhcpcd-lan-legacy",
// "http-lan-legacy".
func (l *Lab) LogPath(name string) string { return filepath.Join(l.runDir, name+".log") }

// Exec runs argv inside namespace ns and returns its combined output.
func (l *Lab) Exec(ctx context.Context, ns string, argv ...string) ([]byte, error) {
	return Exec(ctx, ns, argv...)
}

// WaitFor polls cond every 100ms until it reports true, returns an error,
// or ctx is done. what names the condition in the error.
func WaitFor(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	for {
		ok, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("netlab: waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netlab: waiting for %s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitExec runs argv in ns until ok accepts its output (a failing command
// counts as not yet); it returns the accepted output. On timeout the error
// shows the last output.
func (l *Lab) WaitExec(ctx context.Context, ns string, ok func(out string) bool, argv ...string) (string, error) {
	var last string
	err := WaitFor(ctx, fmt.Sprintf("%q in %s", strings.Join(argv, " "), ns), func(ctx context.Context) (bool, error) {
		out, err := Exec(ctx, ns, argv...)
		last = string(out)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		return ok(last), nil
	})
	if err != nil {
		return last, fmt.Errorf("%w; last output:\n%s", err, last)
	}
	return last, nil
}

// ForgetNeighbours removes the IPv6 neighbour entries of every lab
// namespace. A flood of solicitations or advertisements with link-layer
// options from many sources leaves an entry per source in every router
// that hears it (RFC 4861 §6.2.6, §6.3.4): the gizmo, and a LAN host that
// forwards, such as the CLAT host. The lab's namespaces share one kernel
// and its one neighbour table (gc_thresh3, 1,024 entries by default, for
// all namespaces together), and the kernel keeps entries updated in the
// last five seconds: until they age, every namespace's next new neighbour
// fails (sendmsg: invalid argument). A test that floods calls this when
// done.
func (l *Lab) ForgetNeighbours(ctx context.Context) error {
	for _, ns := range labNamespaces() {
		if out, err := l.Exec(ctx, ns, "ip", "-6", "neigh", "flush", "all"); err != nil {
			return fmt.Errorf("netlab: forget the neighbours in %s: %w: %s", ns, err, out)
		}
	}
	return nil
}
