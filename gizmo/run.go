package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/lanif"
	"codeberg.org/monostack/gizmo/services/neighbors"
)

// run wires the services to the state and runs them until ctx is done.
func run(ctx context.Context, cfg config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	wan, lan, err := roles(cfg)
	if err != nil {
		return err
	}
	log.Info("starting", "wan", wan, "lan", lan, "state_dir", cfg.StateDir)

	d := newDaemon(cfg, log)
	dur, warnings := loadDurable(cfg.StateDir)
	for _, w := range warnings {
		log.Error("state file was corrupt; starting fresh from defaults", "err", w)
	}
	d.dur = dur
	d.durDirty = true // the ULA may be new
	d.st.ULA = dur.ULA
	d.st.WAN.Interface = wan
	d.st.LAN.Interface = lan
	if err := readLAN(lan, &d.st.LAN); err != nil {
		log.Warn("LAN interface not ready yet", "err", err)
	}

	lanAddrs, err := lanif.New(lanif.Config{Interface: lan, Logger: log})
	if err != nil {
		return err
	}
	d.add("lanif", lanAddrs, func(st *state.State, now time.Time) { lanAddrs.Update(plan.LAN(st, now)) })

	neigh, err := neighbors.New(neighbors.Config{Interface: lan, Logger: log, OnSighting: func(s neighbors.Sighting) {
		d.sawHost(s.MAC, s.Addr, s.At)
	}})
	if err != nil {
		return err
	}
	d.add("neighbors", neigh, nil)

	if err := wireServices(ctx, d, cfg, wan, lan); err != nil {
		return err
	}
	return d.run(ctx)
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

// roles decides which interface is the WAN and which the LAN. Flags win;
// without them the DESIGN.md names uplink0 and lan0 are used when present.
func roles(cfg config) (wan, lan string, err error) {
	wan, lan = cfg.WAN, cfg.LAN
	if wan == "" {
		wan = "uplink0"
	}
	if lan == "" {
		lan = "lan0"
	}
	if wan == lan {
		return "", "", fmt.Errorf("-wan and -lan are both %q", wan)
	}
	for _, n := range []string{wan, lan} {
		if _, err := net.InterfaceByName(n); err != nil {
			return "", "", fmt.Errorf("interface %s: %w (name the ports with -wan and -lan)", n, err)
		}
	}
	return wan, lan, nil
}
