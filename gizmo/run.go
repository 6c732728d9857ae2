package main

import (
	"context"
	"errors"
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
	"codeberg.org/monostack/gizmo/services/roles"
)

// run wires the services to the state and runs them until ctx is done.
func run(ctx context.Context, cfg config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	wan, lan, existing, err := assignRoles(ctx, cfg, log)
	if err != nil {
		return err
	}
	if existing {
		cfg.ExistingNetwork = true
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
	d.st.InboundRules = dur.InboundRules
	d.st.WAN.Interface = wan
	d.st.LAN.Interface = lan
	if err := readLAN(lan, &d.st.LAN); err != nil {
		log.Warn("LAN interface not ready yet", "err", err)
	}

	lanAddrs, err := lanif.New(lanif.Config{Interface: lan, Logger: log})
	if err != nil {
		return err
	}
	d.add("lanif", lanAddrs, func(st *state.State, now time.Time) {
		p := plan.LAN(st, now)
		if cfg.ExistingNetwork {
			p = existingNetworkLAN(p, st, now)
		}
		lanAddrs.Update(p)
	})

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

// assignRoles decides which interface is the WAN and which the LAN. Flags
// win. Without them, ports that already carry the gizmo's names (uplink0 and
// a plain lan0) keep their roles; otherwise every port is probed until one
// hears an upstream router or DHCPv4 server (services/roles).
func assignRoles(ctx context.Context, cfg config, log *slog.Logger) (wan, lan string, existing bool, err error) {
	if cfg.WAN != "" || cfg.LAN != "" {
		wan, lan = cfg.WAN, cfg.LAN
		if wan == "" {
			wan = roles.WANName
		}
		if lan == "" {
			lan = roles.LANName
		}
		for _, n := range []string{wan, lan} {
			if _, err := net.InterfaceByName(n); err != nil {
				return "", "", false, fmt.Errorf("interface %s: %w", n, err)
			}
		}
		return wan, lan, wan == lan, nil
	}
	_, errW := net.InterfaceByName(roles.WANName)
	if l, errL := net.InterfaceByName(roles.LANName); errW == nil && errL == nil && !isBridge(l.Name) {
		return roles.WANName, roles.LANName, false, nil
	}
	for attempt := 1; ; attempt++ {
		ports, err := roles.Ports()
		if err != nil {
			return "", "", false, err
		}
		r, evidence, err := roles.Detect(ctx, ports, 5*time.Second, log)
		if err == nil {
			log.Info("roles detected", "roles", r.String(), "evidence", fmt.Sprintf("%+v", evidence))
			wan, lan, err := roles.Apply(r)
			if err != nil {
				log.Warn("applying roles was incomplete", "err", err)
			}
			return wan, lan, r.ExistingNetwork, nil
		}
		if !errors.Is(err, roles.ErrNoUpstream) {
			return "", "", false, err
		}
		if attempt == 1 || attempt%12 == 0 {
			log.Warn("waiting for an upstream: no port hears a router or DHCPv4 server yet", "ports", ports)
		}
		select {
		case <-ctx.Done():
			return "", "", false, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func isBridge(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name + "/bridge")
	return err == nil
}
