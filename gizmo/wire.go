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
	for _, wire := range []wiring{
		wireKernel, wireTime, wireDHCP6PD, wireWAN,
		wireLANIf, wireNeighbors, wireRA, routerOnly(wireNDProxy), wireDHCP6Info,
		wireDNS64, routerOnly(wireDHCP4), wireAccounting,
		routerOnly(wireFirewall), routerOnly(wireFastpath), routerOnly(wireUPnP),
		wireNAT64, routerOnly(wireDSLite), wireCLAT, wireNSResponder, wireWeb,
	} {
		if err := wire(d, cfg, wan, lan); err != nil {
			return err
		}
	}
	return nil
}

// A wiring creates one service (or a few that work together) for the WAN
// and LAN interfaces named, and hands it to the daemon.
type wiring func(d *daemon, cfg config, wan, lan string) error

// routerOnly is wire, except on an existing network, whose own router
// keeps that role.
func routerOnly(wire wiring) wiring {
	return func(d *daemon, cfg config, wan, lan string) error {
		if cfg.ExistingNetwork {
			return nil
		}
		return wire(d, cfg, wan, lan)
	}
}

// register adds svc, which its New returned together with err, to the
// daemon's services with apply, the function that hands it its plan, and
// keeps it in *slot, where the dashboard reads its counters. New's error
// is returned unchanged, and then nothing is added.
func register[S service](d *daemon, name string, slot *S, svc S, err error, apply applier) error {
	if err != nil {
		return err
	}
	d.add(name, svc, apply)
	*slot = svc
	return nil
}

// observer is a service's callback that records what the service saw
// with record, at the time of the call.
func observer[T any](d *daemon, record func(st *state.State, seen T, now time.Time)) func(T) {
	return func(seen T) {
		d.observe(func(st *state.State) { record(st, seen, time.Now()) })
	}
}

// wireDHCP6PD runs the DHCPv6-PD client. On an existing network, too:
// many home routers delegate, and the first /64 of a delegation is then
// the on-link /64 of the NAT64 (gizmo/derive.OnLinkPrefix).
func wireDHCP6PD(d *daemon, cfg config, wan, _ string) error {
	pd, err := dhcp6pd.New(dhcp6pd.Config{
		Interface:    wan,
		StateDir:     filepath.Join(cfg.StateDir, "dhcp6pd"),
		Logger:       d.log,
		OnLease:      observer(d, delegationObserved),
		OnLost:       observer(d, derive.LostDelegation),
		ClockTrusted: d.clockTrusted,
	})
	var confirmed time.Time
	return register(d, "dhcp6pd", &d.wired.dhcp6pd, pd, err, func(p *plan.Plans) {
		if c := p.DHCP6PD.ConfirmLinkUp; !c.IsZero() && !c.Equal(confirmed) {
			confirmed = c
			pd.LinkChanged()
		}
	})
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
	return register(d, "wan", &d.wired.wan, up, err, func(p *plan.Plans) { up.Update(p.WAN) })
}

// wireLANIf keeps the LAN link's addresses.
func wireLANIf(d *daemon, _ config, _, lan string) error {
	addrs, err := lanif.New(lanif.Config{Interface: lan, Logger: d.log})
	return register(d, "lanif", &d.wired.lanif, addrs, err, func(p *plan.Plans) { addrs.Update(p.LAN) })
}

// wireNeighbors runs the neighbour watch, which tells the host table which
// MAC uses which address on the LAN.
func wireNeighbors(d *daemon, _ config, _, lan string) error {
	neigh, err := neighbors.New(neighbors.Config{Interface: lan, Logger: d.log, OnSighting: func(s neighbors.Sighting) {
		d.sawHost(derive.Sighting{MAC: s.MAC.String(), Addr: s.Addr, At: s.At, FromFrame: s.FromFrame})
	}})
	return register(d, "neighbors", &d.wired.neighbors, neigh, err, nil)
}

// wireRA sends the LAN's Router Advertisements. The RA service's socket
// never sees the Ethernet header, so an RS's SLLAO cannot be checked
// against the frame's source there: the neighbour watch learns soliciting
// hosts from their frames.
func wireRA(d *daemon, _ config, _, lan string) error {
	raSvc, err := ra.New(ra.Config{Interface: lan, Logger: d.log})
	return register(d, "ra", &d.wired.ra, raSvc, err, func(p *plan.Plans) { raSvc.Update(p.RA) })
}

// wireNDProxy shares the upstream's /64 with the LAN when there is no
// delegation (RFC 7278 §4.3); with one port there is no second link to
// share it with. Not on an existing network: its router serves its /64.
func wireNDProxy(d *daemon, _ config, wan, lan string) error {
	if wan == lan {
		return nil
	}
	proxy, err := ndproxy.New(ndproxy.Config{WAN: wan, LAN: lan, Logger: d.log})
	return register(d, "ndproxy", &d.wired.ndproxy, proxy, err, func(p *plan.Plans) { proxy.Update(p.NDProxy) })
}

// wireDHCP6Info answers stateless DHCPv6 on the LAN.
func wireDHCP6Info(d *daemon, _ config, _, lan string) error {
	info, err := dhcp6info.New(dhcp6info.Config{Interface: lan, Logger: d.log})
	return register(d, "dhcp6info", &d.wired.dhcp6info, info, err, func(p *plan.Plans) { info.Update(p.DHCP6Info) })
}

// wireDNS64 runs the resolver on the per-source LAN addresses.
func wireDNS64(d *daemon, _ config, _, _ string) error {
	dns, err := dns64.New(dns64.Config{Logger: d.log})
	return register(d, "dns64", &d.wired.dns64, dns, err, func(p *plan.Plans) { dns.Update(p.DNS64) })
}

// wireDHCP4 runs the DHCPv4 server for legacy hosts, with option 108 for
// the others; not on an existing network, which has its own.
func wireDHCP4(d *daemon, cfg config, _, lan string) error {
	d4, err := dhcp4.New(dhcp4.Config{
		Interface: lan,
		StateDir:  filepath.Join(cfg.StateDir, "dhcp4"),
		Logger:    d.log,
		OnLease:   func(l dhcp4.Lease) { d.leased(l, true) },
		OnRelease: func(l dhcp4.Lease) { d.leased(l, false) },
	})
	return register(d, "dhcp4", &d.wired.dhcp4, d4, err, func(p *plan.Plans) { d4.Update(p.DHCP4) })
}

// wireFirewall runs the firewall that guards the border between the WAN
// and the LAN. With one port on an existing network there is no such
// border: that network's router guards its own.
func wireFirewall(d *daemon, _ config, _, _ string) error {
	fw, err := firewall.New(firewall.Config{
		Logger: d.log,
		OnApplied: func(err error) {
			if err != nil {
				d.log.Error("firewall ruleset not applied; the previous one stays", "err", err)
			}
		},
	})
	var (
		mu      sync.Mutex
		lastErr string
	)
	return register(d, "firewall", &d.wired.firewall, fw, err, func(p *plan.Plans) {
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
}

// wireFastpath runs the fast path beside the firewall, for the flows the
// ruleset accepted; like the firewall, not on an existing network.
func wireFastpath(d *daemon, _ config, wan, lan string) error {
	fp, err := fastpath.New(fastpath.Config{LAN: lan, WAN: wan, Logger: d.log})
	// The decision is logged once, and again when it changes.
	var (
		logged  bool
		lastOff string
	)
	return register(d, "fastpath", &d.wired.fastpath, fp, err, func(p *plan.Plans) {
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
}

// wireAccounting counts each host's native IPv6 and NAT44 bytes for the
// dashboard.
func wireAccounting(d *daemon, _ config, _, _ string) error {
	acct, err := accounting.New(accounting.Config{Logger: d.log})
	return register(d, "accounting", &d.wired.accounting, acct, err, func(p *plan.Plans) { acct.Update(p.Accounting) })
}

// wireUPnP runs the UPnP IGD through which apps ask for inbound IPv6 ports
// (the daemon is its Backend: gizmo/pinholes.go); not on an existing
// network, whose own router is the firewall.
func wireUPnP(d *daemon, _ config, _, lan string) error {
	svc, err := upnp.New(upnp.Config{Interface: lan, Backend: d, Logger: d.log})
	return register(d, "upnp", &d.wired.upnp, svc, err, func(p *plan.Plans) {
		if err := svc.Update(p.UPnP); err != nil {
			d.log.Error("UPnP plan refused", "err", err)
		}
	})
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
	d.wired.nat64Capacity = cfg.MaxSessions
	var last *nat64.Plan
	return register(d, "nat64", &d.wired.nat64, svc, err, func(p *plan.Plans) {
		// The daemon replans on every observation; the datapath is
		// reconfigured (and says so) only when its plan changed.
		if last != nil && reflect.DeepEqual(*last, p.NAT64) {
			return
		}
		last = &p.NAT64
		svc.Update(p.NAT64)
	})
}

// wireDSLite runs the B4 of a DS-Lite line (RFC 6333): it resolves the
// AFTR the delegation's Reply names and, while the plan says so, carries
// the line's IPv4 in a softwire to it. Not on an existing network, whose
// router has the line.
func wireDSLite(d *daemon, _ config, _, _ string) error {
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
	var last *dslite.Plan
	return register(d, "dslite", &d.wired.dslite, svc, err, func(p *plan.Plans) {
		if last != nil && last.Equal(p.DSLite) {
			return
		}
		last = &p.DSLite
		svc.Update(p.DSLite)
	})
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
	return register(d, "clat", &d.wired.clat, svc, err, func(p *plan.Plans) { svc.Update(p.CLAT) })
}

// wireNSResponder answers Neighbor Solicitations for the on-link NAT64
// prefix of the existing-network mode; in the other modes the gizmo is
// the hosts' default router, and they reach the NAT64 through it.
func wireNSResponder(d *daemon, cfg config, _, lan string) error {
	if !cfg.ExistingNetwork {
		return nil
	}
	ns, err := nsresponder.New(nsresponder.Config{Interface: lan, Logger: d.log})
	return register(d, "nsresponder", &d.wired.nsresponder, ns, err, func(p *plan.Plans) { ns.Update(p.NSResponder) })
}
