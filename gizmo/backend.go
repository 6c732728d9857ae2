package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/derive"
	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web"
)

// The daemon is the dashboard's web.Backend: it hands out copies of the
// state and takes the owner's edits, persisted before they are
// acknowledged. Insights and History are in dashboard.go.
var _ web.Backend = (*daemon)(nil)

// Snapshot returns a deep copy of the state for readers outside the loop
// (the dashboard).
func (d *daemon) Snapshot() state.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.st
	s.WAN.Addrs = slices.Clone(s.WAN.Addrs)
	s.Retired = slices.Clone(s.Retired)
	s.InboundRules = slices.Clone(s.InboundRules)
	s.LAN.OwnMACs = slices.Clone(s.LAN.OwnMACs)
	s.Remembered = maps.Clone(s.Remembered)
	if s.Delegated != nil {
		dp := *s.Delegated
		s.Delegated = &dp
	}
	if s.Roles.Rogue != nil {
		r := *s.Roles.Rogue
		s.Roles.Rogue = &r
	}
	s.Hosts = make(map[string]*state.Host, len(d.st.Hosts))
	for mac, h := range d.st.Hosts {
		hc := *h
		hc.Addrs = maps.Clone(h.Addrs)
		hc.Pinholes = slices.Clone(h.Pinholes)
		s.Hosts[mac] = &hc
	}
	return s
}

// ErrBadMAC is returned for policy edits that do not name a MAC address.
var ErrBadMAC = errors.New("not a MAC address")

// SetPolicy changes a host's policy and persists it before returning, so
// that an acknowledged change survives a crash.
func (d *daemon) SetPolicy(macText string, p state.HostPolicy) error {
	hw, err := net.ParseMAC(macText)
	if err != nil || len(hw) != 6 {
		return fmt.Errorf("%w: %q", ErrBadMAC, macText)
	}
	mac := hw.String()
	return d.edit(func() error {
		if derive.IsOwnMAC(&d.st, mac) {
			return fmt.Errorf("%w: %s is one of the gizmo's own ports, not a host", web.ErrInvalid, mac)
		}
		// A policy that could never apply is refused, so that the API answers
		// 400 and the old policy stays in place.
		if err := plan.ValidatePolicy(&d.st, mac, p); err != nil {
			return fmt.Errorf("%w: %v", web.ErrInvalid, err)
		}
		if p.Configured() && !derive.CanConfigure(&d.st, mac) {
			return fmt.Errorf("%w: the gizmo keeps at most %d configured hosts; reset one to the defaults first", web.ErrInvalid, derive.MaxRecords)
		}
		h, _ := derive.AddHost(&d.st, mac, derive.StandingConfigured, time.Now())
		if h == nil {
			return fmt.Errorf("%w: the host table is full of configured hosts (%d)", web.ErrInvalid, derive.MaxHosts)
		}
		h.Policy = p
		return nil
	})
}

// edit makes an owner's change: f checks it, returning an error before it
// changes anything, and then makes it on d.st with d.mu held. The change
// is persisted before the services are planned again, so that an
// acknowledged change survives a crash.
func (d *daemon) edit(f func() error) error {
	d.mu.Lock()
	if err := f(); err != nil {
		d.mu.Unlock()
		return err
	}
	d.dirty = true
	d.mu.Unlock()
	if err := d.flushDurable(); err != nil {
		return err
	}
	d.replan()
	return nil
}

// InboundRules implements web.Backend.
func (d *daemon) InboundRules() []state.InboundRule {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.st.InboundRules)
}

// SetInboundRules validates and persists the owner's inbound rules. One
// bad rule refuses the whole edit, and the running ruleset stays.
func (d *daemon) SetInboundRules(rules []state.InboundRule) error {
	return d.edit(func() error {
		var errs []error
		now := time.Now()
		for i, r := range rules {
			if err := plan.ValidateInboundRule(&d.st, r, now); err != nil {
				errs = append(errs, fmt.Errorf("rule %d (%q): %v", i+1, r.Name, err))
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: %v", web.ErrInvalid, errors.Join(errs...))
		}
		d.st.InboundRules = slices.Clone(rules)
		return nil
	})
}

// ChangeRoles implements web.Backend: the owner moves the WAN role to the
// LAN port wan. It fails when the roles are not detected (-wan/-lan, or a
// single port).
func (d *daemon) ChangeRoles(wan string) (func(), error) {
	d.mu.Lock()
	f := d.changeRoles
	d.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("%w: the port roles are fixed here (-wan/-lan, or a single port)", web.ErrInvalid)
	}
	return f(wan)
}

// Settings implements web.Backend: everything the owner set, for a backup.
func (d *daemon) Settings() state.Settings {
	d.mu.Lock()
	defer d.mu.Unlock()
	return plan.SettingsOf(&d.st)
}

// RestoreSettings replaces everything the owner set with s, validated as a
// whole first (plan.ValidateSettings), and persists it before returning.
// Hosts the file does not name get the default policy; hosts it names
// that the gizmo has not seen wait among the remembered ones.
func (d *daemon) RestoreSettings(s state.Settings) error {
	return d.edit(func() error {
		var errs []error
		for _, mac := range slices.Sorted(maps.Keys(s.Hosts)) {
			if derive.IsOwnMAC(&d.st, mac) {
				errs = append(errs, fmt.Errorf("host %s: one of the gizmo's own ports, not a host", mac))
			}
		}
		if err := plan.ValidateSettings(&d.st, s, time.Now()); err != nil {
			errs = append(errs, err)
		}
		configured := 0
		for _, p := range s.Hosts {
			if p.Configured() {
				configured++
			}
		}
		if configured > derive.MaxRecords {
			errs = append(errs, fmt.Errorf("%d configured hosts: the gizmo keeps at most %d", configured, derive.MaxRecords))
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: %w", web.ErrInvalid, errors.Join(errs...))
		}
		policy := func(mac string) state.HostPolicy {
			p, ok := s.Hosts[mac]
			if !ok {
				return state.DefaultHostPolicy()
			}
			p.ExposedPorts = slices.Clone(p.ExposedPorts)
			return p
		}
		for mac, h := range d.st.Hosts {
			h.Policy = policy(mac)
		}
		for mac, r := range d.st.Remembered {
			r.Policy = policy(mac)
			d.st.Remembered[mac] = r
		}
		for mac := range s.Hosts {
			_, seen := d.st.Hosts[mac]
			if _, remembered := d.st.Remembered[mac]; !seen && !remembered {
				d.st.Remembered[mac] = state.HostRecord{Policy: policy(mac)}
			}
		}
		d.st.InboundRules = slices.Clone(s.InboundRules)
		// The uplink moves to a restored VLAN when the web side commits it
		// (SetWANVLAN), after its answer.
		d.st.WANVLAN = s.WANVLAN
		return nil
	})
}

// Findings implements web.Backend: the plan functions' findings at this
// moment.
func (d *daemon) Findings() web.Findings {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	in := plan.InternetOf(&d.st, d.options.ExistingNetwork, now)
	f := web.Findings{Internet: web.Internet{OK: in.OK, Key: in.Key, Line: in.Line, Hint: in.Hint}}
	for i, m := range plan.InboundMatches(&d.st, now) {
		rf := web.RuleFinding{Rule: d.st.InboundRules[i], Opens: m.Opens, Waiting: m.Waiting, Problem: m.Problem}
		rf.Rule.Ports = slices.Clone(rf.Rule.Ports)
		for _, h := range m.Hosts {
			rf.Hosts = append(rf.Hosts, web.RuleHost{MAC: h.MAC, Name: h.Name, Addr: h.Addr})
		}
		f.Rules = append(f.Rules, rf)
	}
	// On an existing network its router serves DHCPv4 and guards the
	// border: no pool and no fast path here.
	if !d.options.ExistingNetwork {
		if p := plan.DHCP4(&d.st, d.options.V6OnlyWait, nil); p.PoolStart.IsValid() {
			f.PoolStart, f.PoolEnd = p.PoolStart, p.PoolEnd
		}
		_, off := plan.Fastpath(&d.st, now)
		f.Fastpath = &web.Fastpath{On: off == "", Off: off}
	}
	return f
}
