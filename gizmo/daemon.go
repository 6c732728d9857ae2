package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web/series"
)

// service is what every protocol service offers the daemon: it runs until
// the context is done.
type service interface {
	Run(ctx context.Context) error
}

// applier hands one service its plan, computed from a consistent copy of the
// state. It runs with the state locked, so it must only compute and call a
// non-blocking Update.
type applier func(st *state.State, now time.Time)

// daemon owns the state. Observations from services change it under mu;
// every change wakes the loop, which recomputes every plan and hands it out.
type daemon struct {
	cfg config
	log *slog.Logger

	mu       sync.Mutex
	st       state.State
	dur      durable
	durDirty bool

	kick     chan struct{}
	services []namedService
	appliers []applier
	stopping []func() // run after the services have stopped, in order
	// stats returns each service's counters, for the dashboard and /metrics.
	stats map[string]func() any

	history        *series.Store
	insightSources []insightSource
	trafficSources []trafficSource
	dnsCounts      func() series.DNS
	// ownStackSeen tells the NAT64 accounting which addresses belong to a
	// host's own stack (they resolve names or carry native IPv6) rather
	// than to a CLAT; nil without a NAT64.
	ownStackSeen func(netip.Addr)
}

type namedService struct {
	name string
	svc  service
}

func newDaemon(cfg config, log *slog.Logger) *daemon {
	d := &daemon{cfg: cfg, log: log, kick: make(chan struct{}, 1), stats: map[string]func() any{}, history: series.New(series.DefaultResolutions)}
	d.st.Hosts = map[string]*state.Host{}
	return d
}

// add registers a service and the function that hands it its plan.
func (d *daemon) add(name string, svc service, apply applier) {
	d.services = append(d.services, namedService{name, svc})
	if apply != nil {
		d.appliers = append(d.appliers, apply)
	}
}

// observe changes the state and schedules a replan. Services call it from
// their own goroutines; f must be quick.
func (d *daemon) observe(f func(st *state.State)) {
	d.mu.Lock()
	f(&d.st)
	d.mu.Unlock()
	d.replan()
}

func (d *daemon) replan() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// run starts every service and replans until ctx is done, then waits for the
// services to finish (the RA service sends its final RA then).
func (d *daemon) run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range d.services {
		wg.Go(func() { d.supervise(ctx, s) })
	}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	d.apply(time.Now())
	for {
		select {
		case <-ctx.Done():
			d.log.Info("stopping", "reason", context.Cause(ctx))
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				d.log.Warn("services did not stop within 10s")
			}
			for _, f := range d.stopping {
				f()
			}
			return d.flushDurable()
		case <-d.kick:
		case <-tick.C:
		}
		d.apply(time.Now())
		if err := d.flushDurable(); err != nil {
			d.log.Error("saving state failed", "err", err)
		}
	}
}

// supervise runs one service and restarts it after a pause if it fails: one
// broken service must not take the router down.
func (d *daemon) supervise(ctx context.Context, s namedService) {
	for {
		err := s.svc.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		d.log.Error("service stopped; restarting in 5s", "service", s.name, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// apply derives the computed fields and hands every service its plan.
func (d *daemon) apply(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	derive(&d.st, d.cfg, now)
	for _, a := range d.appliers {
		a(&d.st, now)
	}
}

// flushDurable writes the durable state if it changed.
func (d *daemon) flushDurable() error {
	d.mu.Lock()
	if !d.durDirty {
		d.mu.Unlock()
		return nil
	}
	snapshot := durable{ULA: d.dur.ULA, Hosts: maps.Clone(d.dur.Hosts), InboundRules: slices.Clone(d.dur.InboundRules)}
	d.durDirty = false
	d.mu.Unlock()
	if err := saveDurable(d.cfg.StateDir, snapshot); err != nil {
		d.mu.Lock()
		d.durDirty = true
		d.mu.Unlock()
		return err
	}
	return nil
}

// Snapshot returns a deep copy of the state for readers outside the loop
// (the dashboard).
func (d *daemon) Snapshot() state.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.st
	s.WAN.Addrs = append([]netip.Prefix(nil), s.WAN.Addrs...)
	s.Retired = append([]state.DelegatedPrefix(nil), s.Retired...)
	s.InboundRules = slices.Clone(s.InboundRules)
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
	mac := hw.String()
	d.mu.Lock()
	if err := validatePolicy(&d.st, p); err != nil {
		d.mu.Unlock()
		return err
	}
	h := d.hostLocked(mac, time.Now())
	h.Policy = p
	dh := d.dur.Hosts[mac]
	dh.Policy = p
	dh.FirstSeen = h.FirstSeen
	d.dur.Hosts[mac] = dh
	d.durDirty = true
	d.mu.Unlock()
	if err := d.flushDurable(); err != nil {
		return err
	}
	d.replan()
	return nil
}

// hostLocked returns the host with this MAC, creating it with the default
// policy. d.mu must be held.
func (d *daemon) hostLocked(mac string, now time.Time) *state.Host {
	h, ok := d.st.Hosts[mac]
	if ok {
		return h
	}
	h = &state.Host{MAC: mac, Addrs: map[netip.Addr]time.Time{}, Policy: state.DefaultHostPolicy(), FirstSeen: now, LastSeen: now}
	if dh, ok := d.dur.Hosts[mac]; ok {
		h.Policy, h.Hostname, h.FirstSeen = dh.Policy, dh.Hostname, dh.FirstSeen
	} else {
		d.dur.Hosts[mac] = durableHost{Policy: h.Policy, FirstSeen: now}
		d.durDirty = true
	}
	d.st.Hosts[mac] = h
	return h
}

// sawHost records that mac used addr at time at.
func (d *daemon) sawHost(mac net.HardwareAddr, addr netip.Addr, at time.Time) {
	d.mu.Lock()
	if mac.String() == d.st.LAN.HardwareAddr.String() {
		d.mu.Unlock()
		return // the gizmo's own LAN interface is no host
	}
	h := d.hostLocked(mac.String(), at)
	_, known := h.Addrs[addr]
	h.Addrs[addr] = at
	h.LastSeen = at
	d.mu.Unlock()
	if !known {
		// A new address changes per-host plans (DNS64 policy, firewall sets).
		d.replan()
	}
}

// namedHost records the hostname a host announced (DHCPv4 option 12/81).
func (d *daemon) namedHost(mac net.HardwareAddr, hostname string, at time.Time) {
	d.mu.Lock()
	h := d.hostLocked(mac.String(), at)
	changed := h.Hostname != hostname && hostname != ""
	if changed {
		h.Hostname = hostname
		dh := d.dur.Hosts[h.MAC]
		dh.Hostname = hostname
		d.dur.Hosts[h.MAC] = dh
		d.durDirty = true
	}
	d.mu.Unlock()
	if changed {
		d.replan()
	}
}
