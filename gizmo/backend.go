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
	s.Remembered = maps.Clone(s.Remembered)
	if s.Delegated != nil {
		dp := *s.Delegated
		s.Delegated = &dp
	}
	s.Hosts = make(map[string]*state.Host, len(d.st.Hosts))
	for mac, h := range d.st.Hosts {
		hc := *h
		hc.Addrs = maps.Clone(h.Addrs)
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
	d.mu.Lock()
	// A policy that could never apply is refused, so that the API answers
	// 400 and the old policy stays in place.
	if err := plan.ValidatePolicy(&d.st, p); err != nil {
		d.mu.Unlock()
		return fmt.Errorf("%w: %v", web.ErrInvalid, err)
	}
	if p.Configured() && !derive.CanConfigure(&d.st, hw.String()) {
		d.mu.Unlock()
		return fmt.Errorf("%w: the gizmo keeps at most %d configured hosts; reset one to the defaults first", web.ErrInvalid, derive.MaxRecords)
	}
	h, _ := derive.AddHost(&d.st, hw.String(), derive.StandingConfigured, time.Now())
	if h == nil {
		d.mu.Unlock()
		return fmt.Errorf("%w: the host table is full of configured hosts (%d)", web.ErrInvalid, derive.MaxHosts)
	}
	h.Policy = p
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
	d.mu.Lock()
	var errs []error
	now := time.Now()
	for i, r := range rules {
		if err := plan.ValidateInboundRule(&d.st, r, now); err != nil {
			errs = append(errs, fmt.Errorf("rule %d (%s): %v", i, r.Name, err))
		}
	}
	if len(errs) > 0 {
		d.mu.Unlock()
		return fmt.Errorf("%w: %v", web.ErrInvalid, errors.Join(errs...))
	}
	d.st.InboundRules = slices.Clone(rules)
	d.dirty = true
	d.mu.Unlock()
	if err := d.flushDurable(); err != nil {
		return err
	}
	d.replan()
	return nil
}
