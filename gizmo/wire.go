package main

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/derive"
	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/accounting"
	"codeberg.org/monostack/gizmo/services/clat"
	"codeberg.org/monostack/gizmo/services/dhcp4"
	"codeberg.org/monostack/gizmo/services/dhcp6info"
	"codeberg.org/monostack/gizmo/services/dhcp6pd"
	"codeberg.org/monostack/gizmo/services/dns64"
	"codeberg.org/monostack/gizmo/services/dslite"
	"codeberg.org/monostack/gizmo/services/fastpath"
	"codeberg.org/monostack/gizmo/services/firewall"
	"codeberg.org/monostack/gizmo/services/lanif"
	"codeberg.org/monostack/gizmo/services/nat64"
	"codeberg.org/monostack/gizmo/services/ndproxy"
	"codeberg.org/monostack/gizmo/services/neighbors"
	"codeberg.org/monostack/gizmo/services/nsresponder"
	"codeberg.org/monostack/gizmo/services/ra"
	"codeberg.org/monostack/gizmo/services/timesync"
	"codeberg.org/monostack/gizmo/services/upnp"
	"codeberg.org/monostack/gizmo/services/vlan"
	wansvc "codeberg.org/monostack/gizmo/services/wan"
)

// wired are the services whose counters the dashboard reads; nil: not
// running in this mode.
type wired struct {
	wan       *wansvc.Service
	dhcp6pd   *dhcp6pd.Service
	ra        *ra.Service
	neighbors *neighbors.Service
	ndproxy   *ndproxy.Service
	dhcp6info *dhcp6info.Service
	lanif     *lanif.Service
	dns64     *dns64.Service
	dhcp4     *dhcp4.Service
	nat64     *nat64.Service
	dslite    *dslite.Service
	// nat64Capacity is the NAT64's session table size.
	nat64Capacity int
	clat          *clat.Service
	discovery     *clat.Discovery
	firewall      *firewall.Service
	fastpath      *fastpath.Service
	accounting    *accounting.Service
	upnp          *upnp.Service
	timesync      *timesync.Service
	// nsresponder answers for the on-link NAT64 prefix of the
	// existing-network mode.
	nsresponder *nsresponder.Service
	// vlan tags the uplink when it is on a VLAN.
	vlan *vlan.Tagger
}

// wireServices creates the protocol services, turns their observations
// into changes of the state and hands each its part of the plans. On an
// existing network the gizmo is a guest: that network's router routes,
// serves DHCPv4 and guards its border, so the gizmo runs none of that
// (docs/deployments.md); it asks for a delegated prefix only to announce
// one /64 of it on-link for its NAT64 and DNS64.
func wireServices(d *daemon, cfg config, wan, lan string) error {
	if cfg.ExistingNetwork {
		d.log.Info("existing network: no firewall ruleset, no ND proxy and no DHCPv4 server; the network's own router keeps those roles")
	}
	for _, wire := range []func(*daemon, config, string, string) error{
		wireKernel, wireTime, wireDHCP6PD, wireWAN, wireLAN, wireDNS64, wireDHCP4, wireAccounting, wireBorder, wireUPnP, wireNAT64, wireDSLite, wireCLAT, wireNSResponder, wireWeb,
	} {
		if err := wire(d, cfg, wan, lan); err != nil {
			return err
		}
	}
	return nil
}

// wireWAN runs the uplink observer: SLAAC, the upstream RA, the DHCPv4
// lease.
func wireWAN(d *daemon, cfg config, wan, _ string) error {
	up, err := wansvc.New(wansvc.Config{
		Interface: wan,
		StateDir:  filepath.Join(cfg.StateDir, "wan"),
		Logger:    d.log,
		OnUpstream: func(u wansvc.Upstream) {
			d.observe(func(st *state.State) { wanObserved(&st.WAN, u, time.Now()) })
		},
		OnIPv4: func(l *wansvc.IPv4Lease) {
			d.observe(func(st *state.State) { st.WAN.IPv4 = ipv4Observed(l) })
		},
		ClockTrusted: d.clockTrusted,
	})
	if err != nil {
		return err
	}
	d.add("wan", up, func(p *plan.Plans) { up.Update(p.WAN) })
	d.wired.wan = up
	return nil
}

// wireDHCP6PD runs the DHCPv6-PD client. On an existing network, too:
// many home routers delegate, and the first /64 of a delegation is then
// the on-link /64 of the NAT64 (gizmo/derive.OnLinkPrefix).
func wireDHCP6PD(d *daemon, cfg config, wan, _ string) error {
	pd, err := dhcp6pd.New(dhcp6pd.Config{
		Interface: wan,
		StateDir:  filepath.Join(cfg.StateDir, "dhcp6pd"),
		Logger:    d.log,
		OnLease: func(l dhcp6pd.Lease) {
			d.observe(func(st *state.State) { delegationObserved(st, l, time.Now()) })
		},
		OnLost: func(p netip.Prefix) {
			d.observe(func(st *state.State) { derive.LostDelegation(st, p, time.Now()) })
		},
		ClockTrusted: d.clockTrusted,
	})
	if err != nil {
		return err
	}
	var confirmed time.Time
	d.add("dhcp6pd", pd, func(p *plan.Plans) {
		if c := p.DHCP6PD.ConfirmLinkUp; !c.IsZero() && !c.Equal(confirmed) {
			confirmed = c
			pd.LinkChanged()
		}
	})
	d.wired.dhcp6pd = pd
	return nil
}

// wireLAN runs the services of the LAN link: its addresses, the neighbour
// watch, Router Advertisements, the ND proxy and stateless DHCPv6.
func wireLAN(d *daemon, cfg config, wan, lan string) error {
	addrs, err := lanif.New(lanif.Config{Interface: lan, Logger: d.log})
	if err != nil {
		return err
	}
	d.add("lanif", addrs, func(p *plan.Plans) { addrs.Update(p.LAN) })
	d.wired.lanif = addrs

	neigh, err := neighbors.New(neighbors.Config{Interface: lan, Logger: d.log, OnSighting: func(s neighbors.Sighting) {
		d.sawHost(derive.Sighting{MAC: s.MAC.String(), Addr: s.Addr, At: s.At, FromFrame: s.FromFrame})
	}})
	if err != nil {
		return err
	}
	d.add("neighbors", neigh, nil)
	d.wired.neighbors = neigh

	// The RA service's socket never sees the Ethernet header, so an RS's
	// SLLAO cannot be checked against the frame's source there: the
	// neighbour watcher learns soliciting hosts from their frames.
	raSvc, err := ra.New(ra.Config{Interface: lan, Logger: d.log})
	if err != nil {
		return err
	}
	d.add("ra", raSvc, func(p *plan.Plans) { raSvc.Update(p.RA) })
	d.wired.ra = raSvc

	// Without a delegation, the upstream's /64 is shared with the LAN
	// through an ND proxy (RFC 7278 §4.3). Not on an existing network: its
	// router serves its /64.
	if !cfg.ExistingNetwork && wan != lan {
		proxy, err := ndproxy.New(ndproxy.Config{WAN: wan, LAN: lan, Logger: d.log})
		if err != nil {
			return err
		}
		d.add("ndproxy", proxy, func(p *plan.Plans) { proxy.Update(p.NDProxy) })
		d.wired.ndproxy = proxy
	}

	info, err := dhcp6info.New(dhcp6info.Config{Interface: lan, Logger: d.log})
	if err != nil {
		return err
	}
	d.add("dhcp6info", info, func(p *plan.Plans) { info.Update(p.DHCP6Info) })
	d.wired.dhcp6info = info
	return nil
}

// wireDNS64 runs the resolver on the per-source LAN addresses.
func wireDNS64(d *daemon, _ config, _, _ string) error {
	dns, err := dns64.New(dns64.Config{Logger: d.log})
	if err != nil {
		return err
	}
	d.add("dns64", dns, func(p *plan.Plans) { dns.Update(p.DNS64) })
	d.wired.dns64 = dns
	return nil
}

// wireDHCP4 runs the DHCPv4 server for legacy hosts, with option 108 for
// the others; not on an existing network, which has its own.
func wireDHCP4(d *daemon, cfg config, _, lan string) error {
	if cfg.ExistingNetwork {
		return nil
	}
	d4, err := dhcp4.New(dhcp4.Config{
		Interface: lan,
		StateDir:  filepath.Join(cfg.StateDir, "dhcp4"),
		Logger:    d.log,
		OnLease:   func(l dhcp4.Lease) { d.leased(l, true) },
		OnRelease: func(l dhcp4.Lease) { d.leased(l, false) },
	})
	if err != nil {
		return err
	}
	d.add("dhcp4", d4, func(p *plan.Plans) { d4.Update(p.DHCP4) })
	d.wired.dhcp4 = d4
	return nil
}

// wireNAT64 runs the eBPF NAT64. Its datapath keeps per-address counters
// that it drops when an address goes idle; the rollup keeps their totals.
func wireNAT64(d *daemon, _ config, _, _ string) error {
	cfg := nat64.Config{
		PinDir:        nat64.DefaultPinDir,
		MaxSessions:   nat64.DefaultMaxSessions,
		Logger:        d.log,
		OnHostRetired: d.rollup.RetireNAT64Host,
	}
	svc, err := nat64.New(cfg)
	if err != nil {
		return err
	}
	var last *nat64.Plan
	d.add("nat64", svc, func(p *plan.Plans) {
		// The daemon replans on every observation; the datapath is
		// reconfigured (and says so) only when its plan changed.
		if last != nil && reflect.DeepEqual(*last, p.NAT64) {
			return
		}
		last = &p.NAT64
		svc.Update(p.NAT64)
	})
	d.wired.nat64, d.wired.nat64Capacity = svc, cfg.MaxSessions
	return nil
}

// wireDSLite runs the B4 of a DS-Lite line (RFC 6333): it resolves the
// AFTR the delegation's Reply names and, while the plan says so, carries
// the line's IPv4 in a softwire to it. Not on an existing network, whose
// router has the line.
func wireDSLite(d *daemon, cfg config, _, _ string) error {
	if cfg.ExistingNetwork {
		return nil
	}
	svc, err := dslite.New(dslite.Config{
		Logger: d.log,
		OnAFTR: func(name string, addr netip.Addr) {
			d.observe(func(st *state.State) {
				// A late answer for a name the ISP no longer gives
				// is not the AFTR.
				if name == "" || name == st.WAN.AFTRName {
					st.WAN.AFTR = addr
				}
			})
		},
	})
	if err != nil {
		return err
	}
	var last *dslite.Plan
	d.add("dslite", svc, func(p *plan.Plans) {
		if last != nil && last.Equal(p.DSLite) {
			return
		}
		last = &p.DSLite
		svc.Update(p.DSLite)
	})
	d.wired.dslite = svc
	return nil
}

// wireNSResponder answers Neighbor Solicitations for the on-link NAT64
// prefix of the existing-network mode; in the other modes the gizmo is
// the hosts' default router, and they reach the NAT64 through it.
func wireNSResponder(d *daemon, cfg config, _, lan string) error {
	if !cfg.ExistingNetwork {
		return nil
	}
	ns, err := nsresponder.New(nsresponder.Config{Interface: lan, Logger: d.log})
	if err != nil {
		return err
	}
	d.add("nsresponder", ns, func(p *plan.Plans) { ns.Update(p.NSResponder) })
	d.wired.nsresponder = ns
	return nil
}

// wireCLAT runs RFC 7050 discovery of the ISP's NAT64 prefix and the CLAT
// that translates the legacy hosts' IPv4 on an IPv6-only line (RFC 6877);
// not the CLAT on an existing network, whose router serves its legacy
// hosts.
func wireCLAT(d *daemon, cfg config, wan, _ string) error {
	disc := clat.NewDiscovery(clat.DiscoveryConfig{Logger: d.log, OnResult: func(r clat.Discovered) {
		d.observe(func(st *state.State) { discoveryObserved(&st.WAN.DNS64, r) })
	}})
	d.add("clat-discovery", disc, func(p *plan.Plans) { disc.Update(p.Discovery) })
	d.wired.discovery = disc
	if cfg.ExistingNetwork {
		return nil
	}
	svc, err := clat.New(clat.Config{WAN: wan, Logger: d.log})
	if err != nil {
		return err
	}
	d.add("clat", svc, func(p *plan.Plans) { svc.Update(p.CLAT) })
	d.wired.clat = svc
	return nil
}

// wireBorder runs what guards the border between the WAN and the LAN: the
// firewall and the fast path beside it. With one port on an existing
// network there is no such border: that network's router guards its own.
func wireBorder(d *daemon, cfg config, wan, lan string) error {
	if cfg.ExistingNetwork {
		return nil
	}
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
	d.add("firewall", fw, func(p *plan.Plans) {
		// A rule that cannot be resolved is left out of the plan; say so
		// once per distinct problem, not on every replan.
		msg := ""
		if p.FirewallProblems != nil {
			msg = p.FirewallProblems.Error()
		}
		mu.Lock()
		if msg != lastErr && msg != "" {
			d.log.Warn("some inbound rules do not apply", "err", p.FirewallProblems)
		}
		lastErr = msg
		mu.Unlock()
		if err := fw.Update(p.Firewall); err != nil {
			d.log.Error("firewall plan refused", "err", err)
		}
	})
	d.wired.firewall = fw

	fp, err := fastpath.New(fastpath.Config{LAN: lan, WAN: wan, Logger: d.log})
	if err != nil {
		return err
	}
	// The decision is logged once, and again when it changes.
	var (
		logged  bool
		lastOff string
	)
	d.add("fastpath", fp, func(p *plan.Plans) {
		if !logged || p.FastpathOff != lastOff {
			if p.FastpathOff != "" {
				d.log.Info("fast path off: established IPv6 flows go through the ruleset", "reason", p.FastpathOff)
			} else {
				d.log.Info("fast path on")
			}
			logged, lastOff = true, p.FastpathOff
		}
		fp.Update(p.Fastpath)
	})
	d.wired.fastpath = fp
	return nil
}

// wireAccounting counts each host's native IPv6 and NAT44 bytes for the
// dashboard.
func wireAccounting(d *daemon, _ config, _, _ string) error {
	acct, err := accounting.New(accounting.Config{Logger: d.log})
	if err != nil {
		return err
	}
	d.add("accounting", acct, func(p *plan.Plans) { acct.Update(p.Accounting) })
	d.wired.accounting = acct
	return nil
}

// wireUPnP runs the UPnP IGD through which apps ask for inbound IPv6 ports
// (the daemon is its Backend: gizmo/pinholes.go); not on an existing
// network, whose own router is the firewall.
func wireUPnP(d *daemon, cfg config, _, lan string) error {
	if cfg.ExistingNetwork {
		return nil
	}
	svc, err := upnp.New(upnp.Config{Interface: lan, Backend: d, Logger: d.log})
	if err != nil {
		return err
	}
	d.add("upnp", svc, func(p *plan.Plans) {
		if err := svc.Update(p.UPnP); err != nil {
			d.log.Error("UPnP plan refused", "err", err)
		}
	})
	d.wired.upnp = svc
	return nil
}
