package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/derive"
	"codeberg.org/monostack/gizmo/gizmo/state"
)

// servicesStopWait bounds how long a roles change waits for the old
// services to return. If one hangs, the process exits instead (gokrazy
// restarts it): the LAN services must never run on the port that became
// the WAN, and a fresh process is the one sure way to stop them.
const servicesStopWait = 30 * time.Second

// run wires the services to the state and runs them until ctx is done, or
// until the detected roles change (a *rolesChanged error). next, when not
// nil, is the previous run's decision: its roles are applied without
// probing again.
func run(ctx context.Context, cfg config, log *slog.Logger, proc process, next *rolesChanged) error {
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	// The durable state first: it names the WAN that proved itself,
	// which keeps its role across a reboot.
	dur, warnings := loadDurable(cfg.StateDir)
	for _, w := range warnings {
		log.Error("state file was corrupt; starting fresh from defaults", "err", w)
	}
	as, err := assignRoles(ctx, cfg, log, next, dur.ProvenWAN)
	if err != nil {
		return err
	}
	wan, lan := as.wan, as.lan
	if as.existing {
		cfg.ExistingNetwork = true
	}
	log.Info("starting", "wan", wan, "lan", lan, "state_dir", cfg.StateDir)

	d := newDaemon(cfg, log)
	d.proc = proc
	restoreDurable(&d.st, dur)
	d.dirty = true // the ULA may be new
	d.st.WAN.Interface = wan
	d.st.LAN.Interface = lan
	proven := d.st.Roles.Proven
	d.st.Roles = as.status
	d.st.Roles.Proven = proven
	if next != nil {
		d.st.Roles.Changes = next.changes
	}
	// Pinned or not before the watch hears its first signal.
	derive.ProveWAN(&d.st, time.Now())
	if err := readLAN(lan, &d.st.LAN); err != nil {
		log.Warn("LAN interface not ready yet", "err", err)
	}
	if err := wireServices(d, cfg, wan, lan); err != nil {
		return err
	}
	running := trackRunning(d)

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watched := make(chan struct{})
	if as.watch {
		d.mu.Lock()
		d.changeRoles = ownerRoles(d, as, cancel, log)
		d.mu.Unlock()
		go func() {
			defer close(watched)
			watchRoles(runCtx, cancel, d, as, log)
		}()
	} else {
		close(watched)
	}
	err = d.run(runCtx)
	cancel(nil) // d.run may have returned on its own; the watch ends too
	<-watched   // and never touches a port after the next roles are applied
	var rc *rolesChanged
	if !errors.As(context.Cause(runCtx), &rc) || ctx.Err() != nil {
		return err
	}
	if err != nil {
		log.Error("saving state before the roles change failed", "err", err)
	}
	if !running.waitIdle(servicesStopWait) {
		return fmt.Errorf("roles changed, but %d services still run after %s: exiting so that none of them serves the new WAN", running.n.Load(), servicesStopWait)
	}
	rc.changes = d.st.Roles.Changes + 1
	return rc
}

// runningServices counts the services whose Run has not returned.
type runningServices struct{ n atomic.Int64 }

type countedService struct {
	service
	n *atomic.Int64
}

func (c countedService) Run(ctx context.Context) error {
	c.n.Add(1)
	defer c.n.Add(-1)
	return c.service.Run(ctx)
}

// trackRunning wraps every service the daemon will run, so that a roles
// change can wait until the last of them has returned.
func trackRunning(d *daemon) *runningServices {
	r := &runningServices{}
	for i, s := range d.services {
		d.services[i].svc = countedService{service: s.svc, n: &r.n}
	}
	return r
}

func (r *runningServices) waitIdle(limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for r.n.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// readLAN fills the LAN interface's hardware address, MTU and link-local
// address.
func readLAN(ifname string, l *state.LAN) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("LAN %s: %w", ifname, err)
	}
	l.HardwareAddr, l.MTU = ifi.HardwareAddr, ifi.MTU
	addrs, err := ifi.Addrs()
	if err != nil {
		return fmt.Errorf("LAN %s: %w", ifname, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
				l.LinkLocal = ip
			}
		}
	}
	return nil
}
