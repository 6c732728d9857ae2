package wan

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
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

// raError is a rejected RA, or a rejected option within an accepted RA.
type raError struct{ reason, detail string }

func (e *raError) Error() string { return "router advertisement: " + e.reason + ": " + e.detail }

// parseRA decodes and validates an RA received from src with the given IP
// hop limit (RFC 4861 §6.1.2): link-local source, hop limit 255, well-formed
// ICMPv6 and options. hopLimit < 0 means unknown (no control message).
func parseRA(b []byte, src netip.Addr, hopLimit int) (*ndp.RouterAdvertisement, error) {
	if !src.Is6() || !src.IsLinkLocalUnicast() {
		return nil, &raError{raSourceNotLL, src.String()}
	}
	if hopLimit >= 0 && hopLimit != ndp.HopLimit {
		return nil, &raError{raHopLimit, fmt.Sprint(hopLimit)}
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		return nil, &raError{raMalformed, err.Error()}
	}
	ra, ok := m.(*ndp.RouterAdvertisement)
	if !ok {
		return nil, &raError{raNotRA, fmt.Sprintf("%T", m)}
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
	lifetimeUntil  time.Time
	pref           ndp.Preference
	managed, other bool
	mtu            int
	lastSeen       time.Time
}

// upstream accumulates RAs. RFC 4861 §6.3.4: each option updates its own
// entry with its own lifetime; an RA that omits an option does not remove
// what an earlier RA said.
type upstream struct {
	linkMTU  int
	routers  map[netip.Addr]*routerInfo
	prefixes map[netip.Prefix]Prefix
	rdnss    map[netip.Addr]time.Time
	routes   map[netip.Prefix]Route
	pref64   netip.Prefix
	p64Until time.Time
}

func newUpstream() *upstream {
	return &upstream{
		routers:  map[netip.Addr]*routerInfo{},
		prefixes: map[netip.Prefix]Prefix{},
		rdnss:    map[netip.Addr]time.Time{},
		routes:   map[netip.Prefix]Route{},
	}
}

func until(now time.Time, d time.Duration) time.Time {
	// RFC 4861 §4.6.2: all ones is infinity; ndp reports it as
	// ndp.Infinity.
	if d == ndp.Infinity {
		return farFuture
	}
	return now.Add(d)
}

var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// apply merges a validated RA from src received at now. It returns the
// options it skipped as invalid; the rest of the RA still applies (RFC 4861
// §6.3.4: invalid options are ignored, not the whole message).
func (u *upstream) apply(ra *ndp.RouterAdvertisement, src netip.Addr, now time.Time) []error {
	var skipped []error
	r := u.routers[src]
	if r == nil {
		r = &routerInfo{}
		u.routers[src] = r
	}
	r.lifetimeUntil = now.Add(ra.RouterLifetime)
	r.pref = ra.RouterSelectionPreference
	r.managed, r.other = ra.ManagedConfiguration, ra.OtherConfiguration
	r.lastSeen = now
	r.mtu = 0
	for _, o := range ra.Options {
		switch o := o.(type) {
		case *ndp.MTU:
			// §6.3.4: accept only a value between the IPv6 minimum and
			// the link's own MTU.
			if o.MTU < 1280 || (u.linkMTU > 0 && int(o.MTU) > u.linkMTU) {
				skipped = append(skipped, &raError{raBadMTU, fmt.Sprint(o.MTU)})
				continue
			}
			r.mtu = int(o.MTU)
		case *ndp.PrefixInformation:
			if o.PrefixLength > 128 || !o.Prefix.Is6() {
				skipped = append(skipped, &raError{raBadPIO, o.Prefix.String()})
				continue
			}
			p := netip.PrefixFrom(o.Prefix, int(o.PrefixLength)).Masked()
			// §6.3.4 / RFC 4862 §5.5.3: ignore link-local prefixes and
			// preferred > valid.
			if p.Addr().IsLinkLocalUnicast() {
				skipped = append(skipped, &raError{raLinkLocalPIO, p.String()})
				continue
			}
			if o.PreferredLifetime > o.ValidLifetime {
				skipped = append(skipped, &raError{raBadPIO, p.String() + ": preferred > valid"})
				continue
			}
			if o.ValidLifetime == 0 {
				delete(u.prefixes, p)
				continue
			}
			u.prefixes[p] = Prefix{
				Prefix: p, OnLink: o.OnLink, Autonomous: o.AutonomousAddressConfiguration,
				PreferredUntil: until(now, o.PreferredLifetime), ValidUntil: until(now, o.ValidLifetime),
			}
		case *ndp.RecursiveDNSServer:
			for _, s := range o.Servers {
				if !s.Is6() || s.IsUnspecified() || s.IsMulticast() || s.IsLoopback() {
					skipped = append(skipped, &raError{raBadRDNSS, s.String()})
					continue
				}
				// RFC 8106 §5.1: lifetime 0 removes the server.
				if o.Lifetime == 0 {
					delete(u.rdnss, s)
					continue
				}
				u.rdnss[s] = until(now, o.Lifetime)
			}
		case *ndp.RouteInformation:
			if o.PrefixLength > 128 || !o.Prefix.Is6() || o.Preference == 2 {
				// RFC 4191 §2.3: the reserved preference (10) means
				// ignore the option.
				skipped = append(skipped, &raError{raBadRoute, o.Prefix.String()})
				continue
			}
			p := netip.PrefixFrom(o.Prefix, int(o.PrefixLength)).Masked()
			if o.RouteLifetime == 0 {
				delete(u.routes, p)
				continue
			}
			u.routes[p] = Route{Prefix: p, Preference: prefInt(o.Preference), ValidUntil: until(now, o.RouteLifetime)}
		case *ndp.PREF64:
			// RFC 8781 §4: prefix lengths 32, 40, 48, 56, 64 or 96.
			switch o.Prefix.Bits() {
			case 32, 40, 48, 56, 64, 96:
			default:
				skipped = append(skipped, &raError{raBadPref64, o.Prefix.String()})
				continue
			}
			if o.Lifetime == 0 {
				if o.Prefix.Masked() == u.pref64 {
					u.pref64, u.p64Until = netip.Prefix{}, time.Time{}
				}
				continue
			}
			u.pref64, u.p64Until = o.Prefix.Masked(), now.Add(o.Lifetime)
		}
	}
	return skipped
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
	for p, x := range u.prefixes {
		if !now.Before(x.ValidUntil) {
			delete(u.prefixes, p)
		}
	}
	for s, t := range u.rdnss {
		if !now.Before(t) {
			delete(u.rdnss, s)
		}
	}
	for p, r := range u.routes {
		if !now.Before(r.ValidUntil) {
			delete(u.routes, p)
		}
	}
	if u.pref64.IsValid() && !now.Before(u.p64Until) {
		u.pref64, u.p64Until = netip.Prefix{}, time.Time{}
	}
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
		m(x)
	}
	for _, x := range u.routes {
		m(x.ValidUntil)
	}
	if u.pref64.IsValid() {
		m(u.p64Until)
	}
	return t
}

// fill writes the RA-derived part of Upstream as of now.
func (u *upstream) fill(out *Upstream, now time.Time) {
	out.MTU = u.linkMTU
	out.Router, out.RouterLifetimeUntil, out.RouterPreference = netip.Addr{}, time.Time{}, 0
	out.Managed, out.Other = false, false
	var best *routerInfo
	var bestAddr netip.Addr
	for a, r := range u.routers {
		if !now.Before(r.lifetimeUntil) {
			continue
		}
		// RFC 4191 §3.2: prefer higher preference; among equals, the one
		// heard from most recently.
		if best == nil || prefInt(r.pref) > prefInt(best.pref) ||
			(prefInt(r.pref) == prefInt(best.pref) && (r.lastSeen.After(best.lastSeen) || (r.lastSeen.Equal(best.lastSeen) && a.Less(bestAddr)))) {
			best, bestAddr = r, a
		}
	}
	if best == nil {
		// No default router: still report flags and MTU of the most
		// recent RA.
		for a, r := range u.routers {
			if best == nil || r.lastSeen.After(best.lastSeen) || (r.lastSeen.Equal(best.lastSeen) && a.Less(bestAddr)) {
				best, bestAddr = r, a
			}
		}
		if best != nil {
			out.Managed, out.Other = best.managed, best.other
			if best.mtu > 0 {
				out.MTU = best.mtu
			}
		}
	} else {
		out.Router, out.RouterLifetimeUntil, out.RouterPreference = bestAddr, best.lifetimeUntil, prefInt(best.pref)
		out.Managed, out.Other = best.managed, best.other
		if best.mtu > 0 {
			out.MTU = best.mtu
		}
	}
	out.Prefixes = out.Prefixes[:0]
	for _, p := range u.prefixes {
		if now.Before(p.ValidUntil) {
			out.Prefixes = append(out.Prefixes, p)
		}
	}
	slices.SortFunc(out.Prefixes, func(a, b Prefix) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	out.RDNSS = out.RDNSS[:0]
	for s, t := range u.rdnss {
		if now.Before(t) {
			out.RDNSS = append(out.RDNSS, s)
		}
	}
	slices.SortFunc(out.RDNSS, netip.Addr.Compare)
	out.Routes = out.Routes[:0]
	for _, r := range u.routes {
		if now.Before(r.ValidUntil) {
			out.Routes = append(out.Routes, r)
		}
	}
	slices.SortFunc(out.Routes, func(a, b Route) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	out.Pref64, out.Pref64Until = netip.Prefix{}, time.Time{}
	if u.pref64.IsValid() && now.Before(u.p64Until) {
		out.Pref64, out.Pref64Until = u.pref64, u.p64Until
	}
}

// reasonOf returns the Stats label of an RA error.
func reasonOf(err error) string {
	var re *raError
	if errors.As(err, &re) {
		return re.reason
	}
	return "other"
}
