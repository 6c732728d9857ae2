// Package state holds the one value the gizmo daemon owns: everything it has
// observed about the WAN, the LAN and its hosts. The daemon is its only
// writer; the plan functions read it and turn it into what each service
// should do. Nothing here talks to the kernel or the network.
package state

import (
	"net"
	"net/netip"
	"slices"
	"time"
)

// State is the daemon's whole view of the world.
type State struct {
	WAN WAN
	LAN LAN

	// Delegated is the prefix the ISP delegated through DHCPv6-PD, nil when
	// there is none (yet, or any more).
	Delegated *DelegatedPrefix
	// Retired holds prefixes that were delegated before and are being phased
	// out: advertised with preferred lifetime 0 and a valid lifetime that runs
	// down to their ValidUntil (RFC 9096 §3).
	Retired []DelegatedPrefix

	// ULA is the gizmo's stable Unique Local /48 (RFC 4193), generated once and
	// persisted. Its first /64 is the management network on the LAN.
	ULA netip.Prefix

	// Shared is the upstream /64 the gizmo shares with the LAN through its
	// ND proxy (RFC 7278 §4.3) because nothing is delegated; nil when it
	// shares none. Derived (gizmo/derive) from WAN.Prefixes once the
	// candidate SharedCandidate has stood for a hold-off since
	// SharedCandidateSince, so that a delegation on its way wins.
	Shared               *UpstreamPrefix
	SharedCandidate      netip.Prefix
	SharedCandidateSince time.Time
	// SharedRetired is a /64 the gizmo shared and stopped sharing (a
	// delegation arrived, the upstream renumbered): advertised deprecated
	// until its ValidUntil (RFC 9096 §3.5). Derived.
	SharedRetired *UpstreamPrefix

	// Pref64 is the active NAT64 prefix and where it came from.
	Pref64       netip.Prefix
	Pref64Source Pref64Source

	// UpstreamDNS are the resolvers the DNS service forwards to, in order of
	// preference, and where they were learned.
	UpstreamDNS []netip.AddrPort

	// Hosts are the LAN hosts seen since the daemon started, keyed by MAC
	// address (net.HardwareAddr.String()).
	Hosts map[string]*Host
	// Remembered are the hosts known from earlier runs that have not been
	// seen in this one, and hosts evicted from Hosts whose record is worth
	// keeping (HostRecord.Durable), keyed by MAC address: their record
	// waits here and moves into Hosts when the host shows up. Persisted,
	// with each durable host's record.
	Remembered map[string]HostRecord
	// HostTable counts what the bounds of Hosts and Remembered did
	// (gizmo/derive), for /metrics and the dashboard.
	HostTable HostTableStats

	// Deployment names the situation the gizmo detected (docs/deployments.md):
	// router, upstream-nat64, shared-64, no-delegation, ipv4-only-upstream,
	// existing-network or no-upstream. The daemon records it from each
	// plan (plan.DeploymentOf); shown on the dashboard.
	Deployment string

	// Roles says how the ports got their roles and when the gizmo last
	// weighed them; zero when -wan/-lan were given.
	Roles RolesStatus

	// InboundRules are the owner's inbound firewall policy besides each
	// host's ExposedPorts: token and prefix rules, written relative to the
	// delegation so that they survive renumbering. Persisted.
	InboundRules []InboundRule
}

// HostTableStats are the host table's bound and its counters since the
// daemon started.
type HostTableStats struct {
	// Capacity is the most hosts Hosts holds (gizmo/derive.MaxHosts).
	Capacity int
	// Evicted counts hosts dropped from Hosts to make room for a newcomer;
	// Refused newcomers that found no room.
	Evicted, Refused uint64
	// AddrsEvicted counts addresses a host lost to its newer ones when it
	// had too many.
	AddrsEvicted uint64
	// Unproven counts sightings that would have attached a new address to
	// a MAC without a frame from that MAC to show it (a kernel neighbour
	// entry alone, which believes ND options).
	Unproven uint64
	// RecordsDropped counts remembered records forgotten to keep the
	// persisted ones bounded.
	RecordsDropped uint64
}

// InboundRule lets traffic from the internet in, without port forwarding.
// Exactly one of Token and Subnet is set.
type InboundRule struct {
	// Name is the owner's label, for the dashboard.
	Name string `json:"name,omitempty"`
	// Token is an interface identifier (the low 64 bits, like ip-token(8)),
	// e.g. ::80: the rule opens Ports on that identifier in every LAN /64.
	Token netip.Addr `json:"token,omitzero"`
	// Subnet is a sub-prefix of the delegation: everything inbound to it
	// is allowed ("the servers /64").
	Subnet *Subnet `json:"subnet,omitempty"`
	// Ports, as "tcp/443" or "udp/51820", for token rules. Prefix rules
	// open everything and take none.
	Ports []string `json:"ports,omitempty"`
}

// Subnet names the Index-th /Bits inside the delegated prefix, e.g. index 1
// of /64 in 2001:db8:1000:100::/56 is 2001:db8:1000:101::/64.
type Subnet struct {
	Index uint64 `json:"index"`
	Bits  int    `json:"bits"`
}

// Pref64Source says where the active NAT64 prefix came from.
type Pref64Source string

const (
	Pref64Default  Pref64Source = "default"     // 64:ff9b::/96, RFC 6052
	Pref64Flag     Pref64Source = "flag"        // -pref64
	Pref64Upstream Pref64Source = "upstream-ra" // the ISP's PREF64 option (RFC 8781)
)

// WAN is what the daemon knows about its uplink.
type WAN struct {
	Interface string
	// Ifindex is the interface's index, read at every plan: a re-created
	// interface gets a new one.
	Ifindex int
	Up      bool
	// LinkUpSince is when the link last came up; zero while it is down.
	LinkUpSince time.Time
	MTU         int

	// Addrs are the global addresses on the uplink (SLAAC or static).
	Addrs []netip.Prefix
	// Router is the upstream router's link-local address, from its RA.
	Router netip.Addr
	// RouterLifetimeUntil is when the upstream default route expires.
	RouterLifetimeUntil time.Time
	// RDNSS are the DNS servers the upstream advertises in its RA.
	RDNSS []netip.Addr
	// DHCPv6DNS are the DNS servers from the DHCPv6 reply, if any.
	DHCPv6DNS []netip.Addr
	// UpstreamPref64 is the PREF64 the upstream advertises, if any.
	UpstreamPref64 netip.Prefix
	// Routes are the upstream's Route Information Options (RFC 4191).
	Routes []Route
	// Prefixes are the upstream RA's Prefix Information Options
	// (RFC 4861 §4.6.2) that are still valid, with absolute deadlines.
	// Without a delegation, the gizmo shares an on-link /64 from here with
	// the LAN through an ND proxy (RFC 7278).
	Prefixes []UpstreamPrefix

	// IPv4 is the legacy address leased from the ISP's DHCPv4 server.
	IPv4 *IPv4Lease
}

// IPv4Lease is the WAN's legacy IPv4 address.
type IPv4Lease struct {
	Addr    netip.Prefix
	Router  netip.Addr
	DNS     []netip.Addr
	Expires time.Time
}

// UpstreamPrefix is one Prefix Information Option heard on the WAN.
type UpstreamPrefix struct {
	Prefix         netip.Prefix
	OnLink         bool // L flag
	Autonomous     bool // A flag
	PreferredUntil time.Time
	ValidUntil     time.Time
}

// Route is a more-specific route learned from or sent in an RA (RFC 4191).
type Route struct {
	Prefix     netip.Prefix
	Preference int // -1 low, 0 medium, 1 high
	ValidUntil time.Time
}

// DelegatedPrefix is one DHCPv6-PD delegation with absolute deadlines, so
// that every consumer computes the remaining lifetime at the moment it uses
// it (RFC 8415 §21.22: lifetimes count from when the Reply arrived).
type DelegatedPrefix struct {
	Prefix         netip.Prefix
	PreferredUntil time.Time
	ValidUntil     time.Time
}

// Remaining returns the preferred and valid lifetimes left at now, never
// negative.
func (d DelegatedPrefix) Remaining(now time.Time) (preferred, valid time.Duration) {
	return clampZero(d.PreferredUntil.Sub(now)), clampZero(d.ValidUntil.Sub(now))
}

func clampZero(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}

// LAN is the gizmo's own side of the home network.
type LAN struct {
	Interface string
	// Ifindex is the interface's index, read at every plan: the bridge can
	// be re-created.
	Ifindex      int
	HardwareAddr net.HardwareAddr
	MTU          int
	// LinkLocal is the gizmo's link-local address on the LAN, the source of
	// its RAs and the hosts' default router.
	LinkLocal netip.Addr
	// Legacy4 is the legacy IPv4 network on the LAN (the gizmo's address and
	// prefix length, e.g. 203.0.113.129/25 in the lab).
	Legacy4 netip.Prefix
	// DNS holds the DNS service's distinct listening address per information
	// source, so that the statistics show which source each host uses.
	DNS DNSAddrs
}

// DNSAddrs are the DNS service's listening addresses, one per way a host can
// learn its resolver.
type DNSAddrs struct {
	RDNSS  netip.Addr // advertised in the RA's RDNSS option
	DHCPv6 netip.Addr // sent in DHCPv6 (stateless) DNS servers option
	DHCPv4 netip.Addr // sent in DHCPv4 option 6
}

// Host is one LAN host, identified by its MAC address.
type Host struct {
	MAC      string
	Hostname string // from DHCPv4 option 12/81 or the policy override
	// HostnameSince is when the host first announced Hostname: of two
	// hosts that announce one name, the one that had it first keeps it.
	HostnameSince time.Time
	// NameTaken is the name the host asked for (announced or set by the
	// owner) that another host holds: it has no name in home.arpa. The
	// daemon records it from the DNS64 plan (plan.HostNames).
	NameTaken string
	// Addrs are every address seen for the host, privacy addresses included,
	// with when each was last seen.
	Addrs map[netip.Addr]time.Time
	// IPv4Lease is the legacy address leased to the host, if any.
	IPv4Lease netip.Addr
	// GotV6OnlyPreferred is true when the host asked for option 108 and was
	// told to go IPv6-only (RFC 8925).
	GotV6OnlyPreferred bool
	Policy             HostPolicy
	FirstSeen          time.Time
	LastSeen           time.Time
}

// Record is the part of a host that persists across restarts.
func (h *Host) Record() HostRecord {
	p := h.Policy
	p.ExposedPorts = slices.Clone(p.ExposedPorts)
	return HostRecord{Hostname: h.Hostname, HostnameSince: h.HostnameSince, Policy: p, FirstSeen: h.FirstSeen, LastSeen: h.LastSeen}
}

// HostRecord is what the daemon keeps of a host across restarts.
type HostRecord struct {
	// Hostname is the name the host announced (DHCPv4 option 12/81), and
	// HostnameSince when it first did.
	Hostname      string     `json:"hostname,omitempty"`
	HostnameSince time.Time  `json:"hostname_since,omitzero"`
	Policy        HostPolicy `json:"policy"`
	FirstSeen     time.Time  `json:"first_seen"`
	// LastSeen is as of the last write of the file: it is saved along
	// with other changes, never on its own.
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// Configured reports whether the owner set anything for the host: a policy
// other than the defaults (a name, a reservation, exposed ports, DNS64 or
// option 108 turned off).
func (r HostRecord) Configured() bool { return r.Policy.Configured() }

// Durable reports whether the record is worth keeping across a reboot:
// the owner configured the host, or it has a name (which it keeps against
// later claimants).
func (r HostRecord) Durable() bool { return r.Configured() || r.Hostname != "" }

// HostPolicy is the owner's per-host choice, persisted and editable through
// the API.
type HostPolicy struct {
	// DNS64 on: AAAA answers are synthesized for IPv4-only names.
	DNS64 bool `json:"dns64"`
	// V6OnlyPreferred on: the DHCPv4 server sends option 108 when asked.
	V6OnlyPreferred bool `json:"v6only_preferred"`
	// Hostname overrides the name the host announces, if set.
	Hostname string `json:"hostname,omitempty"`
	// IPv4 is a static DHCPv4 reservation: the host always gets this
	// legacy address (when it gets one at all). Zero: from the pool.
	IPv4 netip.Addr `json:"ipv4,omitzero"`
	// ExposedPorts are reachable from the internet on every current IPv6
	// address of the host, privacy addresses included: "tcp/443".
	ExposedPorts []string `json:"exposed_ports,omitempty"`
}

// DefaultHostPolicy is what a host that the owner never touched gets: the
// monostack defaults.
func DefaultHostPolicy() HostPolicy {
	return HostPolicy{DNS64: true, V6OnlyPreferred: true}
}

// Configured reports whether p is other than DefaultHostPolicy: the owner
// set something. A policy equal to the defaults configures nothing.
func (p HostPolicy) Configured() bool {
	d := DefaultHostPolicy()
	return p.DNS64 != d.DNS64 || p.V6OnlyPreferred != d.V6OnlyPreferred || p.Hostname != "" ||
		p.IPv4.IsValid() || len(p.ExposedPorts) > 0
}

// WellKnownPref64 is the RFC 6052 well-known prefix.
var WellKnownPref64 = netip.MustParsePrefix("64:ff9b::/96")

// RolesStatus is the role detection's account, for the dashboard.
type RolesStatus struct {
	// Detected: the roles come from detection, not from -wan/-lan.
	Detected bool
	// WANPort is the port that has the WAN role, by its name before it
	// was renamed uplink0 ("" while no port hears an upstream).
	WANPort string
	// LANPorts are bridged into the LAN.
	LANPorts []string
	// Since is when these roles took effect, and Reason why.
	Since  time.Time
	Reason string
	// EvaluatedAt is when the gizmo last weighed an observation about the
	// roles (a carrier change, an upstream signal on a LAN port, a probe),
	// and Evaluation what it was and what came of it.
	EvaluatedAt time.Time
	Evaluation  string
	// Changes counts the run-time role changes since the process started.
	Changes int
}
