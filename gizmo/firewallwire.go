package main

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/firewall"
	"codeberg.org/monostack/gizmo/web"
)

func wireFirewall(d *daemon) error {
	var (
		mu      sync.Mutex
		lastErr string
	)
	fw, err := firewall.New(firewall.Config{
		Logger: d.log,
		OnApplied: func(err error) {
			if err != nil {
				d.log.Error("firewall ruleset not applied; the previous one stays", "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	d.add("firewall", fw, func(st *state.State, now time.Time) {
		p, err := plan.Firewall(st, now)
		// A rule that cannot be resolved is left out of the plan; say so
		// once per distinct problem, not on every replan.
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		mu.Lock()
		if msg != lastErr && msg != "" {
			d.log.Warn("some inbound rules do not apply", "err", err)
		}
		lastErr = msg
		mu.Unlock()
		if err := fw.Update(p); err != nil {
			d.log.Error("firewall plan refused", "err", err)
		}
	})
	d.stats["firewall"] = func() any { return fw.Stats() }
	d.insightSources = append(d.insightSources, func(ins *web.Insights) {
		counters, err := fw.Counters()
		if err != nil {
			return
		}
		for name, c := range counters {
			ins.Firewall[name] = web.CounterValue{Packets: c.Packets, Bytes: c.Bytes}
		}
		// Each host's exposed ports, for the hosts page.
		st := d.Snapshot()
		for mac, h := range st.Hosts {
			if len(h.Policy.ExposedPorts) == 0 {
				continue
			}
			hi := ins.Hosts[mac]
			hi.ExposedPorts = slices.Clone(h.Policy.ExposedPorts)
			ins.Hosts[mac] = hi
		}
	})
	return nil
}

// validatePolicy refuses a policy that could never apply, so that the API
// answers 400 and the old policy stays in place.
func validatePolicy(st *state.State, p state.HostPolicy) error {
	if err := plan.ValidateExposedPorts(p.ExposedPorts); err != nil {
		return fmt.Errorf("%w: exposed ports: %v", web.ErrInvalid, err)
	}
	if p.IPv4.IsValid() && st.LAN.Legacy4.IsValid() {
		if !st.LAN.Legacy4.Masked().Contains(p.IPv4) || p.IPv4 == st.LAN.Legacy4.Addr() {
			return fmt.Errorf("%w: reservation %s is not a free address of the legacy network %s", web.ErrInvalid, p.IPv4, st.LAN.Legacy4.Masked())
		}
	}
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
	for i, r := range rules {
		if err := plan.ValidateInboundRule(&d.st, r); err != nil {
			errs = append(errs, fmt.Errorf("rule %d (%s): %v", i, r.Name, err))
		}
	}
	if len(errs) > 0 {
		d.mu.Unlock()
		return fmt.Errorf("%w: %v", web.ErrInvalid, errors.Join(errs...))
	}
	d.st.InboundRules = slices.Clone(rules)
	d.dur.InboundRules = slices.Clone(rules)
	d.durDirty = true
	d.mu.Unlock()
	if err := d.flushDurable(); err != nil {
		return err
	}
	d.replan()
	return nil
}
