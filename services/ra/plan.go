package ra

import (
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/mdlayher/ndp"
)

// Plan is what the service advertises. It is a plain value: the daemon
// computes it from its state (gizmo/plan.RA) and hands it over with Update.
// Prefix lifetimes are absolute deadlines, so that the lifetimes in every RA
// are computed when it is sent and never exceed what is left of the DHCPv6
// lease behind them (RFC 9096 §3.4, RFC 8415 §21.22).
type Plan struct {
	// MaxInterval is MaxRtrAdvInterval (RFC 4861 §6.2.1). It is clamped to
	// 4 s–1800 s; zero means the default of 600 s.
	MaxInterval time.Duration

	// RouterLifetime is 0 when the gizmo must not be a default router
	// (RFC 4861 §4.2, RFC 7084 G-4).
	RouterLifetime time.Duration
	// RouterPreference is the Default Router Preference (RFC 4191 §2.2).
	RouterPreference Preference
	// HopLimit is the Cur Hop Limit hosts should use; 0 leaves it unspecified.
	HopLimit uint8
	// Managed and Other are the M and O flags (RFC 4861 §4.2).
	Managed, Other bool

	Prefixes []Prefix
	Routes   []Route

	// RDNSS are the recursive DNS servers (RFC 8106 §5.1).
	RDNSS         []netip.Addr
	RDNSSLifetime time.Duration
	// DNSSL is the DNS search list (RFC 8106 §5.2).
	DNSSL         []string
	DNSSLLifetime time.Duration

	// Pref64 is the NAT64 prefix (RFC 8781); not advertised when invalid.
	Pref64         netip.Prefix
	Pref64Lifetime time.Duration

	// RDNSSWithdrawn and Pref64Withdrawn are DNS servers and NAT64
	// prefixes advertised before and no longer in use: they are sent with
	// lifetime 0, which tells hosts to stop using them at once
	// (RFC 8106 §5.1, RFC 8781 §4) rather than when their last lifetime
	// runs out.
	RDNSSWithdrawn  []netip.Addr
	Pref64Withdrawn []netip.Prefix

	// WithdrawOnStop makes the final RA on shutdown withdraw everything
	// it advertised: every prefix, route, DNS option and PREF64 with
	// lifetime 0, besides router lifetime 0. It is for a gizmo whose
	// prefixes and routes reach nothing once it stops (an on-link prefix
	// that only it answers for: RFC 4861 §6.3.4 drops a prefix with valid
	// lifetime 0 at once). Without it the final RA keeps them, so that
	// hosts keep their addresses across a restart.
	WithdrawOnStop bool

	// MTU is advertised when it is at least the IPv6 minimum of 1280.
	MTU int
	// SourceLinkLayer is the LAN interface's MAC; when nil the service uses
	// the interface's own.
	SourceLinkLayer net.HardwareAddr
}

// Preference is a router or route preference (RFC 4191 §2.1).
type Preference int

// Preference values; the zero value is Medium.
const (
	Low    Preference = -1
	Medium Preference = 0
	High   Preference = 1
)

func (p Preference) ndp() ndp.Preference {
	switch p {
	case Low:
		return ndp.Low
	case High:
		return ndp.High
	}
	return ndp.Medium
}

// Prefix is one Prefix Information Option (RFC 4861 §4.6.2). The lifetimes
// sent are min(Max*, *Until − now), never below zero; a zero *Until means no
// deadline, so Max* alone applies.
type Prefix struct {
	Prefix     netip.Prefix
	OnLink     bool
	Autonomous bool

	PreferredUntil time.Time
	ValidUntil     time.Time
	MaxPreferred   time.Duration
	MaxValid       time.Duration
}

// Lifetimes returns the preferred and valid lifetimes to send at now. The
// preferred lifetime never exceeds the valid one (RFC 4862 §5.5.3 c: hosts
// ignore such a PIO).
func (p Prefix) Lifetimes(now time.Time) (preferred, valid time.Duration) {
	valid = remaining(p.MaxValid, p.ValidUntil, now)
	preferred = min(remaining(p.MaxPreferred, p.PreferredUntil, now), valid)
	return preferred, valid
}

func remaining(limit time.Duration, until time.Time, now time.Time) time.Duration {
	d := limit
	if !until.IsZero() {
		d = min(d, until.Sub(now))
	}
	// Whole seconds: the wire format counts seconds, and rounding down keeps
	// the advertised lifetime inside the deadline.
	return max(d, 0).Truncate(time.Second)
}

// Route is one Route Information Option (RFC 4191 §2.3).
type Route struct {
	Prefix     netip.Prefix
	Preference Preference
	Lifetime   time.Duration
}

// Default timing (RFC 4861 §6.2.1, §10).
const (
	DefaultMaxInterval = 600 * time.Second
	minMaxInterval     = 4 * time.Second
	maxMaxInterval     = 1800 * time.Second
)

// Interval returns MaxRtrAdvInterval, defaulted and clamped to the range
// RFC 4861 §6.2.1 allows.
func (p Plan) Interval() time.Duration {
	if p.MaxInterval == 0 {
		return DefaultMaxInterval
	}
	return min(max(p.MaxInterval, minMaxInterval), maxMaxInterval)
}

// maxPref64Lifetime is the largest lifetime the 13-bit Scaled Lifetime field
// (units of 8 s) can carry (RFC 8781 §4).
const maxPref64Lifetime = 8191 * 8 * time.Second

// maxRouterLifetime is the Router Lifetime field's maximum (RFC 8319 §4
// raised RFC 4861's 9000 s to the 16-bit limit).
const maxRouterLifetime = 65535 * time.Second

// Message is the Router Advertisement to send at now. Entries that cannot be
// encoded (an IPv4 prefix, a PREF64 of a length RFC 8781 does not allow) are
// left out rather than failing the whole RA.
func (p Plan) Message(now time.Time) *ndp.RouterAdvertisement {
	ra := &ndp.RouterAdvertisement{
		CurrentHopLimit:           p.HopLimit,
		ManagedConfiguration:      p.Managed,
		OtherConfiguration:        p.Other,
		RouterSelectionPreference: p.RouterPreference.ndp(),
		RouterLifetime:            min(max(p.RouterLifetime, 0), maxRouterLifetime).Truncate(time.Second),
	}
	// RFC 4191 §2.2: a router that is not a default router sets the
	// preference to 0 (medium).
	if ra.RouterLifetime == 0 {
		ra.RouterSelectionPreference = ndp.Medium
	}
	if len(p.SourceLinkLayer) > 0 {
		ra.Options = append(ra.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: p.SourceLinkLayer})
	}
	if p.MTU >= 1280 {
		ra.Options = append(ra.Options, ndp.NewMTU(uint32(p.MTU)))
	}
	for _, pfx := range p.Prefixes {
		if !pfx.Prefix.IsValid() || !pfx.Prefix.Addr().Is6() || pfx.Prefix.Addr().Is4In6() {
			continue
		}
		preferred, valid := pfx.Lifetimes(now)
		ra.Options = append(ra.Options, &ndp.PrefixInformation{
			PrefixLength:                   uint8(pfx.Prefix.Bits()),
			OnLink:                         pfx.OnLink,
			AutonomousAddressConfiguration: pfx.Autonomous,
			PreferredLifetime:              preferred,
			ValidLifetime:                  valid,
			Prefix:                         pfx.Prefix.Masked().Addr(),
		})
	}
	for _, r := range p.Routes {
		if !r.Prefix.IsValid() || !r.Prefix.Addr().Is6() {
			continue
		}
		ra.Options = append(ra.Options, &ndp.RouteInformation{
			PrefixLength:  uint8(r.Prefix.Bits()),
			Preference:    r.Preference.ndp(),
			RouteLifetime: clampSeconds(r.Lifetime),
			Prefix:        r.Prefix.Masked().Addr(),
		})
	}
	var rdnss []netip.Addr
	for _, a := range p.RDNSS {
		if a.Is6() && !a.Is4In6() {
			rdnss = append(rdnss, a.WithZone(""))
		}
	}
	if len(rdnss) > 0 {
		ra.Options = append(ra.Options, &ndp.RecursiveDNSServer{Lifetime: clampSeconds(p.RDNSSLifetime), Servers: rdnss})
	}
	// RFC 8106 §5.1: one option carries one lifetime, so the withdrawn
	// servers go in an option of their own.
	var gone []netip.Addr
	for _, a := range p.RDNSSWithdrawn {
		if a.Is6() && !a.Is4In6() && !slices.Contains(rdnss, a.WithZone("")) {
			gone = append(gone, a.WithZone(""))
		}
	}
	if len(gone) > 0 {
		ra.Options = append(ra.Options, &ndp.RecursiveDNSServer{Servers: gone})
	}
	if len(p.DNSSL) > 0 {
		ra.Options = append(ra.Options, &ndp.DNSSearchList{Lifetime: clampSeconds(p.DNSSLLifetime), DomainNames: p.DNSSL})
	}
	if validPref64(p.Pref64) {
		ra.Options = append(ra.Options, &ndp.PREF64{
			Lifetime: min(max(p.Pref64Lifetime, 0), maxPref64Lifetime).Truncate(8 * time.Second),
			Prefix:   p.Pref64.Masked(),
		})
	}
	for _, w := range p.Pref64Withdrawn {
		if validPref64(w) && w.Masked() != p.Pref64.Masked() {
			ra.Options = append(ra.Options, &ndp.PREF64{Prefix: w.Masked()})
		}
	}
	return ra
}

// Withdrawn is the plan of the final RA of a plan with WithdrawOnStop:
// the same options, every lifetime 0, and the current DNS servers and
// PREF64 among the withdrawn ones.
func (p Plan) Withdrawn() Plan {
	w := p
	w.RouterLifetime = 0
	w.Prefixes = slices.Clone(p.Prefixes)
	for i := range w.Prefixes {
		w.Prefixes[i].MaxPreferred, w.Prefixes[i].MaxValid = 0, 0
	}
	w.Routes = slices.Clone(p.Routes)
	for i := range w.Routes {
		w.Routes[i].Lifetime = 0
	}
	w.RDNSS, w.RDNSSLifetime = nil, 0
	w.RDNSSWithdrawn = append(slices.Clone(p.RDNSS), p.RDNSSWithdrawn...)
	w.DNSSLLifetime = 0
	w.Pref64, w.Pref64Lifetime = netip.Prefix{}, 0
	w.Pref64Withdrawn = slices.Clone(p.Pref64Withdrawn)
	if p.Pref64.IsValid() {
		w.Pref64Withdrawn = append([]netip.Prefix{p.Pref64}, w.Pref64Withdrawn...)
	}
	return w
}

// clampSeconds keeps a lifetime inside a 32-bit seconds field, below the
// all-ones value that would mean infinity.
func clampSeconds(d time.Duration) time.Duration {
	return min(max(d, 0), ndp.Infinity-time.Second).Truncate(time.Second)
}

// validPref64 reports whether p has one of the lengths RFC 8781 §4 can
// encode (RFC 6052 §2.2).
func validPref64(p netip.Prefix) bool {
	if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() {
		return false
	}
	switch p.Bits() {
	case 32, 40, 48, 56, 64, 96:
		return true
	}
	return false
}
