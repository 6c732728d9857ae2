package wan

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mdlayher/ndp"
)

// Upstream is what the gizmo has learned about its uplink: the link, the
// kernel's addresses on it, and the upstream router's advertisements. All
// deadlines are absolute; expired entries are left out.
type Upstream struct {
	Interface string
	Up        bool
	// MTU is the RA's MTU option when it is acceptable, else the link MTU
	// (RFC 4861 §6.3.4).
	MTU int
	// Addrs are the global IPv6 addresses on the uplink, SLAAC included,
	// without tentative or duplicate ones.
	Addrs []netip.Prefix

	// Router is the default router: the link-local source of the best RA
	// with a non-zero router lifetime (RFC 4861 §6.3.4, RFC 4191 §2.2
	// preference first). Invalid when there is none.
	Router              netip.Addr
	RouterLifetimeUntil time.Time
	RouterPreference    int // -1 low, 0 medium, 1 high
	// Managed and Other are the RA's M and O flags (RFC 4861 §4.2).
	Managed, Other bool

	Prefixes []Prefix
	RDNSS    []netip.Addr
	// Pref64 is the upstream's NAT64 prefix from RFC 8781, if advertised.
	Pref64      netip.Prefix
	Pref64Until time.Time
	// Routes are the Route Information Options (RFC 4191 §2.3).
	Routes []Route
}

// Prefix is one Prefix Information Option (RFC 4861 §4.6.2).
type Prefix struct {
	Prefix         netip.Prefix
	OnLink         bool
	Autonomous     bool
	PreferredUntil time.Time
	ValidUntil     time.Time
}

// Route is one Route Information Option (RFC 4191 §2.3) with an absolute
// deadline.
type Route struct {
	Prefix     netip.Prefix
	Preference int // -1 low, 0 medium, 1 high
	ValidUntil time.Time
}

// RA validation failures (RFC 4861 §6.1.2), the labels of Stats.InvalidRAs.
const (
	raMalformed    = "malformed"
	raNotRA        = "not-router-advertisement"
	raSourceNotLL  = "source-not-link-local"
	raHopLimit     = "hop-limit-not-255"
	raBadPIO       = "bad-prefix-information"
	raBadRDNSS     = "bad-rdnss"
	raBadRoute     = "bad-route-information"
	raBadMTU       = "bad-mtu"
	raBadPref64    = "bad-pref64"
	raLinkLocalPIO = "link-local-prefix-information"
	raOwn          = "own-router-advertisement"
)

// rejection is an upstream message the WAN refused, or an option it
// refused within an accepted one, with the reason it is counted under.
type rejection struct{ what, reason, detail string }

func (e *rejection) Error() string { return e.what + ": " + e.reason + ": " + e.detail }

// raRejected is a rejected RA, or a rejected option within an accepted RA.
func raRejected(reason, detail string) error {
	return &rejection{"router advertisement", reason, detail}
}

// parseRA decodes and validates an RA received from src with the given IP
// hop limit (RFC 4861 §6.1.2): link-local source, hop limit 255, well-formed
// ICMPv6 and options. hopLimit < 0 means unknown (no control message).
func parseRA(b []byte, src netip.Addr, hopLimit int) (*ndp.RouterAdvertisement, error) {
	if !src.Is6() || !src.IsLinkLocalUnicast() {
		return nil, raRejected(raSourceNotLL, src.String())
	}
	if hopLimit >= 0 && hopLimit != ndp.HopLimit {
		return nil, raRejected(raHopLimit, fmt.Sprint(hopLimit))
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		return nil, raRejected(raMalformed, err.Error())
	}
	ra, ok := m.(*ndp.RouterAdvertisement)
	if !ok {
		return nil, raRejected(raNotRA, fmt.Sprintf("%T", m))
	}
	return ra, nil
}

// fromSelf reports whether ra is the gizmo's own, sent from the interface
// whose link-layer address is own: with one port on an existing network the
// gizmo's RA service advertises on the WAN interface, and the kernel loops
// its multicast RAs back to this socket. Its PREF64, RDNSS and routes are
// no upstream's. Like the kernel (which drops RAs from its own addresses),
// it recognises them by what they carry: the Source Link-Layer Address
// option the RA service always sends.
func fromSelf(ra *ndp.RouterAdvertisement, own net.HardwareAddr) bool {
	for _, o := range ra.Options {
		if ll, ok := o.(*ndp.LinkLayerAddress); ok && ll.Direction == ndp.Source && len(own) > 0 && bytes.Equal(ll.Addr, own) {
			return true
		}
	}
	return false
}

// routerInfo is what one upstream router last said about itself.
type routerInfo struct {
	addr           netip.Addr
	lifetimeUntil  time.Time
	pref           ndp.Preference
	managed, other bool
	mtu            int
	firstSeen      time.Time
	lastSeen       time.Time
}

// prefixEntry is a PIO with the router that announced it.
type prefixEntry struct {
	Prefix
	from netip.Addr
}

// routeEntry is a RIO with the router that announced it.
type routeEntry struct {
	Route
	from netip.Addr
}

// timedEntry is an RDNSS or PREF64 entry: when it ends, who announced it
// and when it was last announced.
type timedEntry struct {
	until, heard time.Time
	from         netip.Addr
}

// upstream accumulates RAs. RFC 4861 §6.3.4: each option updates its own
// entry with its own lifetime; an RA that omits an option does not remove
// what an earlier RA said. Every table is bounded (bounds.go).
type upstream struct {
	linkMTU  int
	routers  map[netip.Addr]*routerInfo
	prefixes map[netip.Prefix]prefixEntry
	rdnss    map[netip.Addr]timedEntry
	routes   map[netip.Prefix]routeEntry
	pref64s  map[netip.Prefix]timedEntry
	// chosen is the default router (selectRouter); invalid when none.
	chosen netip.Addr

	// full counts entries evicted or refused because a table was full,
	// clamped lifetimes longer than MaxOptionLifetime, both by table.
	full, clamped map[string]uint64
}

func newUpstream() *upstream {
	return &upstream{
		routers:  map[netip.Addr]*routerInfo{},
		prefixes: map[netip.Prefix]prefixEntry{},
		rdnss:    map[netip.Addr]timedEntry{},
		routes:   map[netip.Prefix]routeEntry{},
		pref64s:  map[netip.Prefix]timedEntry{},
		full:     map[string]uint64{},
		clamped:  map[string]uint64{},
	}
}

// until is now plus an option's lifetime, clamped to MaxOptionLifetime
// (infinity, RFC 4861 §4.6.2, included) and counted for table.
func (u *upstream) until(table string, now time.Time, d time.Duration) time.Time {
	d, clamped := clampLifetime(d)
	if clamped {
		u.clamped[table]++
	}
	return now.Add(d)
}

// room makes room for key in one of the tables, counting when it was full.
func room[K comparable, V sourced](u *upstream, table string, m map[K]V, key K, from netip.Addr, limit int) bool {
	ok, full := admit(m, key, from, u.chosen, limit)
	if full {
		u.full[table]++
	}
	return ok
}

// apply merges a validated RA from src received at now. It returns the
// options it skipped as invalid; the rest of the RA still applies (RFC 4861
// §6.3.4: invalid options are ignored, not the whole message).
func (u *upstream) apply(ra *ndp.RouterAdvertisement, src netip.Addr, now time.Time) []error {
	var skipped []error
	r := u.routers[src]
	if r == nil {
		r = &routerInfo{addr: src, firstSeen: now}
		if room(u, tableRouters, u.routers, src, src, MaxRouters) {
			u.routers[src] = r
		}
	}
	r.lifetimeUntil = now.Add(ra.RouterLifetime) // 16 bits: at most 65535 s
	r.pref = ra.RouterSelectionPreference
	r.managed, r.other = ra.ManagedConfiguration, ra.OtherConfiguration
	r.lastSeen = now
	r.mtu = 0
	// The RA may make src the default router: its options then count as
	// the chosen router's.
	u.selectRouter(now)
	for _, o := range ra.Options {
		if err := u.option(o, src, now); err != nil {
			skipped = append(skipped, err)
		}
	}
	return skipped
}

// option merges one option of an RA from src into its table.
func (u *upstream) option(o ndp.Option, src netip.Addr, now time.Time) error {
	switch o := o.(type) {
	case *ndp.MTU:
		// §6.3.4: accept only a value between the IPv6 minimum and the
		// link's own MTU.
		if o.MTU < 1280 || (u.linkMTU > 0 && int(o.MTU) > u.linkMTU) {
			return raRejected(raBadMTU, fmt.Sprint(o.MTU))
		}
		if r := u.routers[src]; r != nil {
			r.mtu = int(o.MTU)
		}
	case *ndp.PrefixInformation:
		if o.PrefixLength > 128 || !o.Prefix.Is6() {
			return raRejected(raBadPIO, o.Prefix.String())
		}
		p := netip.PrefixFrom(o.Prefix, int(o.PrefixLength)).Masked()
		// §6.3.4 / RFC 4862 §5.5.3: ignore link-local prefixes and
		// preferred > valid.
		if p.Addr().IsLinkLocalUnicast() {
			return raRejected(raLinkLocalPIO, p.String())
		}
		if o.PreferredLifetime > o.ValidLifetime {
			return raRejected(raBadPIO, p.String()+": preferred > valid")
		}
		if o.ValidLifetime == 0 {
			delete(u.prefixes, p)
			return nil
		}
		if room(u, tablePrefixes, u.prefixes, p, src, MaxPrefixes) {
			valid := u.until(tablePrefixes, now, o.ValidLifetime)
			preferred := now.Add(min(o.PreferredLifetime, MaxOptionLifetime))
			u.prefixes[p] = prefixEntry{Prefix: Prefix{
				Prefix: p, OnLink: o.OnLink, Autonomous: o.AutonomousAddressConfiguration,
				PreferredUntil: preferred, ValidUntil: valid,
			}, from: src}
		}
	case *ndp.RecursiveDNSServer:
		var bad []string
		for _, s := range o.Servers {
			if !s.Is6() || s.IsUnspecified() || s.IsMulticast() || s.IsLoopback() {
				bad = append(bad, s.String())
				continue
			}
			// RFC 8106 §5.1: lifetime 0 removes the server.
			if o.Lifetime == 0 {
				delete(u.rdnss, s)
				continue
			}
			if room(u, tableRDNSS, u.rdnss, s, src, MaxRDNSS) {
				u.rdnss[s] = timedEntry{until: u.until(tableRDNSS, now, o.Lifetime), heard: now, from: src}
			}
		}
		if len(bad) > 0 {
			return raRejected(raBadRDNSS, strings.Join(bad, " "))
		}
	case *ndp.RouteInformation:
		if o.PrefixLength > 128 || !o.Prefix.Is6() || o.Preference == 2 {
			// RFC 4191 §2.3: the reserved preference (10) means ignore
			// the option.
			return raRejected(raBadRoute, o.Prefix.String())
		}
		p := netip.PrefixFrom(o.Prefix, int(o.PrefixLength)).Masked()
		if o.RouteLifetime == 0 {
			delete(u.routes, p)
			return nil
		}
		if room(u, tableRoutes, u.routes, p, src, MaxRoutes) {
			u.routes[p] = routeEntry{Route: Route{Prefix: p, Preference: prefInt(o.Preference),
				ValidUntil: u.until(tableRoutes, now, o.RouteLifetime)}, from: src}
		}
	case *ndp.PREF64:
		// RFC 8781 §4: prefix lengths 32, 40, 48, 56, 64 or 96.
		switch o.Prefix.Bits() {
		case 32, 40, 48, 56, 64, 96:
		default:
			return raRejected(raBadPref64, o.Prefix.String())
		}
		p := o.Prefix.Masked()
		if o.Lifetime == 0 {
			delete(u.pref64s, p)
			return nil
		}
		if room(u, tablePref64, u.pref64s, p, src, MaxPref64) {
			u.pref64s[p] = timedEntry{until: u.until(tablePref64, now, o.Lifetime), heard: now, from: src}
		}
	}
	return nil
}

func prefInt(p ndp.Preference) int {
	switch p {
	case ndp.High:
		return 1
	case ndp.Low:
		return -1
	}
	return 0
}

// expire drops everything whose lifetime ended by now.
func (u *upstream) expire(now time.Time) {
	for a, r := range u.routers {
		// A router with lifetime 0 still counts for its other options
		// until we have not heard from it for a long time.
		if !now.Before(r.lifetimeUntil) && now.Sub(r.lastSeen) > staleRouter {
			delete(u.routers, a)
		}
	}
	maps.DeleteFunc(u.prefixes, func(_ netip.Prefix, x prefixEntry) bool { return !now.Before(x.ValidUntil) })
	maps.DeleteFunc(u.rdnss, func(_ netip.Addr, e timedEntry) bool { return !now.Before(e.until) })
	maps.DeleteFunc(u.routes, func(_ netip.Prefix, r routeEntry) bool { return !now.Before(r.ValidUntil) })
	maps.DeleteFunc(u.pref64s, func(_ netip.Prefix, e timedEntry) bool { return !now.Before(e.until) })
	u.selectRouter(now)
}

// staleRouter is how long a router that is not a default router is
// remembered after its last RA (MaxRtrAdvInterval is at most 1800 s, RFC
// 4861 §6.2.1, so three missed RAs).
const staleRouter = 3 * 1800 * time.Second

// nextExpiry returns the earliest lifetime end after now, or farFuture.
// Ends already past (a router with lifetime 0, a deprecated prefix) do not
// count, or the caller would wake up in a loop.
func (u *upstream) nextExpiry(now time.Time) time.Time {
	t := farFuture
	m := func(x time.Time) {
		if x.After(now) && x.Before(t) {
			t = x
		}
	}
	for _, r := range u.routers {
		m(r.lifetimeUntil)
		// When a router that is not a default router is forgotten.
		m(r.lastSeen.Add(staleRouter))
	}
	for _, x := range u.prefixes {
		m(x.PreferredUntil)
		m(x.ValidUntil)
	}
	for _, x := range u.rdnss {
		m(x.until)
	}
	for _, x := range u.routes {
		m(x.ValidUntil)
	}
	for _, x := range u.pref64s {
		m(x.until)
	}
	return t
}

// farFuture stands for "no deadline".
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// fill writes the RA-derived part of Upstream as of now. What the chosen
// default router announced comes first (RDNSS) or wins (PREF64, MTU,
// flags); other routers' options follow.
func (u *upstream) fill(out *Upstream, now time.Time) {
	out.MTU = u.linkMTU
	out.Router, out.RouterLifetimeUntil, out.RouterPreference = netip.Addr{}, time.Time{}, 0
	out.Managed, out.Other = false, false
	best := u.routers[u.chosen]
	if best != nil && now.Before(best.lifetimeUntil) {
		out.Router, out.RouterLifetimeUntil, out.RouterPreference = u.chosen, best.lifetimeUntil, prefInt(best.pref)
	} else {
		// No default router: still report flags and MTU of the most
		// recent RA.
		best = nil
		var bestAddr netip.Addr
		for a, r := range u.routers {
			if best == nil || r.lastSeen.After(best.lastSeen) || (r.lastSeen.Equal(best.lastSeen) && a.Less(bestAddr)) {
				best, bestAddr = r, a
			}
		}
	}
	if best != nil {
		out.Managed, out.Other = best.managed, best.other
		if best.mtu > 0 {
			out.MTU = best.mtu
		}
	}
	out.Prefixes = out.Prefixes[:0]
	for _, p := range u.prefixes {
		if now.Before(p.ValidUntil) {
			out.Prefixes = append(out.Prefixes, p.Prefix)
		}
	}
	slices.SortFunc(out.Prefixes, func(a, b Prefix) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	out.RDNSS = out.RDNSS[:0]
	for s, e := range u.rdnss {
		if now.Before(e.until) {
			out.RDNSS = append(out.RDNSS, s)
		}
	}
	// The chosen router's resolvers first: the daemon forwards to them in
	// this order.
	fromChosen := func(a netip.Addr) int {
		if u.chosen.IsValid() && u.rdnss[a].from == u.chosen {
			return 0
		}
		return 1
	}
	slices.SortFunc(out.RDNSS, func(a, b netip.Addr) int {
		return cmp.Or(cmp.Compare(fromChosen(a), fromChosen(b)), a.Compare(b))
	})
	out.Routes = out.Routes[:0]
	for _, r := range u.routes {
		if now.Before(r.ValidUntil) {
			out.Routes = append(out.Routes, r.Route)
		}
	}
	slices.SortFunc(out.Routes, func(a, b Route) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	out.Pref64, out.Pref64Until = u.pref64(now)
}

// pref64 is the NAT64 prefix in use: the chosen default router's newest,
// else the newest any router announced (a PREF64-only announcer with router
// lifetime 0 is a valid source, RFC 8781 §4).
func (u *upstream) pref64(now time.Time) (netip.Prefix, time.Time) {
	var best netip.Prefix
	var be timedEntry
	rank := func(e timedEntry) int {
		if u.chosen.IsValid() && e.from == u.chosen {
			return 1
		}
		return 0
	}
	for p, e := range u.pref64s {
		if !now.Before(e.until) {
			continue
		}
		if !best.IsValid() || rank(e) > rank(be) || rank(e) == rank(be) && (e.heard.After(be.heard) ||
			e.heard.Equal(be.heard) && p.Addr().Less(best.Addr())) {
			best, be = p, e
		}
	}
	if !best.IsValid() {
		return netip.Prefix{}, time.Time{}
	}
	return best, be.until
}

// sizes are the tables' entry counts, for Stats.
func (u *upstream) sizes() map[string]int {
	return map[string]int{
		tableRouters: len(u.routers), tablePrefixes: len(u.prefixes), tableRDNSS: len(u.rdnss),
		tableRoutes: len(u.routes), tablePref64: len(u.pref64s),
	}
}

// reasonOf returns the Stats label of a rejection, "other" for any other
// error.
func reasonOf(err error) string {
	var re *rejection
	if errors.As(err, &re) {
		return re.reason
	}
	return "other"
}
