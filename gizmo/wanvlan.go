package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/services/roles"
	"codeberg.org/monostack/gizmo/services/vlan"
	"codeberg.org/monostack/gizmo/web"
)

// wanVLANChoice is the VLAN the uplink must be on before anything is
// detected (plan.WANVLAN): id 0 means none is set.
type wanVLANChoice struct {
	id   uint16
	from string
}

func wanVLANChoiceOf(flag, setting uint16) wanVLANChoice {
	id, from := plan.WANVLAN(flag, setting)
	return wanVLANChoice{id, from}
}

// probe is how role detection probes a port under this choice.
func (c wanVLANChoice) probe() roles.ProbeFunc { return roles.VLANProbe(c.id) }

// vlanOfWAN is the VLAN of a WAN port whose role was decided without
// probing it for VLANs (a run-time roles change, the owner's new VLAN
// setting): the set VLAN, else what probing the port finds, untagged
// first.
func vlanOfWAN(ctx context.Context, c wanVLANChoice, port string, log *slog.Logger) uint16 {
	if c.id != 0 || port == "" {
		return c.id
	}
	return roles.VLANProbe(0)(ctx, port, 5*time.Second, log).VLAN
}

// applyVLANRoles is applyRoles for roles whose WAN may be on a VLAN
// (r.VLAN); the assignment records it and where it came from. Roles
// without a WAN have no VLAN: the placeholder uplink0 leads nowhere.
func applyVLANRoles(r roles.Roles, c wanVLANChoice, reason string, at time.Time, log *slog.Logger) (assignment, error) {
	if r.WAN == "" {
		r.VLAN = 0
	}
	as, err := applyRoles(r, reason, at, log)
	as.choice, as.vlan = c, r.VLAN
	switch {
	case r.VLAN == 0:
	case c.id != 0:
		as.vlanFrom = c.from
	default:
		as.vlanFrom = plan.WANVLANDetected
	}
	return as, err
}

// withVLAN puts the VLAN choice on roles that were given (-wan/-lan, or
// the ports' names), not detected.
func withVLAN(as assignment, c wanVLANChoice) assignment {
	as.choice, as.vlan, as.vlanFrom = c, c.id, c.from
	return as
}

// tagUplink puts the uplink on the assignment's VLAN (services/vlan) and
// returns the tagger to close when the run ends; nil when the uplink is
// untagged. When it cannot (a kernel without tcx), the uplink stays
// untagged and the assignment says why, for the dashboard: a gizmo that
// stopped here would take the dashboard, where the setting is changed,
// down with it.
func tagUplink(as *assignment, log *slog.Logger) *vlan.Tagger {
	if as.vlan == 0 {
		return nil
	}
	t, err := vlan.Attach(as.wan, as.vlan)
	if err != nil {
		as.vlanError = err.Error()
		log.Error("cannot put the uplink on its VLAN; it stays untagged", "interface", as.wan, "vlan", as.vlan, "from", as.vlanFrom, "err", err)
		return nil
	}
	log.Info("uplink on an 802.1Q VLAN", "interface", as.wan, "vlan", as.vlan, "from", as.vlanFrom)
	return t
}

// SetWANVLAN implements web.Backend: the owner's WAN VLAN setting (0: none
// set) is persisted before it returns. When the VLAN the uplink must be on
// differs from this run's, commit applies the roles again with it (the
// services restart, the dashboard too, as after a roles change), so the
// caller answers first; otherwise commit is nil. The -wan-vlan flag
// overrides the setting: then nothing changes until the flag is gone.
func (d *daemon) SetWANVLAN(id uint16) (commit func(), err error) {
	if err := plan.ValidateWANVLAN(int(id)); err != nil {
		return nil, fmt.Errorf("%w: %v", web.ErrInvalid, err)
	}
	d.mu.Lock()
	if d.st.WANVLAN != id {
		d.st.WANVLAN = id
		d.dirty = true
	}
	running, reapply := d.wanVLAN, d.reapplyRoles
	d.mu.Unlock()
	if err := d.flushDurable(); err != nil {
		return nil, err
	}
	next := wanVLANChoiceOf(d.cfg.WANVLAN, id)
	if next == running || reapply == nil {
		return nil, nil
	}
	what := "none set: untagged, or the VLAN detection finds"
	if next.id != 0 {
		what = fmt.Sprintf("VLAN %d (%s)", next.id, next.from)
	}
	return func() {
		d.log.Warn("the WAN VLAN changed: applying the roles again", "vlan", next.id, "from", next.from)
		reapply("the WAN VLAN setting changed to " + what)
	}, nil
}
