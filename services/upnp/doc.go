// Package upnp lets apps on the LAN ask for their own inbound IPv6 ports:
// a UPnP IGD:2 (InternetGatewayDevice:2) whose one service is
// WANIPv6FirewallControl:1, within the policy the owner set per host.
//
// # What it serves
//
//   - SSDP (UDA 1.1 §1) on UDP 1900 of the LAN interface only (the sockets
//     are bound to it): M-SEARCH for ssdp:all, upnp:rootdevice, one of the
//     devices' UUIDs, or a device or service type of the same or a lower
//     version is answered unicast after a random delay below MX (at most a
//     second: the gizmo is the one device answering); NOTIFY ssdp:alive at
//     start and every 15 minutes, ssdp:byebye at stop, on ff02::c (and
//     ff05::c, joined on the LAN only) and on 239.255.255.250.
//   - The device description, the service description (SCPD) and SOAP
//     control over HTTP on Plan.Port of the gizmo's own LAN addresses,
//     listeners bound to the LAN interface, never the WAN (the firewall
//     drops the port there too).
//   - WANIPv6FirewallControl:1: GetFirewallStatus, GetOutboundPinholeTimeout
//     (conntrack's timeouts), AddPinhole, UpdatePinhole, DeletePinhole and
//     CheckPinholeWorking, which is 1 while conntrack tracks a flow that
//     came in through the pinhole and 709 NoPacketSent otherwise (upnpc -U
//     asks it before it renews). GetPinholePackets is answered with UPnP
//     error 602 and left out of the SCPD: a pinhole's packets are counted
//     nowhere. The firewall's rules see only a flow's first packets, since
//     the fast path (services/fastpath) forwards established flows past
//     netfilter and conntrack, and the ruleset is replaced whole, counters
//     included, whenever it changes (another pinhole, a host's new
//     address). A wrong count would be worse than none.
//     FirewallEnabled and InboundPinholeAllowed are not evented (no GENA
//     subscriptions): the first never changes and the second differs per
//     host, so each host reads its own with GetFirewallStatus.
//
// The service only speaks the protocol. Who may open what is the daemon's
// decision (gizmo/plan), through Backend: the pinholes live in the
// daemon's state and become firewall rules like a host's exposed ports.
//
// # No IPv4 port mapping
//
// WANIPConnection (AddPortMapping) is not offered. The gizmo's LAN is
// IPv6-first: an app reaches the internet and is reached over IPv6, and a
// legacy IPv4-only host stays behind NAT44, where an inbound mapping would
// hand one host the household's one IPv4 address port by port. A
// consequence for clients: miniupnpc counts a gateway as a "valid
// connected IGD" only with a connected WANIPConnection, so `upnpc -6` needs
// -i ("try to use also disconnected IGD") here.
//
// # The control point's address
//
// WANIPv6FirewallControl:1 recommends that an unauthenticated control
// point only open pinholes to its own address and to ports from 1024 up
// (§2.6.3.3, AddPinhole's service requirements). The daemon requires that
// the SOAP request's source is InternalClient and an address of a known
// host in the LAN's delegated /64s. That is why the IPv6 LOCATION names the
// gizmo's address in the delegated LAN /64 rather than its ULA: a host
// talks to a global address from a global one (RFC 6724 §5 rule 6), the
// address an app wants the pinhole on.
//
// # Bounds
//
// Every request is bounded: SSDP datagrams and HTTP headers of 8 KiB, SOAP
// bodies of 8 KiB with at most 32 arguments; per-client and overall token
// buckets for searches and for control requests; at most 16 open HTTP
// connections and 64 search answers waiting for their delay; header, read,
// write and idle timeouts. Each refusal and drop is counted by reason
// (Stats).
package upnp
