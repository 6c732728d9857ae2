// Package rollup turns the services' counters into the dashboard's terms:
// the insights, each host's traffic by category, the DNS counts of the
// history, and the services' /metrics families. It takes one typed value
// with every running service's Stats (Stats) and returns values; it reads
// no service itself, so the order in which the daemon wired them does not
// matter.
package rollup

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dhcp4"
	"codeberg.org/monostack/gizmo/services/firewall"
	"codeberg.org/monostack/gizmo/services/nat64"
	"codeberg.org/monostack/gizmo/web"
	"codeberg.org/monostack/gizmo/web/series"
)

// Rollup keeps what the counters alone cannot tell: the final counters of
// NAT64 address entries the datapath dropped, and which addresses belong to
// a host's own stack rather than to its CLAT. Safe for concurrent use.
type Rollup struct {
	mu sync.Mutex
	// retired keeps the final counters of address entries the datapath
	// dropped, so that the per-host totals never go backwards.
	retired map[netip.Addr]nat64Bytes
	// ownStack are addresses seen querying the DNS64 or carrying native
	// IPv6: the hosts' own stacks, not a CLAT.
	ownStack map[netip.Addr]bool
	// limits are the bounds' counters as WatchLimits last saw them.
	limits map[string]limitSeen
}

// New returns an empty Rollup.
func New() *Rollup {
	return &Rollup{retired: map[netip.Addr]nat64Bytes{}, ownStack: map[netip.Addr]bool{}, limits: map[string]limitSeen{}}
}

// RetireNAT64Host keeps the final byte counts of an address entry the NAT64
// datapath removed (nat64.Config.OnHostRetired).
func (r *Rollup) RetireNAT64Host(h nat64.HostStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retired[h.Addr] = r.retired[h.Addr].add(h)
}

// nat64Bytes are an address's NAT64 bytes, both directions: through the
// WAN pool, and through the LAN pool.
type nat64Bytes struct{ wan, lan uint64 }

func (b nat64Bytes) add(h nat64.HostStats) nat64Bytes {
	return nat64Bytes{wan: b.wan + h.BytesIn + h.BytesOut, lan: b.lan + h.LANBytesIn + h.LANBytesOut}
}

// Owners maps a LAN address to the MAC of the host that used it.
type Owners map[netip.Addr]string

// OwnersOf are the owners of every address the hosts were seen with.
func OwnersOf(hosts map[string]*state.Host) Owners {
	o := Owners{}
	for mac, h := range hosts {
		for a := range h.Addrs {
			o[a] = mac
		}
	}
	return o
}

// key is the host an address's counters go to: its owner's MAC, or the
// address itself while no MAC is known for it.
func (o Owners) key(a netip.Addr) string {
	if mac := o[a]; mac != "" {
		return mac
	}
	return a.String()
}

// Traffic sums each host's cumulative bytes by category: native IPv6 (the
// accounting table plus the fast path, whose packets never meet it), NAT44,
// the NAT64's WAN pool bytes split into DNS64 and CLAT, and its LAN pool
// bytes (to and from the LAN's own IPv4-only devices) as LAN legacy.
func (r *Rollup) Traffic(s Stats, owners Owners) map[string]series.Categories {
	hosts := map[string]series.Categories{}
	add := func(a netip.Addr, f func(*series.Categories)) {
		k := owners.key(a)
		c := hosts[k]
		f(&c)
		hosts[k] = c
	}
	for a, b := range s.NativeIPv6 {
		add(a, func(c *series.Categories) { c.NativeIPv6 += b.Out + b.In })
	}
	for a, b := range s.NAT44 {
		add(a, func(c *series.Categories) { c.NAT44 += b.Out + b.In })
	}
	if s.Fastpath != nil {
		for a, h := range s.Fastpath.Hosts {
			add(a, func(c *series.Categories) { c.NativeIPv6 += h.OutBytes + h.InBytes })
		}
	}
	r.sawOwnStack(s)
	if s.NAT64 != nil {
		r.addNAT64(s.NAT64.Hosts, owners, hosts)
	}
	return hosts
}

// sawOwnStack marks the addresses that belong to hosts' own stacks. A CLAT
// translates IPv4 literals from an IPv6 address of its own that carries
// nothing else (RFC 6877 §6.3; tayga and Android's clatd both do). So an
// address that also asked the DNS64 for names, or also carried native
// IPv6, is the host's own stack, and its NAT64 traffic went to names
// resolved through DNS64; an address that only ever carried NAT64 is a
// CLAT's.
func (r *Rollup) sawOwnStack(s Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mark := func(a netip.Addr) {
		if a.IsValid() {
			r.ownStack[a] = true
		}
	}
	if s.DNS64 != nil {
		for _, h := range s.DNS64.Hosts {
			mark(h.LastAddr)
		}
	}
	for a := range s.NativeIPv6 {
		mark(a)
	}
	if s.Fastpath != nil {
		for a := range s.Fastpath.Hosts {
			mark(a)
		}
	}
}

// addNAT64 adds every address's NAT64 bytes (both directions, the retired
// entries' included) to the host that owns the address: the WAN pool's as
// DNS64 or CLAT, the LAN pool's as LAN legacy, whichever way the host
// learnt the device's address.
func (r *Rollup) addNAT64(live []nat64.HostStats, owners Owners, hosts map[string]series.Categories) {
	r.mu.Lock()
	defer r.mu.Unlock()
	totals := maps.Clone(r.retired)
	for _, h := range live {
		totals[h.Addr] = totals[h.Addr].add(h)
	}
	for a, t := range totals {
		k := owners.key(a)
		c := hosts[k]
		if r.ownStack[a] {
			c.NAT64DNS64 += t.wan
		} else {
			c.NAT64CLAT += t.wan
		}
		c.LANLegacy += t.lan
		hosts[k] = c
	}
}

// DNSCounts are the DNS64's query counts for the history.
func DNSCounts(s Stats) series.DNS {
	if s.DNS64 == nil {
		return series.DNS{}
	}
	return series.DNS{A: s.DNS64.ByType["A"], AAAA: s.DNS64.ByType["AAAA"], Synthesized: s.DNS64.Synthesized}
}

// Insights are the services' counters in the dashboard's terms. hosts are
// the state's hosts (for their exposed ports and addresses).
func (r *Rollup) Insights(s Stats, hosts map[string]*state.Host) web.Insights {
	ins := web.Insights{
		Firewall: map[string]web.CounterValue{},
		DHCPv4:   map[string]uint64{},
		Hosts:    map[string]web.HostInsights{},
		Metrics:  Metrics(s),
	}
	owners := OwnersOf(hosts)
	for name, c := range s.FirewallCounters {
		ins.Firewall[name] = web.CounterValue{Packets: c.Packets, Bytes: c.Bytes}
	}
	if s.Fastpath != nil {
		// The fast path's packets never meet the ruleset's counters: they
		// are native IPv6 the firewall accepted.
		c := ins.Firewall[firewall.CounterIPv6Forwarded]
		c.Packets += s.Fastpath.Packets
		c.Bytes += s.Fastpath.Bytes
		ins.Firewall[firewall.CounterIPv6Forwarded] = c
	}
	for _, mac := range slices.Sorted(maps.Keys(hosts)) {
		if ports := hosts[mac].Policy.ExposedPorts; len(ports) > 0 {
			hi := ins.Hosts[mac]
			hi.ExposedPorts = slices.Clone(ports)
			ins.Hosts[mac] = hi
		}
	}
	if s.DNS64 != nil {
		dnsInsights(*s.DNS64, owners, &ins)
	}
	if d := s.DHCP4; d != nil {
		ins.DHCPv4 = dhcp4Insights(*d)
	}
	if n := s.NAT64; n != nil {
		ins.NAT64 = web.NAT64Insights{Running: n.Enabled, ToInternet: n.ToInternet, ToLAN: n.ToLAN, Sessions: n.Sessions, Capacity: s.NAT64Capacity, Drops: map[string]uint64{}}
		for name, v := range n.Counters {
			if strings.HasPrefix(name, "translated") || name == "hairpinned" {
				ins.NAT64.Translated += v
				continue
			}
			ins.NAT64.Drops[name] = v
		}
	}
	ins.Limits = r.LimitsHit()
	for mac, c := range r.Traffic(s, owners) {
		h := ins.Hosts[mac]
		h.Traffic = c
		h.CLAT = c.NAT64CLAT > 0
		ins.Hosts[mac] = h
	}
	return ins
}

// dhcp4Insights are the DHCPv4 server's counters by their Stats names, as
// /api/insights has always shown them.
func dhcp4Insights(d dhcp4.Stats) map[string]uint64 {
	return map[string]uint64{
		"Offers": d.Offers, "Acks": d.Acks, "Naks": d.Naks,
		"Declines": d.Declines, "Releases": d.Releases, "Informs": d.Informs,
		"PoolExhausted": d.PoolExhausted, "Malformed": d.Malformed, "Ignored": d.Ignored,
		"V6OnlySent": d.V6OnlySent, "PersistErrors": d.PersistErrors, "Leases": uint64(max(d.Leases, 0)),
		"SourceMismatch": d.SourceMismatch, "Unverified": d.Unverified, "SocketDrops": d.SocketDrops,
		"RateLimited": d.RateLimitedClient + d.RateLimitedPort,
	}
}
