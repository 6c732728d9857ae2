package plan

import (
	"net"
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/accounting"
	"codeberg.org/monostack/gizmo/services/clat"
	"codeberg.org/monostack/gizmo/services/dhcp4"
	"codeberg.org/monostack/gizmo/services/dhcp6info"
	"codeberg.org/monostack/gizmo/services/dns64"
	"codeberg.org/monostack/gizmo/services/dslite"
	"codeberg.org/monostack/gizmo/services/fastpath"
	"codeberg.org/monostack/gizmo/services/firewall"
	"codeberg.org/monostack/gizmo/services/lanif"
	"codeberg.org/monostack/gizmo/services/nat64"
	"codeberg.org/monostack/gizmo/services/ndproxy"
	"codeberg.org/monostack/gizmo/services/nsresponder"
	"codeberg.org/monostack/gizmo/services/ra"
	"codeberg.org/monostack/gizmo/services/timesync"
	"codeberg.org/monostack/gizmo/services/upnp"
	"codeberg.org/monostack/gizmo/services/wan"
	"codeberg.org/monostack/gizmo/web"
)

// Options are the daemon's settings that shape the plans but are not part
// of the state.
type Options struct {
	// RAInterval is MaxRtrAdvInterval (RFC 4861 §6.2.1).
	RAInterval time.Duration
	// V6OnlyWait is V6ONLY_WAIT in DHCPv4 option 108 (RFC 8925).
	V6OnlyWait time.Duration
	// ExistingNetwork is the one-port mode on a network with its own
	// router: the gizmo adds NAT64 and DNS64 and nothing else.
	ExistingNetwork bool
	// ListenWeb is -listen-web; empty: the LAN's management addresses.
	ListenWeb string
	// TimeService: the daemon runs the time service, which serves the LAN
	// and is announced in DHCPv4 and DHCPv6.
	TimeService bool
}

// Plans are every service's plan, made from one state at one moment.
type Plans struct {
	// Network is the LAN's addressing every plan below was made from.
	Network    Network
	Deployment Deployment

	LAN       lanif.Plan
	WAN       wan.Plan
	DHCP6PD   DHCP6PD
	RA        ra.Plan
	NDProxy   ndproxy.Plan
	DHCP6Info dhcp6info.Plan
	DNS64     dns64.Plan
	DHCP4     dhcp4.Plan
	NAT64     nat64.Plan
	DSLite    dslite.Plan
	CLAT      clat.Plan
	Discovery clat.DiscoveryPlan
	Firewall  firewall.Plan
	Fastpath  fastpath.Plan
	// FastpathOff says why Fastpath is empty, which turns the fast path
	// off; "" while it runs.
	FastpathOff string
	Accounting  accounting.Plan
	// NSResponder answers Neighbor Solicitations in the existing-network
	// mode's on-link NAT64 prefix.
	NSResponder nsresponder.Plan
	// TimeSync is empty when the daemon runs no time service.
	TimeSync timesync.Plan
	// FirewallProblems names the inbound rules left out of Firewall.
	FirewallProblems error
	// WebListen are the dashboard's listening addresses.
	WebListen web.Listen
	// NameTaken are the hosts that asked for a name another host holds,
	// by MAC, with the name each wanted (HostNames): they have none in
	// LocalDomain. The daemon shows it on the host (state.Host.NameTaken).
	NameTaken map[string]string
	// UPnP is the IGD's: where it listens and what it announces.
	UPnP upnp.Plan
}

// All makes every service's plan from st at now. It only reads st.
func All(st *state.State, opt Options, now time.Time) Plans {
	n := NetworkOf(st, now)
	var ts timesync.Plan
	if opt.TimeService {
		ts = TimeSync(st, now)
	}
	p := Plans{
		Network:    n,
		Deployment: DeploymentOf(st, opt.ExistingNetwork, now),
		WAN:        WAN(st, now),
		DHCP6PD:    DHCP6PDOf(st),
		RA:         RA(st, RAOptions{MaxInterval: opt.RAInterval, ExistingNetwork: opt.ExistingNetwork}, now),
		NDProxy:    NDProxy(st, now),
		DHCP6Info:  DHCP6Info(st, opt.ExistingNetwork, ts.Serve, now),
		DNS64:      DNS64(st, now),
		DHCP4:      DHCP4(st, opt.V6OnlyWait, ts.Serve),
		NAT64:      NAT64(st, opt.ExistingNetwork, now),
		DSLite:     DSLitePlan(st, opt.ExistingNetwork, now),
		CLAT:       CLAT(st, opt.ExistingNetwork, now),
		Discovery:  Discovery(st, now),
		Accounting: Accounting(st),
		TimeSync:   ts,
		WebListen:  WebListen(n, opt.ListenWeb),
		// Answers only in the existing-network mode.
		NSResponder: NSResponder(st, opt.ExistingNetwork, now),
		UPnP:        UPnP(st, opt.ExistingNetwork, now),
	}
	_, p.NameTaken = HostNames(st)
	if opt.ExistingNetwork {
		p.LAN = ExistingNetworkLAN(st, now)
	} else {
		p.LAN = LAN(st, now)
	}
	p.Firewall, p.FirewallProblems = Firewall(st, now)
	p.Fastpath, p.FastpathOff = Fastpath(st, now)
	if p.CLAT.Enabled() {
		// The legacy hosts' IPv4 leaves by the CLAT's link.
		p.Accounting.IPv4Out = clat.Interface
	}
	return p
}

// Accounting is the per-host accounting's plan: the interfaces whose
// traffic it counts.
func Accounting(st *state.State) accounting.Plan {
	return accounting.Plan{LAN: st.LAN.Interface, WAN: st.WAN.Interface}
}

// DHCP6PD is what the delegation client is asked to do besides its own
// protocol.
type DHCP6PD struct {
	// ConfirmLinkUp is when the WAN link last came up, zero while it is
	// down. RFC 8415 §18.2.12: a client whose link may have moved to
	// another network re-validates its bindings (with Rebind for
	// delegated prefixes) rather than waiting for T1; each new value asks
	// the client to do that once.
	ConfirmLinkUp time.Time
}

// DHCP6PDOf is the delegation client's plan.
func DHCP6PDOf(st *state.State) DHCP6PD {
	if !st.WAN.Up {
		return DHCP6PD{}
	}
	return DHCP6PD{ConfirmLinkUp: st.WAN.LinkUpSince}
}

// FastpathOffNoJIT is why the fast path is off in a kernel without a BPF
// JIT.
const FastpathOffNoJIT = "no BPF JIT"

// Fastpath is the eBPF flowtable's plan: the LAN prefixes the firewall
// accepts as LAN sources, and the NAT64 prefix excluded, because its flows
// are the NAT64's. A /64 shared with the WAN through the ND proxy holds
// LAN hosts too; flows between two of its addresses stay with the stack,
// because the fast path only learns LAN ↔ outside. Where the fast path
// does not pay, the plan is empty, which turns it off, and off says why.
func Fastpath(st *state.State, now time.Time) (p fastpath.Plan, off string) {
	// Without a JIT the programs run in the kernel's interpreter. Measured
	// there (gokrazy's kernel.amd64, the APU's), a packet of an offloaded
	// flow costs 1.18-1.37 times the instructions of the same packet
	// through the stack, the whole ruleset and the accounting table, and
	// every packet the fast path does not carry pays 1.6-1.7 times for
	// the lookup (docs/performance.md, "Without a JIT (APU)"). With a JIT
	// an offloaded packet costs about half.
	if st.Kernel.Observed && !st.Kernel.BPFJIT {
		return fastpath.Plan{}, FastpathOffNoJIT
	}
	n := NetworkOf(st, now)
	lan := n.DelegatedLANs()
	if n.Management.IsValid() {
		lan = append(lan, n.Management)
	}
	lan = append(lan, n.SharedLANs()...)
	// More than the datapath holds would make the plan refused; the ones
	// left out just take the stack's path.
	if len(lan) > fastpath.MaxLANPrefixes {
		lan = lan[:fastpath.MaxLANPrefixes]
	}
	p = fastpath.Plan{LANPrefixes: slices.Clip(lan)}
	if st.Pref64.IsValid() {
		p.Exclude = []netip.Prefix{st.Pref64}
	}
	return p, ""
}

// WebListen is where the dashboard listens: the flag and port 443 on its
// host, or ports 80 (read-only) and 443 (HTTPS, where writes and the login
// are) on the LAN's management ULA and legacy IPv4 address, never the uplink.
func WebListen(n Network, flag string) web.Listen {
	if flag != "" {
		// The flag names one plain-HTTP address; HTTPS goes to port 443 on
		// the same host, where writes and the login are.
		host, _, err := net.SplitHostPort(flag)
		if err != nil {
			return web.Listen{HTTP: []string{flag}}
		}
		return web.Listen{HTTP: []string{flag}, HTTPS: []string{net.JoinHostPort(host, "443")}}
	}
	var out web.Listen
	for _, h := range []netip.Addr{n.RouterULA, n.Legacy4.Addr()} {
		if !h.IsValid() {
			continue
		}
		out.HTTP = append(out.HTTP, net.JoinHostPort(h.String(), "80"))
		out.HTTPS = append(out.HTTPS, net.JoinHostPort(h.String(), "443"))
	}
	return out
}
