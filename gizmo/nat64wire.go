package main

import (
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/nat64"
	"codeberg.org/monostack/gizmo/web"
	"codeberg.org/monostack/gizmo/web/series"
)

// nat64Accounting rolls the datapath's per-address counters up to hosts and
// splits them into the dashboard's two NAT64 categories. A CLAT translates
// IPv4 literals from an IPv6 address of its own that carries nothing else
// (RFC 6877 §6.3; tayga and Android's clatd both do). So an address that
// also asked the DNS64 for names, or also carried native IPv6, belongs to
// the host's own stack, and its NAT64 traffic went to names resolved
// through DNS64; an address that only ever carried NAT64 is a CLAT's.
type nat64Accounting struct {
	mu sync.Mutex
	// retired keeps the final counters of address entries the datapath
	// dropped, so that the per-host totals never go backwards.
	retired map[netip.Addr]nat64.HostStats
	// ownStack are addresses seen querying the DNS64 or carrying native
	// IPv6: the hosts' own stacks, not a CLAT.
	ownStack map[netip.Addr]bool
}

func (a *nat64Accounting) retire(h nat64.HostStats) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.retired[h.Addr]
	r.Addr = h.Addr
	r.BytesOut += h.BytesOut
	r.BytesIn += h.BytesIn
	r.PacketsOut += h.PacketsOut
	r.PacketsIn += h.PacketsIn
	a.retired[h.Addr] = r
}

func (a *nat64Accounting) sawOwnStack(addr netip.Addr) {
	if !addr.IsValid() {
		return
	}
	a.mu.Lock()
	a.ownStack[addr] = true
	a.mu.Unlock()
}

// addTraffic adds every address's NAT64 bytes (both directions) to the
// host that owns the address.
func (a *nat64Accounting) addTraffic(live []nat64.HostStats, owner func(netip.Addr) string, hosts map[string]series.Categories) {
	a.mu.Lock()
	defer a.mu.Unlock()
	totals := map[netip.Addr]uint64{}
	for addr, r := range a.retired {
		totals[addr] += r.BytesIn + r.BytesOut
	}
	for _, h := range live {
		totals[h.Addr] += h.BytesIn + h.BytesOut
	}
	for addr, bytes := range totals {
		mac := owner(addr)
		if mac == "" {
			mac = addr.String() // not resolved to a MAC yet
		}
		c := hosts[mac]
		if a.ownStack[addr] {
			c.NAT64DNS64 += bytes
		} else {
			c.NAT64CLAT += bytes
		}
		hosts[mac] = c
	}
}

// addressOwner maps a LAN address to the MAC of the host that used it.
func (d *daemon) addressOwner() func(netip.Addr) string {
	d.mu.Lock()
	owners := map[netip.Addr]string{}
	for mac, h := range d.st.Hosts {
		for a := range h.Addrs {
			owners[a] = mac
		}
	}
	d.mu.Unlock()
	return func(a netip.Addr) string { return owners[a] }
}

func wireNAT64(d *daemon, cfg config, wan, lan string) error {
	acct := &nat64Accounting{retired: map[netip.Addr]nat64.HostStats{}, ownStack: map[netip.Addr]bool{}}
	svc, err := nat64.New(nat64.Config{
		PinDir:        nat64.DefaultPinDir,
		Logger:        d.log,
		OnHostRetired: acct.retire,
	})
	if err != nil {
		return err
	}
	var last *nat64.Plan
	d.add("nat64", svc, func(st *state.State, now time.Time) {
		p := nat64.Plan{}
		// RFC 8781: an upstream that advertises its own PREF64 runs the
		// NAT64; the gizmo only passes its prefix on and does not translate.
		if st.Pref64Source != state.Pref64Upstream {
			p = plan.NAT64(st, now, ifindex(lan), ifindex(wan))
		}
		if cfg.ExistingNetwork && len(p.LANPrefixes) > 0 {
			// The plan may hold the network's /64 already (as a shared
			// prefix); each prefix once.
			for _, q := range existingNetworkPrefixes(st) {
				if !slices.Contains(p.LANPrefixes, q) {
					p.LANPrefixes = append(p.LANPrefixes, q)
				}
			}
		}
		// The daemon replans on every observation; the datapath is
		// reconfigured (and says so) only when its plan changed.
		if last != nil && reflect.DeepEqual(*last, p) {
			return
		}
		last = &p
		svc.Update(p)
	})
	d.stats["nat64"] = func() any { return svc.Stats() }
	d.trafficSources = append(d.trafficSources, func(hosts map[string]series.Categories) {
		acct.addTraffic(svc.Stats().Hosts, d.addressOwner(), hosts)
	})
	d.insightSources = append(d.insightSources, func(ins *web.Insights) {
		st := svc.Stats()
		ins.NAT64 = web.NAT64Insights{Running: st.Enabled, Sessions: st.Sessions, Capacity: nat64MaxSessions, Drops: map[string]uint64{}}
		for name, n := range st.Counters {
			if strings.HasPrefix(name, "translated") || name == "hairpinned" {
				ins.NAT64.Translated += n
				continue
			}
			ins.NAT64.Drops[name] = n
		}
	})
	d.ownStackSeen = acct.sawOwnStack
	return nil
}

// nat64MaxSessions is the datapath's table size (nat64.Config.MaxSessions's
// default).
const nat64MaxSessions = 131072

func ifindex(name string) int {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0
	}
	return ifi.Index
}
