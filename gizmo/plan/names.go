package plan

// LocalDomain is the LAN's domain (RFC 8375). The RA's DNSSL, DHCPv6's and
// DHCPv4's domain options, the DNS64's local zone and the dashboard's
// hostnames all take it from here.
const LocalDomain = "home.arpa"

// RouterName is the gizmo's own name in LocalDomain: the dashboard answers
// at RouterFQDN.
const (
	RouterName = "gizmo"
	RouterFQDN = RouterName + "." + LocalDomain
)
