package main

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/accounting"
	"codeberg.org/monostack/gizmo/services/dhcp4"
	"codeberg.org/monostack/gizmo/services/dhcp6info"
	"codeberg.org/monostack/gizmo/services/dhcp6pd"
	"codeberg.org/monostack/gizmo/services/dns64"
	"codeberg.org/monostack/gizmo/services/ndproxy"
	"codeberg.org/monostack/gizmo/services/ra"
	wansvc "codeberg.org/monostack/gizmo/services/wan"
	"codeberg.org/monostack/gizmo/web"
	"codeberg.org/monostack/gizmo/web/series"
)

// wireServices creates the protocol services and connects their
// observations to the state and their plans to the plan functions.
func wireServices(ctx context.Context, d *daemon, cfg config, wan, lan string) error {
	log := d.log

	// WAN: the uplink observer (SLAAC, upstream RA, DHCPv4 lease) and the
	// DHCPv6-PD client.
	pd, err := dhcp6pd.New(dhcp6pd.Config{
		Interface: wan,
		StateDir:  filepath.Join(cfg.StateDir, "dhcp6pd"),
		Logger:    log,
		OnLease: func(l dhcp6pd.Lease) {
			d.observe(func(st *state.State) {
				newDelegation(st, state.DelegatedPrefix{Prefix: l.Prefix, PreferredUntil: l.PreferredUntil, ValidUntil: l.ValidUntil}, time.Now())
				st.WAN.DHCPv6DNS = l.DNS
			})
		},
		OnLost: func(p netip.Prefix) {
			d.observe(func(st *state.State) {
				if st.Delegated != nil && st.Delegated.Prefix == p {
					lostDelegation(st, time.Now())
				}
			})
		},
	})
	if err != nil {
		return err
	}
	// On an existing network the gizmo is a guest: the network's own
	// router delegates and routes, so the gizmo asks for no prefix.
	if !cfg.ExistingNetwork {
		d.add("dhcp6pd", pd, nil)
	}
	d.stats["dhcp6pd"] = func() any { return pd.Stats() }

	var wasUp bool
	up, err := wansvc.New(wansvc.Config{
		Interface: wan,
		StateDir:  filepath.Join(cfg.StateDir, "wan"),
		Logger:    log,
		OnUpstream: func(u wansvc.Upstream) {
			d.observe(func(st *state.State) {
				u.Fill(&st.WAN)
				st.WAN.Prefixes = upstreamPrefixes(u.Prefixes)
			})
			// A link that comes back may be a different network: the PD
			// client confirms its binding (RFC 8415 §18.2.12).
			if u.Up && !wasUp {
				pd.LinkChanged()
			}
			wasUp = u.Up
		},
		OnIPv4: func(l *state.IPv4Lease) {
			d.observe(func(st *state.State) { st.WAN.IPv4 = l })
		},
	})
	if err != nil {
		return err
	}
	d.add("wan", up, func(st *state.State, now time.Time) { up.Update(plan.WAN(st, now)) })
	d.stats["wan"] = func() any { return up.Stats() }

	// LAN: Router Advertisements and stateless DHCPv6.
	raSvc, err := ra.New(ra.Config{Interface: lan, Logger: log, OnSolicitation: func(sol ra.Solicitation) {
		// A host that solicits with its link-layer address is on the LAN
		// even before it sends traffic through the gizmo.
		if len(sol.LinkLayer) == 6 && sol.Source.IsValid() && !sol.Source.IsUnspecified() {
			d.sawHost(sol.LinkLayer, sol.Source, time.Now())
		}
	}})
	if err != nil {
		return err
	}
	raOpts := plan.RAOptions{MaxInterval: cfg.RAInterval, ExistingNetwork: cfg.ExistingNetwork}
	d.add("ra", raSvc, func(st *state.State, now time.Time) { raSvc.Update(plan.RA(st, raOpts, now)) })
	d.stats["ra"] = func() any { return raSvc.Stats() }

	// Without a delegation, the upstream's /64 is shared with the LAN
	// through an ND proxy (RFC 7278 §4.3); the RA advertises it off-link
	// (plan.RA). Not on an existing network: its router serves its /64.
	if !cfg.ExistingNetwork && wan != lan {
		proxy, err := ndproxy.New(ndproxy.Config{WAN: wan, LAN: lan, Logger: log})
		if err != nil {
			return err
		}
		d.add("ndproxy", proxy, func(st *state.State, now time.Time) { proxy.Update(plan.NDProxy(st, now)) })
		d.stats["ndproxy"] = func() any { return proxy.Stats() }
	}

	// Which deployment the gizmo finds itself in (docs/deployments.md).
	dw := &deploymentWatch{log: log, existing: cfg.ExistingNetwork}
	d.add("deployment", dw, dw.observe)

	info, err := dhcp6info.New(dhcp6info.Config{Interface: lan, Logger: log})
	if err != nil {
		return err
	}
	d.add("dhcp6info", info, func(st *state.State, now time.Time) { info.Update(plan.DHCP6Info(st, cfg.ExistingNetwork)) })
	d.stats["dhcp6info"] = func() any { return info.Stats() }

	// DNS64 on the per-source LAN addresses.
	dns, err := dns64.New(dns64.Config{Logger: log})
	if err != nil {
		return err
	}
	d.add("dns64", dns, func(st *state.State, now time.Time) { dns.Update(plan.DNS64(st)) })
	d.stats["dns64"] = func() any { return dns.Stats() }
	d.insightSources = append(d.insightSources, func(ins *web.Insights) { dnsInsights(dns.Stats(), d.addressOwner(), ins) })
	// Registered before the NAT64's traffic source, so that it knows which
	// addresses resolve names through the DNS64 when it splits its bytes.
	d.trafficSources = append(d.trafficSources, func(map[string]series.Categories) {
		if d.ownStackSeen == nil {
			return
		}
		for _, h := range dns.Stats().Hosts {
			d.ownStackSeen(h.LastAddr)
		}
	})
	d.dnsCounts = func() series.DNS {
		st := dns.Stats()
		return series.DNS{A: st.ByType["A"], AAAA: st.ByType["AAAA"], Synthesized: st.Synthesized}
	}

	// DHCPv4 for legacy hosts, with option 108 for the others. Not in
	// existing-network mode: that network has its own DHCPv4 server.
	if !cfg.ExistingNetwork {
		d4, err := dhcp4.New(dhcp4.Config{
			Interface: lan,
			StateDir:  filepath.Join(cfg.StateDir, "dhcp4"),
			Logger:    log,
			OnLease:   func(l dhcp4.Lease) { d.leased(l, true) },
			OnRelease: func(l dhcp4.Lease) { d.leased(l, false) },
		})
		if err != nil {
			return err
		}
		d.add("dhcp4", d4, func(st *state.State, now time.Time) { d4.Update(plan.DHCP4(st, cfg.V6OnlyWait)) })
		d.stats["dhcp4"] = func() any { return d4.Stats() }
		d.insightSources = append(d.insightSources, func(ins *web.Insights) {
			for k, v := range numericFields(d4.Stats()) {
				ins.DHCPv4[k] = uint64(v)
			}
		})
	}

	// Per-host native IPv6 and NAT44 bytes, for the dashboard.
	acct, err := accounting.New(accounting.Config{Logger: log})
	if err != nil {
		return err
	}
	d.add("accounting", acct, func(st *state.State, now time.Time) { acct.Update(accounting.Plan{LAN: lan, WAN: wan}) })
	d.stats["accounting"] = func() any { return acct.Stats() }
	d.trafficSources = append(d.trafficSources, func(hosts map[string]series.Categories) {
		v6, v4, err := acct.Read()
		if err != nil {
			return // not installed yet
		}
		owner := d.addressOwner()
		add := func(addr netip.Addr, f func(*series.Categories)) {
			key := owner(addr)
			if key == "" {
				key = addr.String()
			}
			c := hosts[key]
			f(&c)
			hosts[key] = c
		}
		for a, b := range v6 {
			add(a, func(c *series.Categories) { c.NativeIPv6 += b.Out + b.In })
			if d.ownStackSeen != nil {
				d.ownStackSeen(a)
			}
		}
		for a, b := range v4 {
			add(a, func(c *series.Categories) { c.NAT44 += b.Out + b.In })
		}
	})

	// The firewall separates a WAN from a LAN. With one port on an
	// existing network there is no such border to guard: that network's
	// router has its own firewall (docs/deployments.md).
	if !cfg.ExistingNetwork {
		if err := wireFirewall(d); err != nil {
			return err
		}
		if err := wireFastpath(d, wan, lan); err != nil {
			return err
		}
	} else {
		log.Info("existing network: no firewall ruleset and no prefix delegation; the network's own router keeps those roles")
	}
	if err := wireNAT64(d, cfg, wan, lan); err != nil {
		return err
	}
	if err := wireWeb(d, cfg); err != nil {
		return err
	}
	return nil
}

// leased records what the DHCPv4 server told a host.
func (d *daemon) leased(l dhcp4.Lease, active bool) {
	mac, err := net.ParseMAC(l.MAC)
	if err != nil {
		return
	}
	now := time.Now()
	if l.Hostname != "" {
		d.namedHost(mac, l.Hostname, now)
	}
	d.observe(func(st *state.State) {
		h := d.hostLocked(mac.String(), now) // observe holds d.mu
		h.GotV6OnlyPreferred = l.V6OnlyPreferred
		switch {
		case active && l.IP.IsValid():
			h.IPv4Lease = l.IP
			h.Addrs[l.IP] = now
		case !active && h.IPv4Lease == l.IP:
			h.IPv4Lease = netip.Addr{}
		}
	})
}

// dnsInsights turns the DNS64 service's counters into the dashboard's.
// Queries counted under an address (made before the host's MAC was known)
// are added to the host that owns the address now.
func dnsInsights(st dns64.Stats, owner func(netip.Addr) string, ins *web.Insights) {
	ins.DNS = web.DNSInsights{
		Queries: st.Queries, Synthesized: st.Synthesized, CacheHits: st.CacheHits, CacheMisses: st.CacheMisses,
		ByType: st.ByType, BySource: map[string]uint64{},
	}
	for src, n := range st.BySource {
		ins.DNS.BySource[string(src)] = n
	}
	top := map[string]uint64{}
	for key, h := range st.Hosts {
		for _, nc := range h.TopSynthesized {
			top[nc.Name] += nc.Count
		}
		if _, err := net.ParseMAC(key); err != nil {
			a, err := netip.ParseAddr(key)
			if err != nil || owner(a) == "" {
				continue // an address without a known MAC
			}
			key = owner(a)
		}
		hi := ins.Hosts[key]
		hi.DNSQueries += h.Queries
		hi.Synthesized += h.Synthesized
		if hi.DNSSources == nil {
			hi.DNSSources = map[string]uint64{}
		}
		for src, n := range h.BySource {
			hi.DNSSources[string(src)] += n
		}
		for _, nc := range h.TopSynthesized {
			hi.TopLegacy = append(hi.TopLegacy, web.NameCount{Name: nc.Name, Count: nc.Count})
		}
		ins.Hosts[key] = hi
	}
	for name, n := range top {
		ins.DNS.TopLegacy = append(ins.DNS.TopLegacy, web.NameCount{Name: name, Count: n})
	}
	slices.SortFunc(ins.DNS.TopLegacy, func(a, b web.NameCount) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(ins.DNS.TopLegacy) > 20 {
		ins.DNS.TopLegacy = ins.DNS.TopLegacy[:20]
	}
}

// upstreamPrefixes copies the upstream RA's PIOs into the state, where the
// ND proxy plan looks for a /64 to share (gizmo/plan/ndproxy.go).
func upstreamPrefixes(ps []wansvc.Prefix) []state.UpstreamPrefix {
	out := make([]state.UpstreamPrefix, 0, len(ps))
	for _, p := range ps {
		out = append(out, state.UpstreamPrefix{Prefix: p.Prefix, OnLink: p.OnLink, Autonomous: p.Autonomous, PreferredUntil: p.PreferredUntil, ValidUntil: p.ValidUntil})
	}
	return out
}
