package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/roles"
	"codeberg.org/monostack/gizmo/web"
)

// rolesChanged ends a run whose detected roles no longer hold: main runs
// the daemon again, in the same process, with the new roles. The state on
// disk (leases, DUID, policies) is kept; everything else starts afresh.
type rolesChanged struct {
	decision roles.Decision
	changes  int
}

func (e *rolesChanged) Error() string {
	return fmt.Sprintf("roles changed to %s: %s", e.decision.Roles, e.decision.Reason)
}

// watchRoles re-evaluates the detected roles while the services run and
// ends the run (cancel with a *rolesChanged cause) when they change.
func watchRoles(ctx context.Context, cancel context.CancelCauseFunc, d *daemon, as assignment, log *slog.Logger) {
	dec, err := roles.Watch(ctx, roles.WatchConfig{
		Roles:  as.inForce,
		Ports:  as.ports,
		Bridge: roles.LANName,
		Logger: log,
		OnEvaluation: func(ev roles.Evaluation) {
			d.observe(func(st *state.State) {
				st.Roles.EvaluatedAt, st.Roles.Evaluation = ev.At, ev.Port+": "+ev.What
			})
		},
		Pinned: func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.st.Roles.Pinned
		},
		OnRogue: func(r roles.Rogue) {
			d.observe(func(st *state.State) {
				st.Roles.Rogue = &state.RogueUpstream{Port: r.Port, Kind: r.Signal.Kind(), At: r.At, SourceMAC: r.SrcMAC.String(), Source: r.From}
			})
		},
	})
	if err != nil {
		if ctx.Err() == nil {
			log.Error("roles are no longer re-evaluated", "err", err)
		}
		return
	}
	log.Warn("roles changed: restarting the services with the new roles", "roles", dec.Roles.String(), "reason", dec.Reason)
	cancel(&rolesChanged{decision: dec})
}

// assignment is the outcome of assignRoles.
type assignment struct {
	wan, lan string
	existing bool
	// watch: the roles were detected, and are re-evaluated while the
	// gizmo runs; inForce are they with the ports' present names.
	watch   bool
	inForce roles.Roles
	ports   []string
	status  state.RolesStatus
}

// assignRoles decides which interface is the WAN and which the LAN. Flags
// win. Without them, ports that already carry the gizmo's names (uplink0 and
// a plain lan0) keep their roles; the roles a previous run decided on (next)
// are applied; the port that proved itself the WAN in an earlier run
// (proven: it carried a delegation or a DHCPv4 lease, or the owner chose
// it) keeps the role if it has carrier, whatever the other ports hear.
// Otherwise every port is probed for an upstream router or DHCP server
// (services/roles): a reboot with the proven WAN unplugged is how a moved
// uplink is found. If none hears one, a gizmo with several ports starts as
// a LAN without a WAN (or keeps an existing uplink0 as its WAN), and the
// run-time watch moves the role when an uplink appears; a one-port gizmo
// keeps probing, because serving a LAN on the one port could be serving
// someone else's network.
func assignRoles(ctx context.Context, cfg config, log *slog.Logger, next *rolesChanged, proven *state.ProvenWAN) (assignment, error) {
	if cfg.WAN != "" || cfg.LAN != "" {
		wan, lan := cfg.WAN, cfg.LAN
		if wan == "" {
			wan = roles.WANName
		}
		if lan == "" {
			lan = roles.LANName
		}
		for _, n := range []string{wan, lan} {
			if _, err := net.InterfaceByName(n); err != nil {
				return assignment{}, fmt.Errorf("interface %s: %w", n, err)
			}
		}
		return assignment{wan: wan, lan: lan, existing: wan == lan}, nil
	}
	_, errW := net.InterfaceByName(roles.WANName)
	if l, errL := net.InterfaceByName(roles.LANName); errW == nil && errL == nil && !isBridge(l.Name) {
		return assignment{wan: roles.WANName, lan: roles.LANName}, nil
	}
	if next != nil {
		return applyRoles(next.decision.Roles, "re-evaluated: "+next.decision.Reason, next.decision.At, log)
	}
	if proven != nil {
		if r, ok := provenRoles(ctx, proven.MAC, log); ok {
			return applyRoles(r, fmt.Sprintf("kept at start: %s proved itself the WAN (%s, %s) and has carrier",
				r.WAN, proven.By, proven.At.Format(time.DateTime)), time.Now(), log)
		}
	}
	for attempt := 1; ; attempt++ {
		ports, err := roles.Ports()
		if err != nil {
			return assignment{}, err
		}
		r, evidence, err := roles.Detect(ctx, ports, 5*time.Second, log)
		if err == nil {
			log.Info("roles detected", "roles", r.String(), "evidence", fmt.Sprintf("%+v", evidence))
			return applyRoles(r, "detected at start: "+r.WAN+" hears "+roles.EvidenceOf(evidence, r.WAN).Heard(), time.Now(), log)
		}
		if !errors.Is(err, roles.ErrNoUpstream) {
			return assignment{}, err
		}
		if r, ok := withoutUpstream(ports); ok {
			log.Warn("no port hears an upstream yet: running the LAN without a WAN until one does", "roles", r.String())
			return applyRoles(r, "detected at start: no port hears an upstream", time.Now(), log)
		}
		if attempt == 1 || attempt%12 == 0 {
			log.Warn("waiting for an upstream: no port hears a router or DHCP server yet", "ports", ports)
		}
		select {
		case <-ctx.Done():
			return assignment{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// withoutUpstream are the roles when no port hears an upstream: a real
// uplink0 (the WAN of an earlier run, its cable unplugged or its modem still
// booting) keeps the role; otherwise every port is LAN and there is no WAN.
// A single port gets no roles at all (ok is false).
func withoutUpstream(ports []string) (roles.Roles, bool) {
	if len(ports) < 2 {
		return roles.Roles{}, false
	}
	r := roles.Roles{}
	for _, p := range ports {
		if p == roles.WANName { // Ports lists a real port, never the placeholder
			r.WAN = p
			continue
		}
		r.LANPorts = append(r.LANPorts, p)
	}
	return r, true
}

// provenRoles are the roles with the port whose hardware address is mac as
// the WAN, if that port exists beside others and has carrier.
func provenRoles(ctx context.Context, mac string, log *slog.Logger) (roles.Roles, bool) {
	ports, err := roles.Ports()
	if err != nil || len(ports) < 2 {
		return roles.Roles{}, false
	}
	var r roles.Roles
	for _, p := range ports {
		if ifi, err := net.InterfaceByName(p); err == nil && ifi.HardwareAddr.String() == mac {
			r.WAN = p
			continue
		}
		r.LANPorts = append(r.LANPorts, p)
	}
	if r.WAN == "" {
		log.Warn("the port that proved itself the WAN is gone: detecting the roles", "mac", mac)
		return roles.Roles{}, false
	}
	if !roles.WaitCarrier(ctx, r.WAN, 5*time.Second) {
		log.Warn("the port that proved itself the WAN has no carrier: detecting the roles", "port", r.WAN, "mac", mac)
		return roles.Roles{}, false
	}
	return r, true
}

// ownerRoles is one run's daemon.ChangeRoles: the owner moves the WAN role
// to another port from the dashboard. The owner's word proves the port: it
// is pinned and persisted before the answer, and commit ends the run with
// the new roles once the answer is out.
func ownerRoles(d *daemon, as assignment, cancel context.CancelCauseFunc, log *slog.Logger) func(string) (func(), error) {
	return func(port string) (func(), error) {
		if !slices.Contains(as.inForce.LANPorts, port) {
			return nil, fmt.Errorf("%w: %q is not a LAN port (LAN ports: %s)", web.ErrInvalid, port, strings.Join(as.inForce.LANPorts, ", "))
		}
		ifi, err := net.InterfaceByName(port)
		if err != nil {
			return nil, fmt.Errorf("%w: port %s: %v", web.ErrInvalid, port, err)
		}
		r := roles.Roles{WAN: port}
		for _, p := range as.ports {
			if p != port {
				r.LANPorts = append(r.LANPorts, p)
			}
		}
		now := time.Now()
		d.mu.Lock()
		d.st.Roles.Proven = state.ProvenWAN{MAC: ifi.HardwareAddr.String(), At: now, By: state.ProvenByOwner}
		d.dirty = true
		d.mu.Unlock()
		if err := d.flushDurable(); err != nil {
			return nil, err
		}
		dec := roles.Decision{Roles: r, Reason: "requested from the dashboard: " + port + " is the WAN", At: now}
		return func() {
			log.Warn("roles changed by the owner: restarting the services with the new roles", "roles", r.String())
			cancel(&rolesChanged{decision: dec})
		}, nil
	}
}

// applyRoles gives the ports their roles and describes them.
func applyRoles(r roles.Roles, reason string, at time.Time, log *slog.Logger) (assignment, error) {
	wan, lan, err := roles.Apply(r)
	if err != nil {
		if wan == "" {
			return assignment{}, err
		}
		log.Warn("applying roles was incomplete", "err", err)
	}
	ports, err := roles.Ports()
	if err != nil {
		return assignment{}, err
	}
	inForce := roles.Roles{ExistingNetwork: r.ExistingNetwork}
	for _, p := range ports {
		if p == roles.WANName && r.WAN != "" {
			inForce.WAN = p
			continue
		}
		inForce.LANPorts = append(inForce.LANPorts, p)
	}
	status := state.RolesStatus{Detected: true, WANPort: r.WAN, LANPorts: inForce.LANPorts, Since: at, Reason: reason}
	if inForce.WAN != "" && !r.ExistingNetwork {
		if ifi, err := net.InterfaceByName(inForce.WAN); err == nil {
			status.WANMAC = ifi.HardwareAddr.String()
		}
	}
	return assignment{
		wan: wan, lan: lan, existing: r.ExistingNetwork,
		watch:   !r.ExistingNetwork,
		inForce: inForce, ports: ports,
		status: status,
	}, nil
}

func isBridge(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name + "/bridge")
	return err == nil
}
