package plan

import (
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/firewall"
)

// ManagementPorts are the gizmo's own services, reachable from the LAN
// only: SSH, DNS, DHCPv4 and DHCPv6 servers, the dashboard (:80 read-only,
// :443 with the login), the UPnP IGD (SSDP and its HTTP port) and the
// signed update API (:8080, HTTPS).
var ManagementPorts = []firewall.Port{
	{Proto: firewall.TCP, Port: 22},
	{Proto: firewall.TCP, Port: 53},
	{Proto: firewall.UDP, Port: 53},
	{Proto: firewall.UDP, Port: 67},
	{Proto: firewall.TCP, Port: 80},
	{Proto: firewall.TCP, Port: 443},
	{Proto: firewall.UDP, Port: 547},
	{Proto: firewall.UDP, Port: 1900},
	{Proto: firewall.TCP, Port: UPnPPort},
	{Proto: firewall.TCP, Port: 8080},
}

// NAT44Ports is the source port range NAT44 uses on the WAN address. The
// NAT64 program allocates below it on the same address
// (nat64.DefaultPortsHigh ends at 32767).
var NAT44Ports = firewall.PortRange{Min: 32768, Max: 65535}

// HostAddrMaxAge is how long an address a host was last seen with keeps
// its exposed ports open. Temporary addresses live two days by default
// (RFC 8981 §3.8, TEMP_VALID_LIFETIME); a week covers a host that sleeps
// over a weekend without keeping every address it ever had.
const HostAddrMaxAge = 7 * 24 * time.Hour

// Firewall is the firewall's plan: the interfaces, the LAN's prefixes, the
// owner's inbound rules resolved against the current delegation and the
// hosts' current addresses, and the pinholes apps opened where the owner
// lets them. A rule that cannot be resolved (a bad port, a token longer
// than 64 bits, a subnet outside the delegation) is left out and named in
// the error; the plan without it is still valid to apply.
func Firewall(st *state.State, now time.Time) (firewall.Plan, error) {
	n := NetworkOf(st, now)
	p := firewall.Plan{
		WAN:             st.WAN.Interface,
		ULA:             n.ULA,
		Legacy4:         n.Legacy4.Masked(),
		ManagementPorts: slices.Clone(ManagementPorts),
		NAT44Ports:      NAT44Ports,
	}
	if st.LAN.Interface != "" {
		p.LAN = []string{st.LAN.Interface}
	}
	switch {
	case n.IPv4 != nil:
		p.WANIPv4 = n.IPv4.Addr.Addr()
	case n.DSLite != nil:
		// RFC 6333 §5.7: the legacy hosts' NAT44 goes to the B4's
		// 192.0.0.2, which the AFTR translates once more.
		p.WANIPv4 = n.DSLite.IPv4()
	}
	// RFC 3704 §2.1: the WAN's own addresses are never a LAN source.
	for _, a := range st.WAN.Addrs {
		if ip := a.Addr(); ip.Is6() && !ip.Is4In6() {
			p.WANIPv6 = append(p.WANIPv6, ip.WithZone(""))
		}
	}
	if n.Delegated != nil {
		p.Delegated = n.Delegated.Prefix
	}
	// RFC 9096 §3: hosts keep addresses in a retired prefix until it is
	// invalid; they are still ours, in both directions.
	for _, r := range n.Retired {
		p.Retired = append(p.Retired, r.Prefix)
	}
	global := n.DelegatedLANs()
	p.LANPrefixes = slices.Clone(global)
	// The upstream /64 the ND proxy shares (RFC 7278 §4.3): a LAN source,
	// but the upstream's own neighbours live in it too.
	p.Shared = n.SharedLANs()
	if n.Management.IsValid() {
		p.LANPrefixes = append(p.LANPrefixes, n.Management)
	}

	var errs []error
	for i, r := range st.InboundRules {
		tok, pfx, ports, err := resolveRule(p.Delegated, r)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("plan: inbound rule %d (%s): %w", i, r.Name, err))
		case tok.IsValid():
			p.TokenRules = append(p.TokenRules, firewall.TokenRule{Token: tok, Ports: ports})
		case pfx.IsValid():
			p.PrefixRules = append(p.PrefixRules, pfx)
		}
	}

	hostRules, err := exposedPorts(st.Hosts, global, now)
	// The pinholes apps opened are host rules too: one port on one of the
	// host's addresses, while the owner allows them (PinholeAdd).
	p.HostRules = append(hostRules, pinholeRules(st, now)...)
	return p, errors.Join(append(errs, err)...)
}

// exposedPorts are the hosts' exposed ports on each of their current
// addresses in the LAN's global /64s, privacy addresses included (a host
// that was not seen with an address for HostAddrMaxAge has left it).
func exposedPorts(hosts map[string]*state.Host, global []netip.Prefix, now time.Time) ([]firewall.HostRule, error) {
	var out []firewall.HostRule
	var errs []error
	for _, mac := range slices.Sorted(maps.Keys(hosts)) {
		h := hosts[mac]
		if h == nil || len(h.Policy.ExposedPorts) == 0 {
			continue
		}
		ports, err := parsePorts(h.Policy.ExposedPorts)
		if err != nil {
			errs = append(errs, fmt.Errorf("plan: exposed ports of %s: %w", mac, err))
			continue
		}
		var addrs []netip.Addr
		for a, seen := range h.Addrs {
			if now.Sub(seen) > HostAddrMaxAge || !a.Is6() || a.Is4In6() {
				continue
			}
			a = a.WithZone("")
			if slices.ContainsFunc(global, func(l netip.Prefix) bool { return l.Contains(a) }) {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			continue
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		out = append(out, firewall.HostRule{Host: mac, Addrs: addrs, Ports: ports})
	}
	return out, errors.Join(errs...)
}

// ValidateInboundRule checks a rule the owner submits through the API
// against the current state, so that a bad rule is refused with a clear
// message instead of being stored.
func ValidateInboundRule(st *state.State, r state.InboundRule, now time.Time) error {
	var d netip.Prefix
	if n := NetworkOf(st, now); n.Delegated != nil {
		d = n.Delegated.Prefix
	}
	_, _, _, err := resolveRule(d, r)
	return err
}

// resolveRule turns a rule into a token rule or an absolute prefix. With no
// delegation, a well-formed subnet rule resolves to nothing (and no error):
// it starts to apply when a prefix arrives.
func resolveRule(delegated netip.Prefix, r state.InboundRule) (netip.Addr, netip.Prefix, []firewall.Port, error) {
	switch {
	case r.Token.IsValid() && r.Subnet != nil:
		return netip.Addr{}, netip.Prefix{}, nil, errors.New("a rule is either a token rule or a subnet rule, not both")
	case r.Token.IsValid():
		tok, err := firewall.ParseToken(r.Token.String())
		if err != nil {
			return netip.Addr{}, netip.Prefix{}, nil, err
		}
		if len(r.Ports) == 0 {
			return netip.Addr{}, netip.Prefix{}, nil, errors.New("a token rule needs ports, e.g. tcp/443")
		}
		ports, err := parsePorts(r.Ports)
		return tok, netip.Prefix{}, ports, err
	case r.Subnet != nil:
		if len(r.Ports) != 0 {
			return netip.Addr{}, netip.Prefix{}, nil, errors.New("a subnet rule opens everything; use a token rule or exposed ports for single ports")
		}
		if r.Subnet.Bits < 1 || r.Subnet.Bits > 128 {
			return netip.Addr{}, netip.Prefix{}, nil, fmt.Errorf("subnet length /%d: want 1-128", r.Subnet.Bits)
		}
		if !delegated.IsValid() {
			return netip.Addr{}, netip.Prefix{}, nil, nil
		}
		pfx, err := SubnetPrefix(delegated, *r.Subnet)
		return netip.Addr{}, pfx, nil, err
	}
	return netip.Addr{}, netip.Prefix{}, nil, errors.New("a rule needs a token or a subnet")
}

// SubnetPrefix is the Index-th /Bits inside the delegation.
func SubnetPrefix(delegated netip.Prefix, s state.Subnet) (netip.Prefix, error) {
	if s.Bits < delegated.Bits() || s.Bits > 128 {
		return netip.Prefix{}, fmt.Errorf("subnet /%d is outside the delegated prefix %v (want /%d to /128)", s.Bits, delegated, delegated.Bits())
	}
	width := uint(s.Bits - delegated.Bits())
	if width < 64 && s.Index >= 1<<width {
		return netip.Prefix{}, fmt.Errorf("subnet index %d of /%d is outside the delegated prefix %v (it has %d)", s.Index, s.Bits, delegated, uint64(1)<<width)
	}
	base := new(big.Int).SetBytes(delegated.Masked().Addr().AsSlice())
	off := new(big.Int).Lsh(new(big.Int).SetUint64(s.Index), uint(128-s.Bits))
	var b [16]byte
	new(big.Int).Or(base, off).FillBytes(b[:])
	return netip.PrefixFrom(netip.AddrFrom16(b), s.Bits), nil
}

func parsePorts(in []string) ([]firewall.Port, error) {
	var out []firewall.Port
	var errs []error
	for _, s := range in {
		p, err := firewall.ParsePort(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}
