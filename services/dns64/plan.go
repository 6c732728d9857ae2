package dns64

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Source names the way a host learned the resolver address it queries.
type Source string

const (
	SourceRDNSS  Source = "rdnss"  // RA RDNSS option (RFC 8106)
	SourceDHCPv6 Source = "dhcpv6" // DHCPv6 DNS Recursive Name Server option (RFC 3646)
	SourceDHCPv4 Source = "dhcpv4" // DHCPv4 option 6 (RFC 2132)
	// SourceOther counts queries to an address no listener hands out.
	SourceOther Source = "other"
)

// Listener is one address the service answers on and the information source
// that hands this address to hosts.
type Listener struct {
	Addr   netip.AddrPort
	Source Source
}

// ClientPolicy is what the service needs to know about one client address.
type ClientPolicy struct {
	// MAC identifies the host; statistics are kept per MAC, so that all of a
	// host's (privacy) addresses count together.
	MAC string
	// DNS64 on: AAAA answers are synthesized for IPv4-only names.
	DNS64 bool
}

// Plan is everything the daemon tells the service. It is a plain value; the
// newest one given to Update wins.
type Plan struct {
	// Pref64 is the active NAT64 prefix (RFC 6052: /32, /40, /48, /56, /64
	// or /96). Invalid means no synthesis at all.
	Pref64 netip.Prefix
	// Exclude are IPv6 ranges whose AAAA records are ignored (RFC 6147
	// §5.1.4). ::ffff:0:0/96 is always excluded.
	Exclude []netip.Prefix
	// Upstreams are the resolvers to forward to, most preferred first.
	Upstreams []netip.AddrPort
	// Listen are the addresses to serve on, one per information source.
	Listen []Listener
	// Clients maps client addresses to their host and policy.
	Clients map[netip.Addr]ClientPolicy
	// DefaultDNS64 is the policy for clients not in Clients.
	DefaultDNS64 bool
	// LocalDomain is the zone answered locally and never sent upstream,
	// "home.arpa." by default (RFC 8375).
	LocalDomain string
	// LocalNames are the names in LocalDomain and their addresses, e.g.
	// "laptop.home.arpa." → [203.0.113.130, 2001:db8:1000::1234]. PTR
	// records for the addresses are derived from them.
	LocalNames map[string][]netip.Addr
	// LocalSynthesized are AAAA records that stand for a local IPv4-only
	// host's address through the NAT64, e.g. "printer.home.arpa." →
	// [2001:db8:64::cb00:7182]: the synthesis of RFC 6147 §5.1.7 for names
	// that no upstream knows, made by the plan, which knows the prefix
	// that reaches the LAN. Like any synthesized AAAA they go only to
	// clients with DNS64 on; PTR records are derived from them too.
	LocalSynthesized map[string][]netip.Addr
	// LocalNetworks are the LAN prefixes whose reverse names are answered
	// locally (RFC 6303 spirit: private reverse lookups stay on the LAN).
	LocalNetworks []netip.Prefix
}

// mappedPrefix is always excluded (RFC 6147 §5.1.4).
var mappedPrefix = netip.MustParsePrefix("::ffff:0:0/96")

// compiledPlan is a Plan with its lookups precomputed; it is immutable once
// built and swapped atomically, so a query sees one consistent plan.
type compiledPlan struct {
	Plan
	pref64Zone  string // reverse zone of Pref64, e.g. "4.6.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
	localDomain string
	names       map[string][]netip.Addr // canonical name → addresses
	synth       map[string][]netip.Addr // canonical name → synthesized AAAA
	ptrs        map[string]string       // canonical reverse name → canonical name
	sources     map[netip.AddrPort]Source
	sourceAddrs map[netip.Addr]Source
	upstreams   []string // "host:port" for the DNS client
}

func compile(p Plan) (*compiledPlan, error) {
	c := &compiledPlan{
		Plan:        p,
		names:       map[string][]netip.Addr{},
		synth:       map[string][]netip.Addr{},
		ptrs:        map[string]string{},
		sources:     map[netip.AddrPort]Source{},
		sourceAddrs: map[netip.Addr]Source{},
	}
	if p.Pref64.IsValid() {
		if !p.Pref64.Addr().Is6() || !validPref64Len(p.Pref64.Bits()) {
			return nil, fmt.Errorf("dns64: plan: %s is not an RFC 6052 prefix", p.Pref64)
		}
		c.Pref64 = p.Pref64.Masked()
		c.pref64Zone = reverseZone6(c.Pref64)
	}
	c.Exclude = append([]netip.Prefix{mappedPrefix}, p.Exclude...)
	c.localDomain = dns.CanonicalName(p.LocalDomain)
	if p.LocalDomain == "" {
		c.localDomain = "home.arpa."
	}
	for name, addrs := range p.LocalNames {
		n := dns.CanonicalName(name)
		if _, ok := dns.IsDomainName(n); !ok || !dns.IsSubDomain(c.localDomain, n) {
			return nil, fmt.Errorf("dns64: plan: local name %q is not inside %s", name, c.localDomain)
		}
		c.names[n] = append(c.names[n], addrs...)
		for _, a := range addrs {
			if r, err := dns.ReverseAddr(a.Unmap().String()); err == nil {
				c.ptrs[r] = n
			}
		}
	}
	for name, addrs := range p.LocalSynthesized {
		n := dns.CanonicalName(name)
		if _, ok := dns.IsDomainName(n); !ok || !dns.IsSubDomain(c.localDomain, n) {
			return nil, fmt.Errorf("dns64: plan: local name %q is not inside %s", name, c.localDomain)
		}
		for _, a := range addrs {
			if !a.Is6() || a.Is4In6() {
				return nil, fmt.Errorf("dns64: plan: synthesized %s for %q is not IPv6", a, name)
			}
			if r, err := dns.ReverseAddr(a.String()); err == nil {
				c.ptrs[r] = n
			}
		}
		c.synth[n] = append(c.synth[n], addrs...)
		if _, ok := c.names[n]; !ok {
			// The name exists for every client, with or without DNS64.
			c.names[n] = nil
		}
	}
	for _, l := range p.Listen {
		c.sources[l.Addr] = l.Source
		c.sourceAddrs[l.Addr.Addr().Unmap()] = l.Source
	}
	for _, u := range p.Upstreams {
		c.upstreams = append(c.upstreams, u.String())
	}
	return c, nil
}

// reverseZone6 returns the ip6.arpa zone of a nibble-aligned prefix (all
// RFC 6052 lengths are multiples of 4).
func reverseZone6(p netip.Prefix) string {
	b := p.Addr().As16()
	nibbles := p.Bits() / 4
	var sb strings.Builder
	for i := nibbles - 1; i >= 0; i-- {
		v := b[i/2]
		if i%2 == 0 {
			v >>= 4
		}
		fmt.Fprintf(&sb, "%x.", v&0xf)
	}
	sb.WriteString("ip6.arpa.")
	return sb.String()
}

// policy returns the client's host key and whether DNS64 is on for it.
func (c *compiledPlan) policy(client netip.Addr) (host hostKey, dns64 bool) {
	if cp, ok := c.Clients[client]; ok {
		if cp.MAC != "" {
			return hostKey{mac: cp.MAC}, cp.DNS64
		}
		return hostKey{addr: client}, cp.DNS64
	}
	return hostKey{addr: client}, c.DefaultDNS64
}

// source returns the information source of the address a query arrived on.
func (c *compiledPlan) source(local netip.AddrPort) Source {
	if s, ok := c.sources[local]; ok {
		return s
	}
	if s, ok := c.sourceAddrs[local.Addr()]; ok {
		return s
	}
	return SourceOther
}

// excluded reports whether an AAAA address must be ignored (RFC 6147 §5.1.4).
func (c *compiledPlan) excluded(a netip.Addr) bool {
	for _, p := range c.Exclude {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Validate reports why Update would ignore p, or nil.
func (p Plan) Validate() error {
	_, err := compile(p)
	return err
}
