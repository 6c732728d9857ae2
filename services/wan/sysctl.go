package wan

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// sysctl is one kernel setting under /proc/sys.
type sysctl struct {
	path  string // relative to /proc/sys
	value string
	// optional settings depend on kernel options (e.g.
	// CONFIG_IPV6_ROUTE_INFO); their absence is logged, not fatal.
	optional bool
}

// routerSysctls are the settings for a router that still configures its
// uplink from the upstream's RAs.
func routerSysctls(ifname string) []sysctl {
	v6 := "net/ipv6/conf/" + ifname + "/"
	return []sysctl{
		// Forwarding first: with forwarding on, accept_ra=1 is ignored, so
		// the uplink needs accept_ra=2 (Documentation/networking/ip-sysctl).
		{path: "net/ipv6/conf/all/forwarding", value: "1"},
		{path: v6 + "forwarding", value: "1"},
		{path: v6 + "accept_ra", value: "2"},
		{path: v6 + "autoconf", value: "1"},
		{path: v6 + "accept_ra_defrtr", value: "1"},
		{path: v6 + "accept_ra_pinfo", value: "1"},
		// RFC 4191 Route Information Options: Linux ignores every RIO
		// while this is 0 (the default). 128 accepts any length, so that an
		// upstream's RIO for its NAT64 /96 is honoured too.
		{path: v6 + "accept_ra_rt_info_max_plen", value: "128", optional: true},
		{path: "net/ipv4/ip_forward", value: "1"},
		{path: "net/ipv4/conf/all/forwarding", value: "1"},
	}
}

// applySysctls writes each setting under root (normally /proc/sys) directly,
// without a sysctl binary (gokrazy has none).
func applySysctls(root string, settings []sysctl, log *slog.Logger) error {
	for _, s := range settings {
		p := filepath.Join(root, s.path)
		cur, err := os.ReadFile(p)
		if err != nil {
			if s.optional && errors.Is(err, fs.ErrNotExist) {
				log.Warn("wan: kernel lacks a setting", "sysctl", s.path)
				continue
			}
			return fmt.Errorf("wan: sysctl %s: %w", s.path, err)
		}
		if strings.TrimSpace(string(cur)) == s.value {
			continue
		}
		if err := os.WriteFile(p, []byte(s.value), 0o644); err != nil {
			return fmt.Errorf("wan: sysctl %s=%s: %w", s.path, s.value, err)
		}
		log.Debug("wan: sysctl", "key", s.path, "value", s.value)
	}
	return nil
}
