// Command gizmo is the appliance daemon: it owns the router's state, watches
// the WAN and the LAN, and hands every protocol service its plan.
//
// Data flows one way: observe (netlink, DHCP and RA from the WAN, LAN
// neighbours, policy edits) → state (one value, owned here) → plan (pure
// functions in gizmo/plan) → apply (each service's Update).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"codeberg.org/monostack/gizmo/web/logring"
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gizmo:", err)
		os.Exit(2)
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	// The log goes to stderr (gokrazy keeps it, and the image's init
	// mirrors it to the serial console) and into a bounded ring for the
	// dashboard's log page: gokrazy's own log view is on its unix socket.
	proc := process{started: time.Now(), log: logring.New(logring.DefaultLines, logring.DefaultLineBytes)}
	opts := &slog.HandlerOptions{Level: level}
	log := slog.New(slog.NewMultiHandler(slog.NewTextHandler(os.Stderr, opts), slog.NewTextHandler(proc.log, opts)))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// A change of the detected roles ends one run; the next starts with
	// the new roles in the same process (gizmo/run.go).
	var next *rolesChanged
	for {
		err := run(ctx, cfg, log, proc, next)
		if errors.As(err, &next) {
			continue
		}
		if err != nil {
			log.Error("gizmo failed", "err", err)
			os.Exit(1)
		}
		break
	}
	log.Info("stopped cleanly")
}
