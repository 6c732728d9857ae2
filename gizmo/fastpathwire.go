package main

import (
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/fastpath"
	"codeberg.org/monostack/gizmo/services/firewall"
	"codeberg.org/monostack/gizmo/web"
	"codeberg.org/monostack/gizmo/web/series"
)

// wireFastpath runs the eBPF flowtable beside the firewall: established
// native IPv6 flows skip netfilter (services/fastpath). Its packets never
// meet the ruleset's or the accounting table's counters, so its own are
// added to both. Registered after the firewall and the accounting, so that
// it adds to what they reported.
func wireFastpath(d *daemon, wan, lan string) error {
	fp, err := fastpath.New(fastpath.Config{LAN: lan, WAN: wan, Logger: d.log})
	if err != nil {
		return err
	}
	d.add("fastpath", fp, func(st *state.State, now time.Time) {
		// The firewall's LAN prefixes are the ones its anti-spoofing
		// accepts; a plan it refuses offloads nothing.
		p, _ := plan.Firewall(st, now)
		// A /64 shared with the WAN through the ND proxy holds LAN hosts
		// too; flows between two of its addresses stay with the stack,
		// because the fast path only learns LAN ↔ outside.
		lan := append(slices.Clone(p.LANPrefixes), p.Shared...)
		// More than the datapath holds would make the plan refused; the
		// ones left out just take the stack's path.
		if len(lan) > fastpath.MaxLANPrefixes {
			lan = lan[:fastpath.MaxLANPrefixes]
		}
		fpp := fastpath.Plan{LANPrefixes: lan}
		// The NAT64 prefix's flows are the NAT64's: never offloaded.
		if st.Pref64.IsValid() {
			fpp.Exclude = []netip.Prefix{st.Pref64}
		}
		fp.Update(fpp)
	})
	d.stats["fastpath"] = func() any { return fp.Stats() }
	d.insightSources = append(d.insightSources, func(ins *web.Insights) {
		st := fp.Stats()
		c := ins.Firewall[firewall.CounterIPv6Forwarded]
		c.Packets += st.Packets
		c.Bytes += st.Bytes
		ins.Firewall[firewall.CounterIPv6Forwarded] = c
	})
	d.trafficSources = append(d.trafficSources, func(hosts map[string]series.Categories) {
		owner := d.addressOwner()
		for addr, h := range fp.Stats().Hosts {
			key := owner(addr)
			if key == "" {
				key = addr.String()
			}
			c := hosts[key]
			c.NativeIPv6 += h.OutBytes + h.InBytes
			hosts[key] = c
			if d.ownStackSeen != nil {
				d.ownStackSeen(addr)
			}
		}
	})
	return nil
}
