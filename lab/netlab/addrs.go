package netlab

import "net/netip"

// Namespace names. They are fixed because tests and outside checks use them
// with `ip netns exec`; renaming one breaks them.
const (
	NSInet      = "gz-inet"
	NSISP       = "gz-isp"
	NSGizmo     = "gz-gizmo"
	NSSwitch    = "gz-switch"
	NSLanV6     = "gz-lan-v6"
	NSLanLegacy = "gz-lan-legacy"
	NSLanCLAT   = "gz-lan-clat"
)

// Namespaces returns every namespace the lab creates, in creation order.
func Namespaces() []string {
	return []string{NSInet, NSISP, NSGizmo, NSSwitch, NSLanV6, NSLanLegacy, NSLanCLAT}
}

// Interface names inside the namespaces.
const (
	GizmoWAN = "uplink0" // gz-gizmo, towards gz-isp
	GizmoLAN = "lan0"    // gz-gizmo, towards the gz-switch bridge
	HostIf   = "eth0"    // every LAN host, and gz-inet towards gz-isp
	ISPWAN   = "gizmo0"  // gz-isp, towards the gizmo
	ISPInet  = "inet0"   // gz-isp, towards gz-inet
	Bridge   = "br0"     // gz-switch
	CLATTun  = "clat"    // gz-lan-clat, tayga's tun
	// ISPNAT64Tun is the ISP's NAT64's tun in gz-isp (scenarios with
	// Scenario.ISPNAT64).
	ISPNAT64Tun = "nat64"
)

// Addresses of the lab. All are documentation prefixes (RFC 3849, RFC 5737).
var (
	// The ISP's side of the WAN link and its DNS service.
	ISPWAN6    = netip.MustParseAddr("2001:db8:0:1::1")
	ISPWAN4    = netip.MustParseAddr("192.0.2.1")
	ISPDNS6    = netip.MustParseAddr("2001:db8:0:1::53")
	ISPDNS4    = netip.MustParseAddr("192.0.2.53")
	WANPrefix6 = netip.MustParsePrefix("2001:db8:0:1::/64")
	WANPrefix4 = netip.MustParsePrefix("192.0.2.0/24")
	// AFTR6 is the ISP's DS-Lite AFTR in the "ds-lite" scenario
	// (aftr.example.test, named by Kea's option 64), on gz-isp's
	// loopback; AFTRName its name.
	AFTR6    = netip.MustParseAddr("2001:db8:0:5::1")
	AFTRName = "aftr.example.test"
	// DHCPv4 pool on the WAN link.
	WANPool4First = netip.MustParseAddr("192.0.2.100")
	WANPool4Last  = netip.MustParseAddr("192.0.2.199")

	// The ISP delegates /56s from this /36 and routes all of it to the
	// gizmo's WAN link-local address.
	PDAggregate = netip.MustParsePrefix("2001:db8:1000::/36")
	// Renumber switches Kea between these two pools inside PDAggregate.
	PDPoolA = netip.MustParsePrefix("2001:db8:1000::/40")
	PDPoolB = netip.MustParsePrefix("2001:db8:1100::/40")
	// PDLength is the length of each delegated prefix.
	PDLength = 56

	// The internet's servers (all in gz-inet).
	V4OnlyServer = netip.MustParseAddr("198.51.100.80")
	DualServer4  = netip.MustParseAddr("203.0.113.10")
	DualServer6  = netip.MustParseAddr("2001:db8:ffff::10")
	V6OnlyServer = netip.MustParseAddr("2001:db8:ffff::6")

	// Pref64 is the lab's NAT64 prefix (a network-specific prefix: the
	// well-known prefix must not carry documentation addresses, RFC 6052 §3.1).
	Pref64 = netip.MustParsePrefix("2001:db8:64::/96")

	// GizmoLANIPv4 is the gizmo's legacy LAN address (pool 203.0.113.128/25).
	GizmoLANIPv4 = netip.MustParsePrefix("203.0.113.129/25")

	// Transit link gz-isp <-> gz-inet.
	ISPInet6  = netip.MustParseAddr("2001:db8:0:2::1")
	InetISP6  = netip.MustParseAddr("2001:db8:0:2::2")
	ISPInet4  = netip.MustParseAddr("198.51.100.1")
	InetRoute = netip.MustParsePrefix("2001:db8:ffff::/48")
	DualNet4  = netip.MustParsePrefix("203.0.113.0/25")
)

// LanLegacyHost is the host name gz-lan-legacy sends in DHCPv4, and so
// its name in the gizmo's DNS (lan-legacy.home.arpa); its web server names
// itself so too.
const LanLegacyHost = "lan-legacy"

// Fixed MAC addresses, so that EUI-64 link-local addresses are stable
// (addr_gen_mode 0) and the ISP can route the delegation to the gizmo.
const (
	MACInetEth0   = "02:00:00:00:00:02"
	MACISPInet    = "02:00:00:00:00:01"
	MACISPWAN     = "02:00:00:00:01:01"
	MACGizmoWAN   = "02:00:00:00:01:02"
	MACGizmoLAN   = "02:00:00:00:02:01"
	MACLanV6      = "02:00:00:00:02:10"
	MACLanLegacy  = "02:00:00:00:02:20"
	MACLanCLAT    = "02:00:00:00:02:30"
	MACBridge     = "02:00:00:00:02:ff"
	macSwitchBase = "02:00:00:00:03:"
)

// Link-local addresses that follow from the fixed MACs (EUI-64, RFC 4291
// Appendix A: the universal/local bit of 02: is inverted to 00:).
var (
	GizmoWANLinkLocal = netip.MustParseAddr("fe80::ff:fe00:102")
	ISPWANLinkLocal   = netip.MustParseAddr("fe80::ff:fe00:101")
	GizmoLANLinkLocal = netip.MustParseAddr("fe80::ff:fe00:201")
)

// A Server is one of the internet's HTTP servers.
type Server struct {
	Name string // the example.test label: v4only, dual, v6only
	Addr netip.Addr
}

// Servers returns the four HTTP server addresses in gz-inet.
func Servers() []Server {
	return []Server{
		{"v4only", V4OnlyServer},
		{"dual", DualServer4},
		{"dual", DualServer6},
		{"v6only", V6OnlyServer},
	}
}
