package netlab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A Scenario is one kind of upstream (or placement) the gizmo must cope with
// without configuration. The default, "pd56", is the lab of lab/README.md;
// the others change the ISP's software or the wiring around gz-gizmo.
// Options.Scenario picks one by name.
type Scenario struct {
	Name string
	// About says what the scenario stands for, for `lab up -h`.
	About string
	// DelegatedLength is Kea's delegated-len; 0 means no prefix
	// delegation at all (Kea still answers, with no pd-pool).
	DelegatedLength int
	// NoIPv6 runs neither radvd nor Kea DHCPv6: the ISP offers IPv4 only.
	NoIPv6 bool
	// UpstreamPref64 is advertised in the ISP's RA (RFC 8781); the gizmo
	// then runs without -pref64, so that it picks this one up.
	UpstreamPref64 netip.Prefix
	// NoIPv4 runs no DHCPv4 server for the gizmo: the line is IPv6 only.
	NoIPv4 bool
	// ISPNAT64, when valid, is the ISP's NAT64 prefix: gz-isp runs tayga
	// as a NAT64 to gz-inet's IPv4 servers with it (ISPNAT64Pool), and its
	// BIND synthesizes AAAA records into it (dns64). The gizmo then runs
	// without -pref64.
	ISPNAT64 netip.Prefix
	// Lifetimes replace the lab's default DHCP lifetimes unless
	// Options.Lifetimes is set.
	Lifetimes Lifetimes
	// PortNames renames gz-gizmo's two ports (WAN side, LAN side) and runs
	// the gizmo without -wan/-lan, so that it detects the roles itself.
	PortNames [2]string
	// OnePort rewires the lab as an existing network: the ISP's router is
	// on the LAN switch (port p-isp), gz-gizmo has a single port on the
	// switch (named PortNames[1]) and runs without -wan/-lan, so that role
	// detection finds one port and picks the existing-network mode, and
	// without -pref64, so that it puts its NAT64 prefix in the /64 it
	// announces on-link. gz-lan-v6 is a stock Linux host there: it ignores
	// Route Information Options (Lab.HonourRIOs changes that).
	OnePort bool
	// DSLite is a DS-Lite line (RFC 6333), with NoIPv4: Kea's DHCPv6
	// names the AFTR (option 64, RFC 6334), and gz-isp runs the AFTR (the
	// lab's eBPF one, lab/internal/aftr) with nftables' masquerade towards
	// gz-inet.
	DSLite bool
	// ISPUnplugged starts the gizmo with the cable to the ISP unplugged
	// (Lab.SetISPLink plugs it in): the ISP's daemons start on a live
	// link, which then goes down before the gizmo starts.
	ISPUnplugged bool
	// ISPVLAN, when not 0, is the 802.1Q VLAN the ISP delivers its
	// service on: gz-isp's link to the gizmo drops untagged frames and
	// carries the ISP's only on this VLAN (vlanTopologySteps, `lab
	// isp-vlan`).
	ISPVLAN uint16
	// GizmoVLANFlag runs the gizmo with -wan-vlan ISPVLAN; without it,
	// role detection must find the VLAN.
	GizmoVLANFlag bool
}

// OnePortName is gz-gizmo's only port in the existing-network scenario.
const OnePortName = "eth0"

// ISPSwitchPort is the switch port of the ISP's router in the
// existing-network scenario.
const ISPSwitchPort = "p-isp"

// UpstreamPref64 is the NAT64 prefix the ISP advertises in the
// "upstream-pref64" scenario; it differs from Pref64 so that a test can tell
// where the gizmo's prefix came from.
var UpstreamPref64 = netip.MustParsePrefix("2001:db8:46::/96")

// ISPNAT64Pool is the IPv4 pool of the ISP's NAT64 (tayga's dynamic pool,
// inside WANPrefix4, which gz-inet routes to gz-isp); ISPNAT64Addr is
// tayga's own address in it. The gizmo's WAN link gets no IPv4 in the
// scenarios that run it.
var (
	ISPNAT64Pool = netip.MustParsePrefix("192.0.2.240/28")
	ISPNAT64Addr = netip.MustParseAddr("192.0.2.241")
)

// DefaultScenario is the lab of lab/README.md: a /56 delegated by Kea.
const DefaultScenario = "pd56"

var scenarios = map[string]Scenario{
	"pd56": {About: "the ISP delegates a /56 (the default lab)", DelegatedLength: 56},
	"pd60": {About: "the ISP delegates a /60", DelegatedLength: 60},
	"pd64": {About: "the ISP delegates a single /64", DelegatedLength: 64},
	"pd48": {About: "the ISP delegates a /48", DelegatedLength: 48},
	"upstream-pref64": {About: "the ISP runs the NAT64 and advertises PREF64 " + UpstreamPref64.String() + " in its RA",
		DelegatedLength: 56, UpstreamPref64: UpstreamPref64},
	"ipv4-only": {About: "the ISP offers IPv4 only: no RA, no DHCPv6", NoIPv6: true},
	"no-pd":     {About: "the ISP (or a home router in front) offers a /64 on the WAN and no prefix delegation"},
	"short-lifetimes": {About: "the delegation lives 60 s (preferred 30 s, T1 15 s, T2 24 s)", DelegatedLength: 56,
		Lifetimes: Lifetimes{Renew: 15 * time.Second, Rebind: 24 * time.Second, Preferred: 30 * time.Second, Valid: 60 * time.Second}},
	"roles": {About: "the gizmo's ports are eth1 (to the ISP) and eth0 (to the switch); it runs without -wan/-lan",
		DelegatedLength: 56, PortNames: [2]string{"eth1", "eth0"}},
	"roles-unplugged": {About: "as \"roles\", but the cable to the ISP is unplugged when the gizmo starts (Lab.SetISPLink plugs it in)",
		DelegatedLength: 56, PortNames: [2]string{"eth1", "eth0"}, ISPUnplugged: true},
	"ds-lite": {About: "DS-Lite: the ISP gives IPv6 and a /56, no IPv4 on the WAN, and names its AFTR " + AFTRName + " in DHCPv6 (RFC 6333, RFC 6334)",
		DelegatedLength: 56, NoIPv4: true, DSLite: true},
	"existing-network": {About: "a one-port gizmo on a LAN whose router is the ISP's; it runs without -wan/-lan",
		DelegatedLength: 56, OnePort: true, PortNames: [2]string{"", OnePortName}},
	"ipv6-only-nat64": {About: "the ISP gives IPv6 and a /56, no IPv4, and runs a NAT64 (tayga) with PREF64 " + UpstreamPref64.String() + " in its RA and DNS64 in its BIND",
		DelegatedLength: 56, NoIPv4: true, UpstreamPref64: UpstreamPref64, ISPNAT64: UpstreamPref64},
	"ipv6-only-dns64": {About: "as \"ipv6-only-nat64\", but the ISP announces its NAT64 only by DNS64 (no PREF64 in its RA): RFC 7050 discovery finds it",
		DelegatedLength: 56, NoIPv4: true, ISPNAT64: UpstreamPref64},
	"ipv6-only": {About: "the ISP gives IPv6 and a /56 and no IPv4 at all: no DHCPv4, no NAT64, no DNS64",
		DelegatedLength: 56, NoIPv4: true},
	"vlan-wan": {About: fmt.Sprintf("the ISP delivers its service (a /56, DHCPv4) on 802.1Q VLAN %d only; the gizmo runs with -wan-vlan %d", ISPVLANID, ISPVLANID),
		DelegatedLength: 56, ISPVLAN: ISPVLANID, GizmoVLANFlag: true},
	"vlan-wan-detect": {About: fmt.Sprintf("as \"vlan-wan\", but the gizmo's ports are eth1 and eth0 and it runs without -wan/-lan/-wan-vlan: role detection finds VLAN %d", ISPVLANID),
		DelegatedLength: 56, ISPVLAN: ISPVLANID, PortNames: [2]string{"eth1", "eth0"}},
}

func init() {
	// "behind-router" is the same wiring as "no-pd": a /64 on the WAN, no PD.
	s := scenarios["no-pd"]
	s.About = "behind another home router: a /64 on the WAN and no prefix delegation"
	scenarios["behind-router"] = s
	for name, s := range scenarios {
		s.Name = name
		scenarios[name] = s
	}
}

// Scenarios lists the scenario names, sorted.
func Scenarios() []string {
	var out []string
	for n := range scenarios {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// LookupScenario returns the named scenario; "" is DefaultScenario.
func LookupScenario(name string) (Scenario, error) {
	if name == "" {
		name = DefaultScenario
	}
	s, ok := scenarios[name]
	if !ok {
		return Scenario{}, fmt.Errorf("netlab: unknown scenario %q (known: %s)", name, strings.Join(Scenarios(), ", "))
	}
	return s, nil
}

// Scenario returns the scenario the lab runs.
func (l *Lab) Scenario() Scenario { return l.scenario }

// DetectsRoles reports whether the gizmo runs without -wan/-lan.
func (s Scenario) DetectsRoles() bool { return s.PortNames != [2]string{} }

// gizmoArgv adapts the gizmo's standard command line to the scenario.
func (s Scenario) gizmoArgv(argv []string) []string {
	drop := map[string]bool{}
	if s.DetectsRoles() {
		drop["-wan"], drop["-lan"] = true, true
	}
	if s.UpstreamPref64.IsValid() || s.ISPNAT64.IsValid() || s.OnePort {
		drop["-pref64"] = true
	}
	var out []string
	for i := 0; i < len(argv); i++ {
		if drop[argv[i]] && i+1 < len(argv) {
			i++
			continue
		}
		out = append(out, argv[i])
	}
	if s.GizmoVLANFlag {
		out = append(out, "-wan-vlan", strconv.Itoa(int(s.ISPVLAN)))
	}
	return out
}

// kea6 rewrites Kea's DHCPv6 configuration for the scenario's delegation.
func (s Scenario) kea6(conf []byte) ([]byte, error) {
	if s.Name == "" || (s.DelegatedLength == PDLength && !s.DSLite) {
		return conf, nil
	}
	var m map[string]any
	if err := json.Unmarshal(conf, &m); err != nil {
		return nil, fmt.Errorf("netlab: scenario %s: kea6 config: %w", s.Name, err)
	}
	d6, _ := m["Dhcp6"].(map[string]any)
	if s.DSLite {
		// RFC 6334 §3: OPTION_AFTR_NAME, Kea's "aftr-name".
		od, _ := d6["option-data"].([]any)
		d6["option-data"] = append(od, map[string]any{"name": "aftr-name", "data": AFTRName + "."})
	}
	subnets, _ := d6["subnet6"].([]any)
	for _, sub := range subnets {
		sm, _ := sub.(map[string]any)
		if sm == nil {
			continue
		}
		if s.DelegatedLength == 0 {
			delete(sm, "pd-pools")
			continue
		}
		pools, _ := sm["pd-pools"].([]any)
		for _, p := range pools {
			if pm, ok := p.(map[string]any); ok {
				pm["delegated-len"] = s.DelegatedLength
			}
		}
	}
	return json.MarshalIndent(m, "", "  ")
}

// peers drops the ISP's IPv6 daemons when the scenario has no IPv6 and its
// DHCPv4 server when it has no IPv4, and replaces radvd by the lab's own
// RA sender (`lab isp-ra`, scenario_ra.go) when the ISP advertises a
// PREF64: Debian's radvd 2.19 cannot. The ISP's NAT64 is added by
// Lab.peers (ispNAT64Peer).
func (s Scenario) peers(ps []peer, helper string) []peer {
	if s.NoIPv6 {
		return slices.DeleteFunc(ps, func(p peer) bool { return p.name == "radvd" || p.name == "kea6" })
	}
	if s.NoIPv4 {
		ps = slices.DeleteFunc(ps, func(p peer) bool { return p.name == "kea4" })
	}
	if s.DSLite {
		ps = append(ps, peer{name: "aftr", ns: NSISP,
			argv:  []string{helper, "aftr", "-interface", ISPWAN, "-aftr", AFTR6.String()},
			ready: settled(time.Now(), 300*time.Millisecond)})
	}
	if s.UpstreamPref64.IsValid() {
		for i, p := range ps {
			if p.name == "radvd" {
				ps[i] = peer{name: "isp-ra", ns: NSISP,
					argv:  []string{helper, "isp-ra", "-interface", ISPWAN, "-pref64", s.UpstreamPref64.String()},
					ready: settled(time.Now(), 300*time.Millisecond)}
			}
		}
	}
	return ps
}

// topologySteps rewires the lab after topologySteps built the default one.
func (s Scenario) topologySteps() [][]string {
	var st [][]string
	ip := func(args string) { st = append(st, strings.Fields(args)) }
	if s.OnePort {
		// Move the ISP's WAN side from gz-gizmo onto the switch: deleting
		// uplink0 deletes its peer gizmo0 (with its addresses), so gizmo0
		// is made again, now paired with a bridge port.
		ip("-n " + NSGizmo + " link del " + GizmoWAN)
		ip(fmt.Sprintf("link add name %s address %s netns %s type veth peer name %s address %s netns %s",
			ISPWAN, MACISPWAN, NSISP, ISPSwitchPort, macSwitchBase+"02", NSSwitch))
		ip("-n " + NSSwitch + " link set " + ISPSwitchPort + " master " + Bridge + " up")
		for _, a := range []string{ISPWAN4.String() + "/24", ISPDNS4.String() + "/24", ISPWAN6.String() + "/64", ISPDNS6.String() + "/64"} {
			ip("-n " + NSISP + " addr add " + a + " dev " + ISPWAN)
		}
		ip("-n " + NSISP + " link set " + ISPWAN + " up")
		ip("-n " + NSGizmo + " link set " + GizmoLAN + " down")
		ip("-n " + NSGizmo + " link set " + GizmoLAN + " name " + s.PortNames[1])
		ip("-n " + NSGizmo + " link set " + s.PortNames[1] + " up")
		// gz-lan-v6 is a stock Linux host: the kernel's default of 0
		// ignores every RIO (docs/deployments.md).
		st = append(st, []string{"netns", "exec", NSLanV6, "sysctl", "-q", "-w",
			"net.ipv6.conf." + HostIf + ".accept_ra_rt_info_max_plen=0"})
		return st
	}
	if s.ISPVLAN != 0 {
		st = append(st, vlanTopologySteps()...)
	}
	if s.DSLite {
		st = append(st, dsliteSteps()...)
	}
	if s.DetectsRoles() {
		for i, old := range []string{GizmoWAN, GizmoLAN} {
			ip("-n " + NSGizmo + " link set " + old + " down")
			ip("-n " + NSGizmo + " link set " + old + " name " + s.PortNames[i])
			ip("-n " + NSGizmo + " link set " + s.PortNames[i] + " up")
		}
	}
	return st
}

// HonourRIOs sets how long a Route Information Option (RFC 4191) the host
// in namespace ns installs may be (accept_ra_rt_info_max_plen on its
// eth0): 0 is Linux's default and ignores them all, 128 takes every one.
func (l *Lab) HonourRIOs(ns string, maxPlen int) error {
	if maxPlen < 0 || maxPlen > 128 {
		return fmt.Errorf("netlab: RIO prefix length %d outside 0..128", maxPlen)
	}
	return setSysctls(ns, []string{fmt.Sprintf("net.ipv6.conf.%s.accept_ra_rt_info_max_plen=%d", HostIf, maxPlen)})
}

// dsliteSteps give gz-isp the AFTR's side of the softwire besides its
// program (RFC 6333 §5.7, §6): the AFTR address, 192.0.0.1/29 on the link
// to the gizmo with a permanent neighbour for the B4's 192.0.0.2 (the
// program on that link's egress puts the IPv6 header in front, so nothing
// ARPs), and the NAT44 of the softwire's IPv4 towards gz-inet.
func dsliteSteps() [][]string {
	nft := func(args string) []string {
		return append([]string{"netns", "exec", NSISP, "nft"}, strings.Fields(args)...)
	}
	return [][]string{
		strings.Fields("-n " + NSISP + " addr add " + AFTR6.String() + "/128 dev lo"),
		strings.Fields("-n " + NSISP + " addr add 192.0.0.1/29 dev " + ISPWAN),
		strings.Fields("-n " + NSISP + " neigh replace 192.0.0.2 lladdr 02:00:c0:00:00:02 dev " + ISPWAN + " nud permanent"),
		nft("add table ip gizmo-lab-aftr"),
		nft("add chain ip gizmo-lab-aftr post { type nat hook postrouting priority 100 ; }"),
		nft("add rule ip gizmo-lab-aftr post oifname " + ISPInet + " ip saddr 192.0.0.0/29 masquerade"),
	}
}
