package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// config is everything the command line can set. Every field has a default
// that works with no flags at all: the gizmo is zero-config.
type config struct {
	StateDir    string
	WAN         string // "" = detect
	LAN         string // "" = detect
	Pref64      netip.Prefix
	Pref64Set   bool
	DNSUpstream []netip.AddrPort // empty = learn from the WAN
	ListenWeb   string           // "" = port 80 on the LAN addresses only
	LANIPv4     netip.Prefix     // the gizmo's legacy address and pool
	LANIPv4Set  bool             // -lan-ipv4 given: never moved off the WAN's subnet
	RAInterval  time.Duration
	V6OnlyWait  time.Duration
	// ExistingNetwork is the one-port "add NAT64 to an existing network"
	// mode: RAs with router lifetime 0 that carry an on-link /64 for the
	// NAT64 and DNS64 (PIO L=1, A=0), RIO, PREF64 and RDNSS.
	ExistingNetwork bool
	LogLevel        string
	// PasswordFile holds the appliance password that guards dashboard
	// changes (gokrazy's gokr-pw.txt).
	PasswordFile string
	// SetClock: the time service sets the system clock. Off where the
	// gizmo shares its host's clock (the lab's network namespaces): the
	// host keeps its time, and the gizmo only measures and serves it.
	SetClock bool
}

// parseFlags parses args (without the program name). Unknown or invalid
// values return an error that fits on one line.
func parseFlags(args []string, usageOut io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("gizmo", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	fs.StringVar(&c.StateDir, "state-dir", "/perm/gizmo", "directory for durable state (leases, DUID, host policies), written atomically")
	fs.StringVar(&c.WAN, "wan", "", "uplink interface (default: the port that hears an upstream router or DHCP server)")
	fs.StringVar(&c.LAN, "lan", "", "LAN interface (default: every other port, bridged)")
	pref64 := fs.String("pref64", "", "NAT64 prefix (RFC 6052 length /32../96; default: the upstream's PREF64, else 64:ff9b::/96, or on an existing network a /96 of the /64 the gizmo announces on-link)")
	upstream := fs.String("dns-upstream", "", "comma-separated upstream DNS resolvers, overriding those learned from the WAN (ADDR or [ADDR]:PORT)")
	fs.StringVar(&c.ListenWeb, "listen-web", "", "dashboard plain-HTTP listen address; HTTPS then listens on port 443 of the same host (default: ports 80 and 443 on the LAN's ULA and legacy IPv4 addresses only)")
	lan4 := fs.String("lan-ipv4", "192.168.64.1/24", "the gizmo's legacy IPv4 address and prefix on the LAN; the rest of the prefix is the DHCPv4 pool")
	fs.DurationVar(&c.RAInterval, "ra-interval", 200*time.Second, "maximum interval between unsolicited router advertisements (RFC 4861 MaxRtrAdvInterval, 4s..1800s)")
	fs.DurationVar(&c.V6OnlyWait, "v6only-wait", 1800*time.Second, "V6ONLY_WAIT sent in DHCPv4 option 108 (RFC 8925; at least 300s)")
	fs.BoolVar(&c.ExistingNetwork, "existing-network", false, "add NAT64 + DNS64 to an existing network: advertise no default route, only an on-link /64 holding the NAT64 prefix and the DNS64, RIO, PREF64 and RDNSS")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.PasswordFile, "password-file", "/etc/gokr-pw.txt", "appliance password for dashboard changes (if missing, one is generated in the state dir)")
	fs.BoolVar(&c.SetClock, "set-clock", true, "set the system clock from NTP and the time saved in the state dir; false where the gizmo shares its host's clock (network namespaces), which it then only measures and serves")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.StateDir == "" {
		return c, errors.New("-state-dir must not be empty")
	}
	if *pref64 != "" {
		p, err := ParsePref64(*pref64)
		if err != nil {
			return c, fmt.Errorf("-pref64: %w", err)
		}
		c.Pref64, c.Pref64Set = p, true
	}
	if *upstream != "" {
		for _, s := range strings.Split(*upstream, ",") {
			ap, err := parseResolver(strings.TrimSpace(s))
			if err != nil {
				return c, fmt.Errorf("-dns-upstream: %w", err)
			}
			c.DNSUpstream = append(c.DNSUpstream, ap)
		}
	}
	p, err := netip.ParsePrefix(*lan4)
	if err != nil || !p.Addr().Is4() || p.Bits() < 16 || p.Bits() > 29 || p.Addr() == p.Masked().Addr() {
		return c, fmt.Errorf("-lan-ipv4: %q is not an IPv4 host address with a prefix length of /16 to /29", *lan4)
	}
	c.LANIPv4 = p
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "lan-ipv4" {
			c.LANIPv4Set = true
		}
	})
	if c.RAInterval < 4*time.Second || c.RAInterval > 1800*time.Second {
		return c, fmt.Errorf("-ra-interval: %v is outside 4s..1800s (RFC 4861 §6.2.1)", c.RAInterval)
	}
	if c.V6OnlyWait < 300*time.Second {
		return c, fmt.Errorf("-v6only-wait: %v is below MIN_V6ONLY_WAIT of 300s (RFC 8925 §3.4)", c.V6OnlyWait)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return c, fmt.Errorf("-log-level: %q is not debug, info, warn or error", c.LogLevel)
	}
	return c, nil
}

// ParsePref64 parses a NAT64 prefix and checks it against RFC 6052 §2.2:
// only /32, /40, /48, /56, /64 and /96 are defined, and bits 64..71 (the
// "u" octet) must be zero.
func ParsePref64(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a prefix", s)
	}
	if !p.Addr().Is6() || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv6 prefix", s)
	}
	switch p.Bits() {
	case 32, 40, 48, 56, 64, 96:
	default:
		return netip.Prefix{}, fmt.Errorf("%q: length must be /32, /40, /48, /56, /64 or /96 (RFC 6052 §2.2)", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set", s)
	}
	if p.Bits() == 96 && p.Addr().As16()[8] != 0 {
		return netip.Prefix{}, fmt.Errorf("%q: bits 64..71 must be zero (RFC 6052 §2.2)", s)
	}
	return p, nil
}

func parseResolver(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is neither an address nor [address]:port", s)
	}
	return ap, nil
}
