// Package state holds the one value the gizmo daemon owns: everything it has
// observed about the WAN, the LAN and its hosts. The daemon is its only
// writer; the plan functions read it and turn it into what each service
// should do. Nothing here talks to the kernel or the network.
package state

import (
	"encoding/json"
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

	// OnLink is, in the existing-network mode, the /64 the gizmo
	// announces on-link (PIO L=1, A=0; RFC 4861 §6.3.4) and answers
	// Neighbor Solicitations in: its DNS64 address and, unless -pref64 or
	// the network's own PREF64 names another prefix, the NAT64 /96 live
	// there, so that hosts reach both without a route. Invalid outside
	// that mode and until one is chosen. Derived (gizmo/derive).
	OnLink netip.Prefix
	// OnLinkWithdrawn are /64s announced on-link before and replaced (a
	// delegation arrived, changed or went): advertised with lifetime 0
	// until their Until, so that hosts drop them at once. Derived.
	OnLinkWithdrawn []WithdrawnPrefix

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

	// Line is what the ISP's line carries (derived by gizmo/derive): IPv4,
	// IPv6 or both, and on an IPv6-only line whether a NAT64 or an AFTR
	// brings IPv4. It decides the CLAT, the B4 and the no-IPv4 rules;
	// shown on the dashboard.
	Line Line

	// CLAT is what the CLAT translates between while it runs (recorded by
	// the daemon from each plan); zero while it does not.
	CLAT CLATStatus

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

	// WANVLAN is the owner's setting of the 802.1Q VLAN ID the ISP
	// delivers its service on, from the dashboard; 0: none set (untagged,
	// or the VLAN role detection finds). The -wan-vlan flag overrides it
	// (plan.WANVLAN). Persisted.
	WANVLAN uint16

	// LastPinholeID is the UniqueID last given to a pinhole (Host.Pinholes):
	// IDs are handed out in turn, so that an app's old ID does not name
	// another app's pinhole soon after.
	LastPinholeID uint16
	// Clock is the time service's account of the system clock, for the
	// dashboard.
	Clock Clock
	// Kernel is what the daemon found out about the running kernel when
	// it started. Not persisted: a new image may bring another kernel.
	Kernel Kernel
}

// Kernel holds the facts about the running kernel that decide which eBPF
// datapaths pay for themselves.
type Kernel struct {
	// Observed: the daemon looked. A state it never looked at (tests)
	// plans as for a kernel with a JIT.
	Observed bool
	// BPFJIT: the kernel compiles eBPF programs to machine code. Without
	// a JIT they run in its interpreter, several times slower per packet.
	BPFJIT bool
}

// Clock says whether the gizmo's clock is synchronised with NTP in this
// run, from which server, and when last. Until it is, wall-clock times
// (the dashboard's, the logs') may be years off on a board without a
// real-time clock.
type Clock struct {
	Synced bool
	// Source is the server of the last accepted sample: an address, or a
	// name with the address it resolved to.
	Source   string
	LastSync time.Time
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
	Pref64OnLink   Pref64Source = "on-link"     // a /96 in the on-link /64 of the existing-network mode (RFC 6052 §2.2)
	// Pref64Discovered: the ISP's DNS64 synthesizes into it (RFC 7050
	// discovery through the upstream resolvers).
	Pref64Discovered Pref64Source = "upstream-dns64"
)

// Upstream reports whether the prefix is the ISP's, that is, the ISP runs
// the NAT64 and the gizmo does not translate.
func (s Pref64Source) Upstream() bool { return s == Pref64Upstream || s == Pref64Discovered }

// Line is what the ISP's line carries.
type Line string

const (
	// LineUnknown: nothing heard yet, or an IPv6 line whose IPv4 story is
	// not known yet (derive.NoIPv4HoldOff).
	LineUnknown Line = "unknown"
	// LineDualStack: IPv6 and an IPv4 lease.
	LineDualStack Line = "dual-stack"
	// LineIPv4Only: an IPv4 lease and no IPv6.
	LineIPv4Only Line = "ipv4-only"
	// LineIPv6OnlyNAT64: IPv6 only, and the ISP's NAT64 (PREF64 in its RA,
	// or found by RFC 7050 discovery): the gizmo's CLAT serves the legacy
	// hosts (RFC 6877).
	LineIPv6OnlyNAT64 Line = "ipv6-only-nat64"
	// LineIPv6Only: IPv6 only, no NAT64, no AFTR: no IPv4 at all.
	LineIPv6Only Line = "ipv6-only"
	// LineDSLite: IPv6 only and an AFTR (RFC 6333) to tunnel IPv4 to.
	LineDSLite Line = "ds-lite"
)

// CLATStatus is the CLAT's translation while it runs.
type CLATStatus struct {
	// Address is the CLAT's IPv6 address, Pref64 the NAT64 prefix it
	// sends to.
	Address netip.Addr
	Pref64  netip.Prefix
}

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
	// DHCPv6NTP are the NTP servers from the DHCPv6 reply (RFC 5908
	// address suboptions, then RFC 4075 SNTP servers); DHCPv6NTPNames
	// those it names by FQDN (RFC 5908 §4.3).
	DHCPv6NTP      []netip.Addr
	DHCPv6NTPNames []string
	// UpstreamPref64 is the PREF64 the upstream advertises, if any.
	UpstreamPref64 netip.Prefix
	// DNS64 is the last answer of RFC 7050 discovery: the NAT64 prefix the
	// upstream resolvers synthesize into, or that they do not.
	DNS64 DNS64Discovery
	// AFTRName is the DS-Lite AFTR the DHCPv6 server names
	// (OPTION_AFTR_NAME, RFC 6334), and AFTR its IPv6 address once
	// resolved (services/dslite); both empty on other lines.
	AFTRName string
	AFTR     netip.Addr
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

// DNS64Discovery is one answer of RFC 7050 discovery.
type DNS64Discovery struct {
	// Prefix is the NAT64 prefix found, valid until ValidUntil (the
	// answer's TTL); invalid when None.
	Prefix     netip.Prefix
	ValidUntil time.Time
	// None: the resolvers answered, and there is no DNS64 behind them.
	None bool
	// At is when the answer came.
	At time.Time
}

// Found returns the discovered prefix while it is valid at now.
func (d DNS64Discovery) Found(now time.Time) (netip.Prefix, bool) {
	if d.Prefix.IsValid() && d.ValidUntil.After(now) {
		return d.Prefix, true
	}
	return netip.Prefix{}, false
}

// IPv4Lease is the WAN's legacy IPv4 address.
type IPv4Lease struct {
	Addr   netip.Prefix
	Router netip.Addr
	DNS    []netip.Addr
	// NTP are the time servers of option 42 (RFC 2132 §8.3).
	NTP     []netip.Addr
	Expires time.Time
	// Acquired is when a server last granted or confirmed it; a lease
	// kept from an earlier run that no server confirmed has an older one.
	Acquired time.Time
}

// ValidAt reports whether the lease holds at now (a zero expiry never
// runs out); a nil lease does not.
func (l *IPv4Lease) ValidAt(now time.Time) bool {
	return l != nil && l.Addr.IsValid() && l.Addr.Addr().Is4() && (l.Expires.IsZero() || l.Expires.After(now))
}

// HasGlobalIPv6 reports whether one of the WAN's addresses is global IPv6
// addressing (a ULA is not an IPv6 upstream).
func (w WAN) HasGlobalIPv6() bool {
	for _, a := range w.Addrs {
		if ip := a.Addr(); ip.Is6() && ip.IsGlobalUnicast() && !ip.IsPrivate() {
			return true
		}
	}
	return false
}

// UpstreamPrefix is one Prefix Information Option heard on the WAN.
type UpstreamPrefix struct {
	Prefix         netip.Prefix
	OnLink         bool // L flag
	Autonomous     bool // A flag
	PreferredUntil time.Time
	ValidUntil     time.Time
}

// WithdrawnPrefix is a prefix the gizmo advertised and now withdraws: its
// options go out with lifetime 0 until Until.
type WithdrawnPrefix struct {
	Prefix netip.Prefix
	Until  time.Time
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
	// Acquired is when the server last granted or extended it (zero when
	// unknown); a lease kept on disk from an earlier run has an older one.
	Acquired time.Time
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
	// OwnMACs are the gizmo's own hardware addresses (net.HardwareAddr
	// String form): every port, bridged or not, the bridge and the uplink.
	// Frames from them are the gizmo itself (its role probes, its RAs seen
	// on another port), never a host. A bridge takes its MAC from its
	// ports unless told otherwise, so the list is read again at every plan.
	OwnMACs []string
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
	// Pinholes are the inbound pinholes apps on the host opened (UPnP),
	// in the order they were opened; only while Policy.AppPinholes is on.
	Pinholes []Pinhole
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

// UnmarshalJSON reads a record; a switch its policy leaves out (a record
// written before the switch existed) takes its default, not off.
func (r *HostRecord) UnmarshalJSON(b []byte) error {
	type plain HostRecord
	v := plain{Policy: DefaultHostPolicy()}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = HostRecord(v)
	return nil
}

// Configured reports whether the owner set anything for the host: a policy
// other than the defaults (a name, a reservation, exposed ports, app
// pinholes allowed, DNS64 or option 108 turned off, the device kept from
// IPv6-only hosts).
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
	// AppPinholes on: apps on this host may open inbound IPv6 ports
	// themselves (UPnP IGD / PCP pinholes). Off unless the owner turns it
	// on: an app's request is not the owner's decision.
	AppPinholes bool `json:"app_pinholes"`
	// LANReachable on: the LAN's IPv6-only hosts reach this host's IPv4
	// lease through the NAT64, and its name has an AAAA record for them.
	// On unless the owner turns it off: an IPv4-only printer on the LAN
	// must keep working for the household's laptops that went IPv6-only,
	// as it did while they still had IPv4.
	LANReachable bool `json:"lan_reachable"`
}

// DefaultHostPolicy is what a host that the owner never touched gets: the
// monostack defaults.
func DefaultHostPolicy() HostPolicy {
	return HostPolicy{DNS64: true, V6OnlyPreferred: true, LANReachable: true}
}

// Configured reports whether p is other than DefaultHostPolicy: the owner
// set something. A policy equal to the defaults configures nothing.
func (p HostPolicy) Configured() bool {
	d := DefaultHostPolicy()
	return p.DNS64 != d.DNS64 || p.V6OnlyPreferred != d.V6OnlyPreferred || p.Hostname != "" ||
		p.IPv4.IsValid() || len(p.ExposedPorts) > 0 || p.AppPinholes != d.AppPinholes ||
		p.LANReachable != d.LANReachable
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
	// WANVLAN is the 802.1Q VLAN ID uplink0 is on (0: untagged) and
	// WANVLANFrom where it came from (plan.WANVLANFromFlag, …), also when
	// -wan/-lan were given. WANVLANError says why the VLAN could not be
	// applied (the uplink then runs untagged).
	WANVLAN      uint16
	WANVLANFrom  string
	WANVLANError string
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

	// WANMAC is the hardware address of the port with the WAN role, when
	// the roles were detected on a gizmo with several ports; empty
	// otherwise (-wan/-lan, one port, no WAN yet).
	WANMAC string
	// Proven is the port that last proved itself the WAN. Persisted.
	Proven ProvenWAN
	// Pinned: the WAN in force is the proven one (derive.ProveWAN), so
	// nothing heard on a LAN port moves the role (services/roles).
	Pinned bool
	// Rogue is the last upstream server heard on a LAN port while there
	// was a WAN.
	Rogue *RogueUpstream
}

// ProvenWAN names the port that carried a delegation or a DHCPv4 lease as
// the WAN (or that the owner chose), by its hardware address: port names
// change (the WAN is renamed uplink0), its address does not.
type ProvenWAN struct {
	MAC string    `json:"mac"`
	At  time.Time `json:"at"`
	// By says how: ProvenByDelegation, ProvenByDHCPv4 or ProvenByOwner.
	By string `json:"by"`
}

// How a WAN proved itself.
const (
	ProvenByDelegation = "delegation"
	ProvenByDHCPv4     = "dhcpv4-lease"
	ProvenByOwner      = "owner"
)

// RogueUpstream is an upstream server heard on a LAN port.
type RogueUpstream struct {
	Port string
	// Kind is "RA" (a default router), "DHCPv4" or "DHCPv6".
	Kind      string
	At        time.Time
	SourceMAC string
	Source    netip.Addr
}
