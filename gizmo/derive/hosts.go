package derive

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// The host table's bounds. Every plan is made from every host on every
// change, and the dashboard lists them all: a device on the LAN that
// invents MAC addresses (a Router Solicitation costs it 70 bytes) must not
// grow that work, the memory, or gizmo.json without end.
const (
	// MaxHosts bounds the hosts of this run (state.Hosts). A home has tens
	// of devices, a busy one a few hundred; a thousand leaves room for a
	// guest network's worth of phones and still keeps a plan cheap.
	MaxHosts = 1024
	// MaxRecords bounds the hosts kept across a reboot (the durable
	// records of state.Hosts and state.Remembered), for the same reasons
	// and so that gizmo.json stays a small file.
	MaxRecords = 1024
	// MaxHostAddrs bounds the addresses kept per host. RFC 8981 hosts make
	// a temporary address a day or so and HostAddrTTL keeps a day; tens
	// is plenty, and a host that makes up thousands only displaces its own.
	MaxHostAddrs = 64
	// HostIdle is how long after its last sighting a host still counts as
	// active, and is not displaced by a newcomer: longer than hosts go
	// without any Neighbor Discovery or ARP while in use (a minute or so
	// with traffic, RFC 4861 §10 REACHABLE_TIME), and than the neighbour
	// watcher's rescan.
	HostIdle = 10 * time.Minute
)

// Standing is how good a claim a host has to its place in the table. A
// newcomer displaces only a host of lower standing, so that a flood of
// sightings never pushes out a host in use, and a host the owner
// configured never goes.
type Standing int

const (
	// StandingIdle: no lease, nothing configured, not seen for HostIdle.
	StandingIdle Standing = iota
	// StandingActive: seen within HostIdle (a newcomer seen in a frame).
	StandingActive
	// StandingLeased: holds a DHCPv4 lease, which the server grants only
	// to the MAC that sent the request, at a limited rate, from a pool.
	StandingLeased
	// StandingConfigured: the owner set its policy. Never evicted.
	StandingConfigured
)

// StandingOf is h's standing at now.
func StandingOf(h *state.Host, now time.Time) Standing {
	switch {
	case h.Policy.Configured():
		return StandingConfigured
	case h.IPv4Lease.IsValid():
		return StandingLeased
	case now.Sub(h.LastSeen) < HostIdle:
		return StandingActive
	}
	return StandingIdle
}

// Evictee picks the host a newcomer of standing s displaces from a full
// table: the lowest standing below s, and among those the one seen
// longest ago (then the lowest MAC, so that the choice is the same every
// time). ok is false when every host stands at least as high as s: the
// newcomer is refused.
func Evictee(hosts map[string]*state.Host, s Standing, now time.Time) (mac string, ok bool) {
	var (
		best      *state.Host
		bestStand Standing
	)
	for _, h := range hosts {
		hs := StandingOf(h, now)
		if hs >= s {
			continue
		}
		if best == nil || hs < bestStand || hs == bestStand && cmp.Or(h.LastSeen.Compare(best.LastSeen), cmp.Compare(h.MAC, best.MAC)) < 0 {
			best, bestStand = h, hs
		}
	}
	if best == nil {
		return "", false
	}
	return best.MAC, true
}

// AddHost returns the host with this MAC, and creates it if there is
// none: from its record of an earlier run, or with the default policy. A
// full table makes room by evicting the host Evictee picks for a newcomer
// of standing s (a remembered configured host stands as configured); an
// evicted host's durable record moves to st.Remembered. nil: refused,
// counted. created reports a new entry in st.Hosts.
func AddHost(st *state.State, mac string, s Standing, now time.Time) (h *state.Host, created bool) {
	if h, ok := st.Hosts[mac]; ok {
		return h, false
	}
	r, remembered := st.Remembered[mac]
	if remembered && r.Configured() {
		s = StandingConfigured
	}
	if len(st.Hosts) >= MaxHosts {
		evict, ok := Evictee(st.Hosts, s, now)
		if !ok {
			st.HostTable.Refused++
			return nil, false
		}
		if old := st.Hosts[evict].Record(); old.Durable() {
			st.Remembered[evict] = old
		}
		delete(st.Hosts, evict)
		st.HostTable.Evicted++
	}
	h = &state.Host{MAC: mac, Addrs: map[netip.Addr]time.Time{}, Policy: state.DefaultHostPolicy(), FirstSeen: now, LastSeen: now}
	if remembered {
		h.Policy, h.Hostname, h.HostnameSince, h.FirstSeen = r.Policy, r.Hostname, r.HostnameSince, r.FirstSeen
		delete(st.Remembered, mac)
	}
	st.Hosts[mac] = h
	return h, true
}

// Sighting is one address seen in use by one MAC address.
type Sighting struct {
	MAC  string // net.HardwareAddr.String()
	Addr netip.Addr
	At   time.Time
	// FromFrame: seen in a frame whose Ethernet source is MAC. Otherwise
	// it comes from the kernel's neighbour table, which believes what ND
	// options and ARP say about other hosts.
	FromFrame bool
}

// SawHost records a sighting and reports whether it attached a new
// address to a host (the per-host plans change). Only a frame from the
// MAC attaches an address or brings a new host; a neighbour entry alone
// refreshes what frames attached (counted otherwise). A host keeps its
// MaxHostAddrs most recently seen addresses.
func SawHost(st *state.State, s Sighting, now time.Time) (attached bool) {
	if !s.Addr.IsValid() || IsOwnMAC(st, s.MAC) {
		return false // the gizmo's own port is no host
	}
	s.Addr = s.Addr.Unmap().WithZone("")
	h := st.Hosts[s.MAC]
	if !s.FromFrame {
		if h == nil {
			st.HostTable.Unproven++
			return false
		}
		if _, ok := h.Addrs[s.Addr]; !ok {
			st.HostTable.Unproven++
			return false
		}
	}
	if h == nil {
		var created bool
		if h, created = AddHost(st, s.MAC, StandingActive, now); h == nil {
			return false
		}
		if created && !h.FirstSeen.Before(now) {
			h.FirstSeen, h.LastSeen = s.At, s.At
		}
	}
	if s.At.After(h.LastSeen) {
		h.LastSeen = s.At
	}
	if _, known := h.Addrs[s.Addr]; known {
		if s.At.After(h.Addrs[s.Addr]) {
			h.Addrs[s.Addr] = s.At
		}
		return false
	}
	if len(h.Addrs) >= MaxHostAddrs {
		oldest := slices.MinFunc(slices.Collect(maps.Keys(h.Addrs)), func(a, b netip.Addr) int {
			return cmp.Or(h.Addrs[a].Compare(h.Addrs[b]), a.Compare(b))
		})
		delete(h.Addrs, oldest)
		st.HostTable.AddrsEvicted++
	}
	h.Addrs[s.Addr] = s.At
	return true
}

// BoundRecords keeps the durable records (those of st.Hosts and every
// remembered one) within MaxRecords by forgetting remembered hosts the
// owner did not configure, the one seen longest ago first. It reports how
// many it forgot. Configured hosts are never forgotten; the owner's edits
// are refused before they exceed the bound (CanConfigure).
func BoundRecords(st *state.State) int {
	n := len(st.Remembered)
	for _, h := range st.Hosts {
		if h.Record().Durable() {
			n++
		}
	}
	if n <= MaxRecords {
		return 0
	}
	var victims []string
	for mac, r := range st.Remembered {
		if !r.Configured() {
			victims = append(victims, mac)
		}
	}
	slices.SortFunc(victims, func(a, b string) int {
		ra, rb := st.Remembered[a], st.Remembered[b]
		return cmp.Or(cmp.Or(ra.LastSeen, ra.FirstSeen).Compare(cmp.Or(rb.LastSeen, rb.FirstSeen)), cmp.Compare(a, b))
	})
	dropped := min(n-MaxRecords, len(victims))
	for _, mac := range victims[:dropped] {
		delete(st.Remembered, mac)
	}
	st.HostTable.RecordsDropped += uint64(dropped)
	return dropped
}

// CanConfigure reports whether the owner may configure the host with this
// MAC: always if it is configured already, else while fewer than
// MaxRecords hosts are.
func CanConfigure(st *state.State, mac string) bool {
	if h, ok := st.Hosts[mac]; ok && h.Policy.Configured() {
		return true
	}
	if r, ok := st.Remembered[mac]; ok && r.Configured() {
		return true
	}
	n := 0
	for _, h := range st.Hosts {
		if h.Policy.Configured() {
			n++
		}
	}
	for _, r := range st.Remembered {
		if r.Configured() {
			n++
		}
	}
	return n < MaxRecords
}
