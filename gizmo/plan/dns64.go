package plan

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dns64"
)

// DNS64 is the plan for the LAN resolver: the active NAT64 prefix (none,
// that is no synthesis, on a line without any IPv4: state.LineIPv6Only), the
// upstreams (st.UpstreamDNS already holds the -dns-upstream override or what
// the WAN taught us), one listening address per information source, the
// per-host DNS64 policy keyed by every address a host was seen with, and the
// home.arpa names of the hosts and of the gizmo itself.
func DNS64(st *state.State, now time.Time) dns64.Plan {
	n := NetworkOf(st, now)
	p := dns64.Plan{
		Pref64:       st.Pref64,
		DefaultDNS64: state.DefaultHostPolicy().DNS64,
		LocalDomain:  LocalDomain + ".",
	}
	if !p.Pref64.IsValid() {
		p.Pref64 = state.WellKnownPref64
	}
	if st.Line == state.LineIPv6Only {
		// No NAT64 and no IPv4 anywhere: a synthesized AAAA would lead
		// nowhere, while a host that gets the plain answer sees at once
		// that the name has no IPv6.
		p.Pref64 = netip.Prefix{}
	}
	own := map[netip.Addr]bool{}
	p.Listen = dnsListeners(n.DNS, own)
	for _, u := range st.UpstreamDNS {
		// Never forward to ourselves: a WAN that echoes our own address
		// back would make a loop.
		if u.IsValid() && !own[u.Addr().Unmap()] && !slices.Contains(p.Upstreams, u) {
			p.Upstreams = append(p.Upstreams, u)
		}
	}
	p.Clients = dnsClients(st.Hosts)
	p.LocalNames = hostNames(st, p.Clients)
	// The LAN's IPv4-only devices, for the IPv6-only hosts (lanlegacy.go).
	p.LocalSynthesized = lanLegacyNames(LANLegacy(st, now), p.LocalNames, p.Clients, st.Hosts)

	// gizmo.home.arpa is the management address plus the legacy one,
	// where the dashboard is reachable.
	gizmo := RouterFQDN + "."
	if n.RouterULA.IsValid() {
		p.LocalNames[gizmo] = append(p.LocalNames[gizmo], n.RouterULA)
	}
	if n.Legacy4.IsValid() {
		p.LocalNames[gizmo] = append(p.LocalNames[gizmo], n.Legacy4.Addr())
		p.LocalNetworks = append(p.LocalNetworks, n.Legacy4.Masked())
	}
	// Every network of the LAN's, so that reverse lookups of LAN
	// addresses stay on the LAN (as RFC 6303 asks for private ranges): the
	// ULA, the current and retired delegations' /64s and the shared ones.
	if n.ULA.IsValid() {
		p.LocalNetworks = append(p.LocalNetworks, n.ULA)
	}
	p.LocalNetworks = append(p.LocalNetworks, n.DelegatedLANs()...)
	p.LocalNetworks = append(p.LocalNetworks, n.SharedLANs()...)
	return p
}

// dnsListeners are the DNS service's addresses, one per information
// source; own collects them.
func dnsListeners(a state.DNSAddrs, own map[netip.Addr]bool) []dns64.Listener {
	var out []dns64.Listener
	for _, l := range []struct {
		addr netip.Addr
		src  dns64.Source
	}{
		{a.RDNSS, dns64.SourceRDNSS},
		{a.DHCPv6, dns64.SourceDHCPv6},
		{a.DHCPv4, dns64.SourceDHCPv4},
	} {
		// Two sources on one address would make the per-source counts lie;
		// the first keeps it.
		if !l.addr.IsValid() || own[l.addr] {
			continue
		}
		own[l.addr] = true
		out = append(out, dns64.Listener{Addr: netip.AddrPortFrom(l.addr, 53), Source: l.src})
	}
	return out
}

// dnsClients is each host's DNS64 policy, keyed by every address the host
// was seen with and its IPv4 lease. When a (privacy) address moved between
// hosts, the host that used it last owns it. "Last" compares the sightings
// as times: they come from time.Now, so Go compares their monotonic
// readings, and a step of the wall clock between two sightings does not
// reorder them.
func dnsClients(hosts map[string]*state.Host) map[netip.Addr]dns64.ClientPolicy {
	out := map[netip.Addr]dns64.ClientPolicy{}
	seen := map[netip.Addr]time.Time{}
	for _, mac := range slices.Sorted(maps.Keys(hosts)) {
		h := hosts[mac]
		policy := dns64.ClientPolicy{MAC: mac, DNS64: h.Policy.DNS64}
		claim := func(a netip.Addr, at time.Time) {
			if !a.IsValid() {
				return
			}
			if prev, ok := seen[a]; ok && !at.After(prev) {
				return
			}
			seen[a] = at
			out[a] = policy
		}
		for a, t := range h.Addrs {
			claim(a.Unmap(), t)
		}
		claim(h.IPv4Lease, h.LastSeen)
	}
	return out
}

// hostNames are the hosts' names in LocalDomain with the addresses each
// host still owns (clients): HostNames decides who holds which name.
func hostNames(st *state.State, clients map[netip.Addr]dns64.ClientPolicy) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	held, _ := HostNames(st)
	for mac, label := range held {
		h := st.Hosts[mac]
		if h == nil {
			continue // a remembered host holds its name but has no address
		}
		fqdn := label + "." + LocalDomain + "."
		addrs := slices.Collect(maps.Keys(h.Addrs))
		addrs = append(addrs, h.IPv4Lease)
		for _, a := range addrs {
			// Only addresses the host still owns; link-local ones are
			// useless in DNS (no zone index).
			if a = a.Unmap(); a.IsValid() && !a.IsLinkLocalUnicast() && clients[a].MAC == mac {
				out[fqdn] = append(out[fqdn], a)
			}
		}
	}
	for name, addrs := range out {
		// The lease is among the addresses the host was seen with too; an
		// RRset holds no record twice (RFC 2181 §5).
		slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
		out[name] = slices.Compact(addrs)
	}
	return out
}

// nameClaim is one host's claim to a label in LocalDomain.
type nameClaim struct {
	mac   string
	owner bool      // the owner set the name (policy), rather than the host
	since time.Time // when the host first announced it
}

// HostNames decides which host holds which label in LocalDomain (held,
// by MAC) and which hosts asked for a label another one holds (taken, by
// MAC: the label each wanted). A name in use stays with its holder: a
// device announcing a name someone else has (DHCPv4 option 12/81) must not
// take over its DNS name. So of several claims to one label, a name the
// owner set (the host's policy) wins over an announced one, an earlier
// claim over a later one (HostnameSince; FirstSeen for a record that
// predates it), and the lower MAC breaks a tie; the others get no name.
// Remembered hosts keep their claims while away. RouterName is the
// gizmo's own.
func HostNames(st *state.State) (held, taken map[string]string) {
	claims := map[string][]nameClaim{}
	claim := func(mac, announced, policy string, since, firstSeen time.Time) {
		name, owner := announced, false
		if policy != "" {
			name, owner, since = policy, true, time.Time{}
		}
		label := hostLabel(name)
		if label == "" {
			return
		}
		if since.IsZero() {
			since = firstSeen
		}
		claims[label] = append(claims[label], nameClaim{mac: mac, owner: owner, since: since})
	}
	for mac, h := range st.Hosts {
		claim(mac, h.Hostname, h.Policy.Hostname, h.HostnameSince, h.FirstSeen)
	}
	for mac, r := range st.Remembered {
		claim(mac, r.Hostname, r.Policy.Hostname, r.HostnameSince, r.FirstSeen)
	}
	held, taken = map[string]string{}, map[string]string{}
	for label, cs := range claims {
		slices.SortFunc(cs, func(a, b nameClaim) int {
			if a.owner != b.owner {
				if a.owner {
					return -1
				}
				return 1
			}
			return cmp.Or(a.since.Compare(b.since), cmp.Compare(a.mac, b.mac))
		})
		first := 0
		if label == RouterName {
			first = -1 // nobody's but the gizmo's
		}
		for i, c := range cs {
			if i == first {
				held[c.mac] = label
			} else {
				taken[c.mac] = label
			}
		}
	}
	return held, taken
}

// hostLabel turns a host's announced name into one DNS label (RFC 1123
// §2.1: letters, digits, hyphens, at most 63 octets, no hyphen at the ends);
// only the first label of a dotted name is used.
func hostLabel(name string) string {
	name, _, _ = strings.Cut(strings.ToLower(name), ".")
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-', r == '_', r == ' ':
			b.WriteByte('-')
		}
	}
	label := strings.Trim(b.String(), "-")
	if len(label) > 63 {
		label = strings.TrimRight(label[:63], "-")
	}
	return label
}
