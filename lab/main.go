// Command lab builds the gizmo's virtual home network (the topology in
// lab/README.md) in network namespaces and runs the gizmo in it.
//
//	sudo go run ./lab up      # build the lab, start the gizmo, return
//	sudo go run ./lab demo    # up, drive the scenarios, dashboard on 127.0.0.1:8080
//	sudo go run ./lab status  # what is running
//	sudo go run ./lab down    # remove everything, also after a crash
//	sudo go run ./lab deps    # install every Debian package the lab, tests and builds use
//
// up and demo first install the Debian packages the lab lacks (package
// deps) with apt-get, or stop before building anything with one line that
// names them.
//
// up, down and demo are idempotent. The lab keeps running after `up`
// returns: a detached `lab supervise` process holds it (and the machine-wide
// lab lock) until `down`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/internal/clat"
	"codeberg.org/monostack/gizmo/lab/internal/inetweb"
	"codeberg.org/monostack/gizmo/lab/netlab"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage: lab [flags] up|down|demo|status|deps

  up      build the lab and start the gizmo; returns while the lab keeps running
  down    stop and remove everything a lab left (namespaces, processes, files)
  demo    up, run the scenarios, serve the gizmo's dashboard on 127.0.0.1:8080 until Ctrl-C
  status  show what is running
  deps    install the Debian packages of the lab, the tests and the builds
          (deps -print [GROUP...] lists them; groups: %s)

up and demo first install the Debian packages the lab lacks, with apt-get.

flags:
`, groupNames())
	flag.PrintDefaults()
}

func main() {
	var opts cliOptions
	flag.BoolVar(&opts.noGizmo, "nogizmo", false, "up/demo: build the lab without the gizmo daemon")
	flag.StringVar(&opts.gizmoBinary, "gizmo", "", "up/demo: run this gizmo binary instead of building ./gizmo")
	flag.StringVar(&opts.listen, "listen", "127.0.0.1:8080", "demo: where the dashboard proxy listens")
	flag.BoolVar(&opts.verbose, "v", false, "debug logging")
	flag.StringVar(&opts.scenario, "scenario", netlab.DefaultScenario, "up: the kind of upstream: "+strings.Join(netlab.Scenarios(), ", "))
	flag.BoolVar(&opts.noInstall, "no-install", false, "up/demo/deps: do not install missing Debian packages, stop naming them (also "+deps.NoInstallEnv+"=1)")
	flag.Usage = usage
	flag.Parse()
	level := slog.LevelInfo
	if opts.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if flag.NArg() < 1 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch cmd, args := flag.Arg(0), flag.Args()[1:]; cmd {
	case "up":
		err = cmdUp(ctx, logger, opts, true)
	case "down":
		err = cmdDown(ctx, logger)
	case "demo":
		err = cmdDemo(ctx, logger, opts)
	case "status":
		err = cmdStatus(ctx)
	case "deps":
		err = cmdDeps(ctx, opts, args)
	case "supervise": // hidden: `lab up` starts it
		err = cmdSupervise(ctx, opts, level)
	default:
		tool, ok := tools[cmd]
		if !ok {
			fmt.Fprintf(os.Stderr, "lab: unknown command %q\n", cmd)
			usage()
			os.Exit(2)
		}
		err = tool(ctx, logger, args)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lab: %v\n", err)
		os.Exit(1)
	}
}

// A tool is a hidden command that the lab runs itself inside a namespace:
// a peer (the ISP's RA sender, AFTR, a LAN host's CLAT or web server) or
// an attacker of the hostile tests.
type tool func(ctx context.Context, logger *slog.Logger, args []string) error

var tools = map[string]tool{
	"serve-http":     cmdServeHTTP,
	"clat":           cmdCLAT,
	"isp-ra":         cmdISPRA,
	"isp-vlan":       cmdISPVLAN,
	"aftr":           cmdAFTR,
	"rogue-upstream": cmdRogueUpstream,
	"spray-udp":      quiet(cmdSprayUDP),
	"rotate-icmp6":   quiet(cmdRotateICMP6),
	"rs-flood":       quiet(cmdRSFlood),
	"nd-spoof":       quiet(cmdNDSpoof),
	"dhcp-forge":     quiet(cmdDHCPForge),
	"dhcp-flood":     quiet(cmdDHCPFlood),
	"dad-flood":      quiet(cmdDADFlood),
	"ra-flood":       quiet(cmdRAFlood),
}

// quiet makes a tool of a command that reports only through its error.
func quiet(cmd func(ctx context.Context, args []string) error) tool {
	return func(ctx context.Context, _ *slog.Logger, args []string) error { return cmd(ctx, args) }
}

type cliOptions struct {
	noGizmo     bool
	gizmoBinary string
	listen      string
	verbose     bool
	scenario    string
	noInstall   bool
}

func cmdServeHTTP(ctx context.Context, logger *slog.Logger, args []string) error {
	var sites []inetweb.Site
	for _, a := range args {
		s, err := inetweb.ParseSite(a)
		if err != nil {
			return err
		}
		sites = append(sites, s)
	}
	return inetweb.Serve(ctx, logger, sites)
}

func cmdCLAT(ctx context.Context, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("clat", flag.ContinueOnError)
	var cfg clat.Config
	fs.StringVar(&cfg.Interface, "interface", netlab.HostIf, "LAN interface")
	fs.StringVar(&cfg.Tun, "tun", netlab.CLATTun, "tayga's tun device")
	fs.StringVar(&cfg.Dir, "dir", "", "config and state directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Dir == "" {
		return errors.New("clat: -dir is required")
	}
	cfg.Logger = logger.With("component", "clat")
	return clat.Run(ctx, cfg)
}
