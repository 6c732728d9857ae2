package rollup

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"strings"

	"codeberg.org/monostack/gizmo/services/dns64"
	"codeberg.org/monostack/gizmo/web"
)

// topLegacyNames bounds the dashboard's list of names that still needed
// synthesis.
const topLegacyNames = 20

// dnsInsights turns the DNS64 service's counters into the dashboard's.
// Queries counted under an address (made before the host's MAC was known)
// are added to the host that owns the address now.
func dnsInsights(st dns64.Stats, owners Owners, ins *web.Insights) {
	ins.DNS = web.DNSInsights{
		Queries: st.Queries, Synthesized: st.Synthesized, CacheHits: st.CacheHits, CacheMisses: st.CacheMisses,
		ByType: st.ByType, BySource: map[string]uint64{},
	}
	for src, n := range st.BySource {
		ins.DNS.BySource[string(src)] = n
	}
	top := map[string]uint64{}
	for key, h := range st.Hosts {
		for _, nc := range h.TopSynthesized {
			top[nc.Name] += nc.Count
		}
		if _, err := net.ParseMAC(key); err != nil {
			a, err := netip.ParseAddr(key)
			if err != nil || owners[a] == "" {
				continue // an address without a known MAC
			}
			key = owners[a]
		}
		hi := ins.Hosts[key]
		hi.DNSQueries += h.Queries
		hi.Synthesized += h.Synthesized
		if hi.DNSSources == nil {
			hi.DNSSources = map[string]uint64{}
		}
		for src, n := range h.BySource {
			hi.DNSSources[string(src)] += n
		}
		for _, nc := range h.TopSynthesized {
			hi.TopLegacy = append(hi.TopLegacy, web.NameCount{Name: nc.Name, Count: nc.Count})
		}
		ins.Hosts[key] = hi
	}
	for name, n := range top {
		ins.DNS.TopLegacy = append(ins.DNS.TopLegacy, web.NameCount{Name: name, Count: n})
	}
	slices.SortFunc(ins.DNS.TopLegacy, func(a, b web.NameCount) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(ins.DNS.TopLegacy) > topLegacyNames {
		ins.DNS.TopLegacy = ins.DNS.TopLegacy[:topLegacyNames]
	}
}
