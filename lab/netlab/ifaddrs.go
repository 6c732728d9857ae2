package netlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"
)

// An Addr is an address on an interface inside a namespace.
type Addr struct {
	Prefix     netip.Prefix
	Scope      string // "global", "link", "host"
	Deprecated bool   // preferred lifetime 0 (RFC 4862 §5.5.4)
	Tentative  bool
	Dynamic    bool // learned by SLAAC or DHCP
	Valid      time.Duration
	Preferred  time.Duration
}

// Addrs lists the addresses of ifname inside ns (`ip -j addr show`).
func Addrs(ctx context.Context, ns, ifname string) ([]Addr, error) {
	out, err := Exec(ctx, ns, "ip", "-j", "addr", "show", "dev", ifname)
	if err != nil {
		return nil, err
	}
	return parseIPAddrJSON(out)
}

func parseIPAddrJSON(b []byte) ([]Addr, error) {
	var links []struct {
		AddrInfo []struct {
			Local      string `json:"local"`
			PrefixLen  int    `json:"prefixlen"`
			Scope      string `json:"scope"`
			Deprecated bool   `json:"deprecated"`
			Tentative  bool   `json:"tentative"`
			Dynamic    bool   `json:"dynamic"`
			ValidLife  uint64 `json:"valid_life_time"`
			PreferLife uint64 `json:"preferred_life_time"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(b, &links); err != nil {
		return nil, fmt.Errorf("netlab: ip -j addr: %w", err)
	}
	var addrs []Addr
	for _, l := range links {
		for _, a := range l.AddrInfo {
			ip, err := netip.ParseAddr(a.Local)
			if err != nil {
				return nil, fmt.Errorf("netlab: ip -j addr: %w", err)
			}
			if a.PrefixLen < 0 || a.PrefixLen > ip.BitLen() {
				return nil, fmt.Errorf("netlab: ip -j addr: prefix length %d for %s", a.PrefixLen, ip)
			}
			addrs = append(addrs, Addr{
				Prefix:     netip.PrefixFrom(ip, a.PrefixLen),
				Scope:      a.Scope,
				Deprecated: a.Deprecated,
				Tentative:  a.Tentative,
				Dynamic:    a.Dynamic,
				Valid:      time.Duration(a.ValidLife) * time.Second,
				Preferred:  time.Duration(a.PreferLife) * time.Second,
			})
		}
	}
	return addrs, nil
}

// WaitAddr waits until ifname in ns has a usable (not tentative, not
// deprecated) address inside within, and returns it.
func WaitAddr(ctx context.Context, ns, ifname string, within netip.Prefix) (netip.Addr, error) {
	var found netip.Addr
	err := WaitFor(ctx, fmt.Sprintf("an address in %s on %s in %s", within, ifname, ns), func(ctx context.Context) (bool, error) {
		addrs, err := Addrs(ctx, ns, ifname)
		if err != nil {
			return false, nil
		}
		for _, a := range addrs {
			if within.Contains(a.Prefix.Addr()) && !a.Tentative && !a.Deprecated {
				found = a.Prefix.Addr()
				return true, nil
			}
		}
		return false, nil
	})
	return found, err
}

// WaitDefaultRoute6 waits until ns has an IPv6 default route through ifname
// (a host installs it from an RA with a router lifetime above 0, RFC 4861
// §6.3.4) and returns its gateway. A host configures an address from an RA
// whose router lifetime is 0 too, so an address alone does not mean it can
// reach beyond the link yet.
func WaitDefaultRoute6(ctx context.Context, ns, ifname string) (netip.Addr, error) {
	var gw netip.Addr
	err := WaitFor(ctx, fmt.Sprintf("an IPv6 default route on %s in %s", ifname, ns), func(ctx context.Context) (bool, error) {
		out, err := Exec(ctx, ns, "ip", "-j", "-6", "route", "show", "default", "dev", ifname)
		if err != nil {
			return false, nil
		}
		var routes []struct {
			Gateway string `json:"gateway"`
		}
		if err := json.Unmarshal(out, &routes); err != nil {
			return false, fmt.Errorf("netlab: ip -j route: %w", err)
		}
		for _, r := range routes {
			if a, err := netip.ParseAddr(r.Gateway); err == nil {
				gw = a
				return true, nil
			}
		}
		return false, nil
	})
	return gw, err
}
