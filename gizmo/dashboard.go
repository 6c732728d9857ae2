package main

import (
	"context"
	"path/filepath"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/rollup"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/internal/persist"
	"codeberg.org/monostack/gizmo/web"
	"codeberg.org/monostack/gizmo/web/series"
)

// historyFile holds the dashboard's traffic history across reboots.
const historyFile = "history.json"

// stats reads every running service's counters. Without all, only what
// the traffic history needs (DNS64, NAT64, fast path, accounting).
func (r wired) stats(all bool) rollup.Stats {
	var s rollup.Stats
	s.DNS64 = statsOf(r.dns64)
	if r.nat64 != nil {
		s.NAT64, s.NAT64Capacity = ptr(r.nat64.Stats()), r.nat64Capacity
	}
	s.Fastpath = statsOf(r.fastpath)
	if r.accounting != nil {
		if v6, v4, err := r.accounting.Read(); err == nil { // an error: not installed yet
			s.NativeIPv6, s.NAT44 = v6, v4
		}
		if all {
			s.Accounting = ptr(r.accounting.Stats())
		}
	}
	if !all {
		return s
	}
	// The rest in the order of rollup.Stats' fields.
	s.WAN = statsOf(r.wan)
	s.DHCP6PD = statsOf(r.dhcp6pd)
	s.RA = statsOf(r.ra)
	s.NDProxy = statsOf(r.ndproxy)
	s.DHCP6Info = statsOf(r.dhcp6info)
	s.LANIf = statsOf(r.lanif)
	s.DHCP4 = statsOf(r.dhcp4)
	s.DSLite = statsOf(r.dslite)
	s.CLAT = statsOf(r.clat)
	if r.discovery != nil {
		ds, _ := r.discovery.Stats()
		s.Discovery = &ds
	}
	if r.firewall != nil {
		s.Firewall = ptr(r.firewall.Stats())
		if c, err := r.firewall.Counters(); err == nil {
			s.FirewallCounters = c
		}
	}
	s.Timesync = statsOf(r.timesync)
	if r.vlan != nil {
		if v, err := r.vlan.Stats(); err == nil {
			s.VLAN = &v
		}
	}
	s.Neighbors = statsOf(r.neighbors)
	s.NSResponder = statsOf(r.nsresponder)
	if r.upnp != nil {
		s.UPnP = &rollup.UPnP{Stats: r.upnp.Stats()}
	}
	return s
}

// hostTableOf is the host table's account for the roll-up.
func hostTableOf(st *state.State) *rollup.HostTable {
	ht := &rollup.HostTable{Hosts: len(st.Hosts), Capacity: st.HostTable.Capacity, Records: len(durableOf(st).Hosts), HostTableStats: st.HostTable}
	for _, h := range st.Hosts {
		if h.NameTaken != "" {
			ht.NameTaken++
		}
	}
	return ht
}

func ptr[T any](v T) *T { return &v }

// statsOf is a service's Stats, nil while it does not run (svc is nil).
func statsOf[S any, P interface {
	comparable
	Stats() S
}](svc P) *S {
	var none P
	if svc == none {
		return nil
	}
	return ptr(svc.Stats())
}

// Insights implements web.Backend.
func (d *daemon) Insights() web.Insights {
	st := d.Snapshot()
	s := d.wired.stats(true)
	s.HostTable = hostTableOf(&st)
	if s.UPnP != nil {
		for _, ps := range plan.LivePinholes(&st, time.Now()) {
			s.UPnP.Pinholes += len(ps)
		}
	}
	return d.rollup.Insights(s, st.Hosts)
}

// History implements web.Backend.
func (d *daemon) History() *series.Store { return d.history }

// sample is one point of the traffic history.
func (d *daemon) sample(now time.Time) series.Sample {
	st := d.Snapshot()
	s := d.wired.stats(false)
	hosts := d.rollup.Traffic(s, rollup.OwnersOf(st.Hosts))
	var total series.Categories
	for _, c := range hosts {
		total = total.Add(c)
	}
	return series.Sample{At: now, Total: total, Hosts: hosts, DNS: rollup.DNSCounts(s)}
}

// sampler feeds the history every 10 s and saves it every 5 minutes and
// at shutdown, so that a reboot keeps the dashboard's history. Every 30 s
// it also looks for limits that were hit, for the dashboard and the log.
type sampler struct {
	d *daemon
}

func (s sampler) Run(ctx context.Context) error {
	d := s.d
	path := filepath.Join(d.cfg.StateDir, historyFile)
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	save := time.NewTicker(5 * time.Minute)
	defer save.Stop()
	limits := time.NewTicker(30 * time.Second)
	defer limits.Stop()
	d.history.Add(d.sample(time.Now()))
	for {
		select {
		case <-ctx.Done():
			if err := persist.WriteJSON(path, d.history.Save()); err != nil {
				d.log.Warn("saving traffic history failed", "err", err)
			}
			return nil
		case now := <-tick.C:
			d.history.Add(d.sample(now))
		case now := <-limits.C:
			st := d.Snapshot()
			stats := d.wired.stats(true)
			stats.HostTable = hostTableOf(&st)
			for _, hit := range d.rollup.WatchLimits(stats, now) {
				d.log.Warn("a limit was hit", "limit", hit.Key, "times", hit.Count, "what", hit.What)
			}
		case <-save.C:
			if err := persist.WriteJSON(path, d.history.Save()); err != nil {
				d.log.Warn("saving traffic history failed", "err", err)
			}
		}
	}
}

// loadHistory restores the saved history; a corrupt file is moved aside.
func (d *daemon) loadHistory() {
	var saved series.Saved
	if _, err := persist.ReadJSON(filepath.Join(d.cfg.StateDir, historyFile), &saved); err != nil {
		d.log.Error("traffic history was corrupt; starting a new one", "err", err)
		return
	}
	d.history.Restore(saved)
}
