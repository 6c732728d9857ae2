package main

import (
	"context"
	"path/filepath"
	"reflect"
	"time"

	"codeberg.org/monostack/gizmo/internal/persist"
	"codeberg.org/monostack/gizmo/web"
	"codeberg.org/monostack/gizmo/web/series"
)

// historyFile holds the dashboard's traffic history across reboots.
const historyFile = "history.json"

// insightSource adds one service's view to the dashboard's insights.
type insightSource func(ins *web.Insights)

// trafficSource reads cumulative per-host traffic counters by category.
type trafficSource func(hosts map[string]series.Categories)

// Insights implements web.Backend: every registered source contributes,
// and every service's Stats become numeric counters for /metrics.
func (d *daemon) Insights() web.Insights {
	ins := web.Insights{
		Firewall: map[string]web.CounterValue{},
		DHCPv4:   map[string]uint64{},
		Hosts:    map[string]web.HostInsights{},
		Services: map[string]map[string]float64{},
	}
	for _, src := range d.insightSources {
		src(&ins)
	}
	traffic := d.traffic()
	for mac, c := range traffic {
		h := ins.Hosts[mac]
		h.Traffic = c
		h.CLAT = c.NAT64CLAT > 0
		ins.Hosts[mac] = h
	}
	for name, stats := range d.stats {
		ins.Services[name] = numericFields(stats())
	}
	return ins
}

// History implements web.Backend.
func (d *daemon) History() *series.Store { return d.history }

// traffic sums every traffic source's per-host counters.
func (d *daemon) traffic() map[string]series.Categories {
	hosts := map[string]series.Categories{}
	for _, src := range d.trafficSources {
		src(hosts)
	}
	return hosts
}

// numericFields flattens a Stats struct's integer and float fields (not
// maps or slices) into name → value, for /metrics.
func numericFields(v any) map[string]float64 {
	out := map[string]float64{}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return out
	}
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		switch fv := rv.Field(i); fv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			out[f.Name] = float64(fv.Int())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			out[f.Name] = float64(fv.Uint())
		case reflect.Float32, reflect.Float64:
			out[f.Name] = fv.Float()
		}
	}
	return out
}

// sampler feeds the history every 10 s and saves it every 5 minutes and
// at shutdown, so that a reboot keeps the dashboard's history.
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
		case <-save.C:
			if err := persist.WriteJSON(path, d.history.Save()); err != nil {
				d.log.Warn("saving traffic history failed", "err", err)
			}
		}
	}
}

func (d *daemon) sample(now time.Time) series.Sample {
	hosts := d.traffic()
	var total series.Categories
	for _, c := range hosts {
		total = total.Add(c)
	}
	smp := series.Sample{At: now, Total: total, Hosts: hosts}
	if d.dnsCounts != nil {
		smp.DNS = d.dnsCounts()
	}
	return smp
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
