package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Proto is an IP protocol number that inbound rules may name.
type Proto uint8

// The transport protocols an inbound rule can open. Others have no ports.
const (
	TCP Proto = 6
	UDP Proto = 17
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return strconv.Itoa(int(p))
}

// Port is one transport port of one protocol, such as tcp/443.
type Port struct {
	Proto Proto
	Port  uint16
}

func (p Port) String() string { return p.Proto.String() + "/" + strconv.Itoa(int(p.Port)) }

// ParsePort parses "tcp/443" or "udp/53", the form the API and the
// dashboard use.
func ParsePort(s string) (Port, error) {
	proto, num, ok := strings.Cut(s, "/")
	if !ok {
		return Port{}, fmt.Errorf("firewall: port %q: want proto/number, e.g. tcp/443", s)
	}
	var p Port
	switch strings.ToLower(proto) {
	case "tcp":
		p.Proto = TCP
	case "udp":
		p.Proto = UDP
	default:
		return Port{}, fmt.Errorf("firewall: port %q: protocol must be tcp or udp", s)
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 {
		return Port{}, fmt.Errorf("firewall: port %q: number must be 1-65535", s)
	}
	p.Port = uint16(n)
	return p, nil
}

// ParseToken parses an interface identifier written like ip-token(8) does,
// e.g. "::80" or "::1:2:3:4". Only the low 64 bits may be set.
func ParseToken(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("firewall: token %q: %w", s, err)
	}
	return a, validateToken(a)
}

func validateToken(a netip.Addr) error {
	if !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return fmt.Errorf("firewall: token %v: must be an IPv6 interface identifier such as ::80", a)
	}
	b := a.As16()
	for _, x := range b[:8] {
		if x != 0 {
			return fmt.Errorf("firewall: token %v is longer than 64 bits: an interface identifier is the low 64 bits only (RFC 4291 §2.5.1)", a)
		}
	}
	if a == netip.IPv6Unspecified() {
		return fmt.Errorf("firewall: token %v: the all-zero interface identifier is the subnet-router anycast address (RFC 4291 §2.6.1)", a)
	}
	return nil
}

// TokenRule opens Ports on every address in a LAN prefix whose low 64 bits
// are Token, like a host that set `ip token set ::80`. It survives
// renumbering because it never names the prefix.
type TokenRule struct {
	Token netip.Addr
	Ports []Port
}

// HostRule opens Ports on every current address of one host, privacy
// addresses included. The daemon fills Addrs from the neighbour table; the
// ruleset follows them on every re-render.
type HostRule struct {
	Host  string // the host's key (its MAC address), for errors and logs
	Addrs []netip.Addr
	Ports []Port
}

// Plan is everything the firewall needs, computed by the daemon from its
// state (gizmo/plan.Firewall). All prefixes are absolute: a renumbering
// gives a new Plan and a new ruleset.
type Plan struct {
	WAN string   // uplink interface, "uplink0"
	LAN []string // LAN interfaces (the bridge), "lan0"

	// Delegated is the whole delegated prefix and Retired the prefixes that
	// are being phased out (RFC 9096). Packets from the WAN claiming them as
	// source are spoofed: they live behind us (RFC 7084's CE router
	// filtering, BCP 38 seen from the inside).
	Delegated netip.Prefix
	Retired   []netip.Prefix
	// LANPrefixes are the /64s on the LAN: the global ones (current and
	// retired) and the ULA management /64. A LAN source outside them (and
	// outside link-local and ::) is spoofed (BCP 38, RFC 2827).
	LANPrefixes []netip.Prefix
	// Shared are /64s the LAN shares with the WAN link through an ND proxy
	// (RFC 7278 §4.3, RFC 4389): LAN hosts use them as sources, like
	// LANPrefixes, but the upstream router and other WAN-side neighbours
	// live in them too, so a WAN source inside them is not spoofed.
	Shared []netip.Prefix
	// ULA is the gizmo's whole ULA /48. It never comes from the WAN
	// (RFC 4193 §4.1, RFC 6092 REC-4).
	ULA netip.Prefix

	// Legacy4 is the LAN's legacy IPv4 pool, the only source NAT44 serves.
	Legacy4 netip.Prefix
	// WANIPv4 is the WAN's IPv4 address, also the NAT64 pool address, and
	// WANIPv6 the WAN's own global IPv6 addresses. No packet from the LAN
	// carries one as its source (the NAT64 program redirects what it
	// translates, it never hands it to the stack): one that does is
	// dropped and counted (CounterDropLANWAN).
	WANIPv4 netip.Addr
	WANIPv6 []netip.Addr
	// NAT44Ports, when set, is the source port range NAT44 may use on the
	// WAN address. The NAT64 program allocates from the same address, so
	// the two must not overlap (services/nat64 leaves 32768-65535 to the
	// kernel). Zero: the kernel's choice, which keeps the host's port when
	// it is free.
	NAT44Ports PortRange
	// NAT64Mark, when not zero, is the skb mark the NAT64 program sets on
	// packets it translated 4→6 and passed to the stack instead of
	// redirecting. They arrive on the WAN with a Pref64 source and would
	// otherwise be dropped as unsolicited.
	NAT64Mark uint32

	// ManagementPorts are the gizmo's own services (dashboard, gokrazy UI,
	// DNS, DHCP, SSH): reachable from the LAN, dropped and counted on the WAN.
	ManagementPorts []Port

	TokenRules  []TokenRule
	PrefixRules []netip.Prefix // inside Delegated; everything inbound allowed
	HostRules   []HostRule
}

// maxIfname is IFNAMSIZ-1: the kernel's limit on interface names.
const maxIfname = 15

// Validate checks a plan before it replaces the running ruleset. A plan
// that fails leaves the old ruleset in place.
func Validate(p Plan) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("firewall: "+format, args...)) }

	checkIf := func(role, name string) {
		if name == "" || len(name) > maxIfname || strings.ContainsAny(name, "/ \x00") {
			bad("%s interface %q: not a valid interface name", role, name)
		}
	}
	checkIf("WAN", p.WAN)
	if len(p.LAN) == 0 {
		bad("no LAN interface")
	}
	for _, l := range p.LAN {
		checkIf("LAN", l)
		if l == p.WAN {
			bad("interface %q is both WAN and LAN", l)
		}
	}
	check6 := func(what string, q netip.Prefix, optional bool) {
		if !q.IsValid() {
			if !optional {
				bad("%s: missing", what)
			}
			return
		}
		if !q.Addr().Is6() || q.Addr().Is4In6() || q.Masked() != q {
			bad("%s %v: not an IPv6 prefix in canonical form", what, q)
		}
	}
	check6("delegated prefix", p.Delegated, true)
	for _, r := range p.Retired {
		check6("retired prefix", r, false)
	}
	for _, l := range p.LANPrefixes {
		check6("LAN prefix", l, false)
		if l.Bits() != 64 {
			// SLAAC needs a /64 (RFC 4862 §5.5.3, RFC 7421), and the
			// rules look LAN addresses up by their /64.
			bad("LAN prefix %v: must be a /64", l)
		}
	}
	for _, l := range p.Shared {
		check6("shared prefix", l, false)
		if l.Bits() != 64 {
			bad("shared prefix %v: must be a /64", l)
		}
	}
	check6("ULA", p.ULA, true)
	if p.Legacy4.IsValid() && (!p.Legacy4.Addr().Is4() || p.Legacy4.Masked() != p.Legacy4) {
		bad("legacy pool %v: not an IPv4 prefix in canonical form", p.Legacy4)
	}
	if p.WANIPv4.IsValid() && !p.WANIPv4.Is4() {
		bad("WAN IPv4 %v: not an IPv4 address", p.WANIPv4)
	}
	for _, a := range p.WANIPv6 {
		if !a.Is6() || a.Is4In6() {
			bad("WAN IPv6 %v: not an IPv6 address", a)
		}
	}
	checkPorts := func(what string, ports []Port, need bool) {
		if need && len(ports) == 0 {
			bad("%s: no ports", what)
		}
		for _, pt := range ports {
			if pt.Proto != TCP && pt.Proto != UDP {
				bad("%s: port %v: protocol must be tcp or udp", what, pt)
			}
			if pt.Port == 0 {
				bad("%s: port %v: number must be 1-65535", what, pt)
			}
		}
	}
	checkPorts("management", p.ManagementPorts, false)
	if r := p.NAT44Ports; r != (PortRange{}) && (r.Min == 0 || r.Max < r.Min) {
		bad("NAT44 port range %d-%d: want 1 <= min <= max", r.Min, r.Max)
	}
	for _, r := range p.TokenRules {
		if err := validateToken(r.Token); err != nil {
			errs = append(errs, err)
		}
		checkPorts("token rule "+r.Token.String(), r.Ports, true)
	}
	for _, q := range p.PrefixRules {
		check6("prefix rule", q, false)
		if !p.Delegated.IsValid() || q.Bits() < p.Delegated.Bits() || !p.Delegated.Contains(q.Addr()) {
			bad("prefix rule %v: outside the delegated prefix %v", q, p.Delegated)
		}
	}
	for _, h := range p.HostRules {
		checkPorts("host "+h.Host, h.Ports, true)
		for _, a := range h.Addrs {
			if !a.Is6() || a.Is4In6() || a.Zone() != "" {
				bad("host %s: address %v: exposed ports need a global IPv6 address", h.Host, a)
			}
		}
	}
	return errors.Join(errs...)
}
