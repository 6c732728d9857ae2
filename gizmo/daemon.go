package main

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/derive"
	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/rollup"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web/series"
)

// service is what every protocol service offers the daemon: it runs until
// the context is done.
type service interface {
	Run(ctx context.Context) error
}

// applier hands one service its part of the plans. It runs with the state
// locked, so it must only call a non-blocking Update.
type applier func(p *plan.Plans)

// daemon owns the state. Observations from services change it under mu;
// every change wakes the loop, which derives the computed fields, makes
// every plan and hands each service its own.
type daemon struct {
	cfg      config
	log      *slog.Logger
	proc     process
	settings derive.Settings
	options  plan.Options

	mu sync.Mutex
	st state.State
	// dirty: a persisted field of st changed since the last flush.
	dirty bool

	// changeRoles carries out the owner's request to move the WAN role
	// (ChangeRoles); nil when the roles are not detected.
	changeRoles func(wan string) (commit func(), err error)

	kick     chan struct{}
	services []namedService
	appliers []applier
	stopping []func() // run after the services have stopped, in order

	// wired are the services the dashboard reads counters from.
	wired   wired
	rollup  *rollup.Rollup
	history *series.Store
}

type namedService struct {
	name string
	svc  service
}

func newDaemon(cfg config, log *slog.Logger) *daemon {
	d := &daemon{
		cfg: cfg, log: log,
		settings: derive.Settings{
			Pref64: cfg.Pref64, DNSUpstream: cfg.DNSUpstream,
			LANIPv4: cfg.LANIPv4, LANIPv4Set: cfg.LANIPv4Set, ExistingNetwork: cfg.ExistingNetwork,
		},
		options: plan.Options{
			RAInterval: cfg.RAInterval, V6OnlyWait: cfg.V6OnlyWait,
			ExistingNetwork: cfg.ExistingNetwork, ListenWeb: cfg.ListenWeb,
		},
		kick:    make(chan struct{}, 1),
		rollup:  rollup.New(),
		history: series.New(series.DefaultResolutions),
	}
	d.st.Hosts = map[string]*state.Host{}
	d.st.Remembered = map[string]state.HostRecord{}
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

// apply derives the computed fields, makes every plan from the state and
// hands each service its own. Deadlines pass on the 5 s tick even when
// nothing is observed.
func (d *daemon) apply(now time.Time) {
	own := ownMACs()
	d.mu.Lock()
	defer d.mu.Unlock()
	if own != nil {
		d.st.LAN.OwnMACs = own
	}
	if derive.DropOwnHosts(&d.st) {
		d.dirty = true
	}
	prevLine, proven := d.st.Line, d.st.Roles.Proven
	derive.Derive(&d.st, d.settings, now)
	if derive.BoundRecords(&d.st) > 0 {
		d.dirty = true
	}
	if d.st.Line != prevLine {
		d.log.Info("line detected", "line", d.st.Line, "previous", prevLine)
	}
	if p := d.st.Roles.Proven; p.MAC != proven.MAC || p.By != proven.By {
		d.log.Info("the WAN proved itself: upstream signals on the LAN ports no longer move its role", "mac", p.MAC, "by", p.By)
		d.dirty = true
	}
	// An interface can be re-created (the LAN bridge): its index is read
	// again for every plan.
	d.st.LAN.Ifindex, d.st.WAN.Ifindex = ifindex(d.st.LAN.Interface), ifindex(d.st.WAN.Interface)
	p := plan.All(&d.st, d.options, now)
	if dep := string(p.Deployment); dep != d.st.Deployment {
		// The log says why the LAN looks the way it does.
		d.log.Info("deployment detected", "deployment", dep, "previous", d.st.Deployment)
		d.st.Deployment = dep
	}
	for mac, h := range d.st.Hosts {
		if name := p.NameTaken[mac]; name != h.NameTaken {
			if name != "" {
				d.log.Warn("a host announced a name another host holds; it gets none", "mac", mac, "name", name)
			}
			h.NameTaken = name
		}
	}
	d.st.CLAT = state.CLATStatus{}
	if p.CLAT.Enabled() {
		d.st.CLAT = state.CLATStatus{Address: p.CLAT.Address, Pref64: p.CLAT.Pref64}
	}
	for _, a := range d.appliers {
		a(&p)
	}
}

// ownMACs are the hardware addresses of every interface the gizmo has
// (nil when they cannot be read): its ports, the LAN bridge, the uplink.
// The gizmo owns every interface of its network namespace.
func ownMACs() []string {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	out := []string{}
	for _, ifi := range ifs {
		if len(ifi.HardwareAddr) == 6 && !slices.Contains(out, ifi.HardwareAddr.String()) {
			out = append(out, ifi.HardwareAddr.String())
		}
	}
	slices.Sort(out)
	return out
}

func ifindex(name string) int {
	if name == "" {
		return 0
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0
	}
	return ifi.Index
}

// flushDurable writes the persisted part of the state if it changed.
func (d *daemon) flushDurable() error {
	d.mu.Lock()
	if !d.dirty {
		d.mu.Unlock()
		return nil
	}
	snapshot := durableOf(&d.st)
	d.dirty = false
	d.mu.Unlock()
	if err := saveDurable(d.cfg.StateDir, snapshot); err != nil {
		d.mu.Lock()
		d.dirty = true
		d.mu.Unlock()
		return err
	}
	return nil
}

// sawHost records a sighting of a host's address.
func (d *daemon) sawHost(s derive.Sighting) {
	d.mu.Lock()
	attached := derive.SawHost(&d.st, s, time.Now())
	d.mu.Unlock()
	if attached {
		// A new address changes per-host plans (DNS64 policy, firewall sets).
		d.replan()
	}
}

// namedHostLocked records the hostname a host announced (DHCPv4 option
// 12/81), and since when: a named host is kept across a reboot. d.mu must
// be held.
func (d *daemon) namedHostLocked(h *state.Host, hostname string, at time.Time) (changed bool) {
	if hostname == "" || h.Hostname == hostname {
		return false
	}
	h.Hostname, h.HostnameSince = hostname, at
	d.dirty = true
	return true
}
