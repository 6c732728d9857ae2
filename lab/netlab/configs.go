package netlab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// radvdConf is the ISP's RA on the WAN link: SLAAC prefix and RDNSS
// (RFC 8106). O=1: the ISP also answers stateless DHCPv6 (DNS servers).
func radvdConf() string {
	return fmt.Sprintf(`# gizmo lab: the ISP's Router Advertisements (written by lab/netlab)
interface %s {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 10;
	AdvManagedFlag off;
	AdvOtherConfigFlag on;
	AdvDefaultLifetime 1800;
	prefix %s {
		AdvOnLink on;
		AdvAutonomous on;
	};
	RDNSS %s {
		AdvRDNSSLifetime 20;
	};
};
`, ISPWAN, WANPrefix6, ISPDNS6)
}

// Lifetimes are the DHCP timers the ISP hands out. They are short so that
// renumbering and renewals can be watched within a test.
type Lifetimes struct {
	Renew, Rebind, Preferred, Valid time.Duration
}

func (lt Lifetimes) withDefaults() Lifetimes {
	if lt.Renew == 0 && lt.Rebind == 0 && lt.Preferred == 0 && lt.Valid == 0 {
		return Lifetimes{Renew: 20 * time.Second, Rebind: 32 * time.Second, Preferred: 40 * time.Second, Valid: 60 * time.Second}
	}
	return lt
}

type keaPaths struct {
	dir, leases, socket string
}

func kea6Paths(runDir string) keaPaths {
	d := filepath.Join(runDir, "kea6")
	return keaPaths{dir: d, leases: filepath.Join(d, "dhcp6.leases"), socket: filepath.Join(d, "kea6.sock")}
}

func kea4Paths(runDir string) keaPaths {
	d := filepath.Join(runDir, "kea4")
	return keaPaths{dir: d, leases: filepath.Join(d, "dhcp4.leases"), socket: filepath.Join(d, "kea4.sock")}
}

func secs(d time.Duration) int { return int(d / time.Second) }

func keaLoggers(name string) []any {
	return []any{map[string]any{
		"name":           name,
		"output_options": []any{map[string]any{"output": "stdout", "pattern": "%d{%H:%M:%S.%q} %-5p [%c] %m\n"}},
		"severity":       "INFO",
	}}
}

// kea6Conf delegates /56s from pool (one of PDPoolA, PDPoolB).
func kea6Conf(p keaPaths, pool netip.Prefix, lt Lifetimes) ([]byte, error) {
	conf := map[string]any{"Dhcp6": map[string]any{
		"interfaces-config":  map[string]any{"interfaces": []string{ISPWAN}},
		"data-directory":     p.dir,
		"lease-database":     map[string]any{"type": "memfile", "persist": true, "name": p.leases, "lfc-interval": 0},
		"control-socket":     map[string]any{"socket-type": "unix", "socket-name": p.socket},
		"renew-timer":        secs(lt.Renew),
		"rebind-timer":       secs(lt.Rebind),
		"preferred-lifetime": secs(lt.Preferred),
		"valid-lifetime":     secs(lt.Valid),
		// Kea 2.2 has no definition of OPTION_NTP_SERVER (RFC 5908 §4): an
		// empty container for suboptions.
		"option-def": []any{
			map[string]any{"name": "ntp-server", "code": 56, "space": "dhcp6", "type": "empty", "encapsulate": ntpSuboptions},
			map[string]any{"name": "ntp-server-address", "code": 1, "space": ntpSuboptions, "type": "ipv6-address"},
		},
		"option-data": []any{
			map[string]any{"name": "dns-servers", "data": ISPDNS6.String()},
			map[string]any{"name": "ntp-server"},
			map[string]any{"space": ntpSuboptions, "name": "ntp-server-address", "data": ISPWAN6.String()},
		},
		"subnet6": []any{map[string]any{
			"id":        1,
			"subnet":    WANPrefix6.String(),
			"interface": ISPWAN,
			"pd-pools": []any{map[string]any{
				"prefix":        pool.Addr().String(),
				"prefix-len":    pool.Bits(),
				"delegated-len": PDLength,
			}},
		}},
		"loggers": keaLoggers("kea-dhcp6"),
	}}
	return json.MarshalIndent(conf, "", "  ")
}

func kea4Conf(p keaPaths, lt Lifetimes) ([]byte, error) {
	conf := map[string]any{"Dhcp4": map[string]any{
		"interfaces-config": map[string]any{"interfaces": []string{ISPWAN + "/" + ISPWAN4.String()}, "dhcp-socket-type": "raw"},
		"lease-database":    map[string]any{"type": "memfile", "persist": true, "name": p.leases, "lfc-interval": 0},
		"control-socket":    map[string]any{"socket-type": "unix", "socket-name": p.socket},
		"renew-timer":       secs(lt.Renew),
		"rebind-timer":      secs(lt.Rebind),
		"valid-lifetime":    secs(lt.Valid),
		"subnet4": []any{map[string]any{
			"id":     1,
			"subnet": WANPrefix4.String(),
			"pools":  []any{map[string]any{"pool": WANPool4First.String() + " - " + WANPool4Last.String()}},
			"option-data": []any{
				map[string]any{"name": "routers", "data": ISPWAN4.String()},
				map[string]any{"name": "domain-name-servers", "data": ISPDNS4.String()},
				// RFC 2132 §8.3.
				map[string]any{"name": "ntp-servers", "data": ISPWAN4.String()},
			},
		}},
		"loggers": keaLoggers("kea-dhcp4"),
	}}
	return json.MarshalIndent(conf, "", "  ")
}

// ntpSuboptions is the Kea option space of OPTION_NTP_SERVER's suboptions.
const ntpSuboptions = "ntp-server-suboptions"

// chronyConf is the ISP's NTP server: it serves its own clock (there is no
// upstream in the lab) on the WAN-link addresses only, to anyone. chronyd
// runs with -x, so it never sets the host's clock, which the namespaces
// share; it opens no command port and no command socket (whose default
// path, /run/chrony, is the host's).
func chronyConf(dir string) string {
	return fmt.Sprintf(`# gizmo lab: the ISP's NTP server (written by lab/netlab)
local stratum 8
allow all
bindaddress %[2]s
bindaddress %[3]s
cmdport 0
bindcmdaddress /
pidfile %[1]s/chronyd.pid
driftfile %[1]s/chrony.drift
`, dir, ISPWAN6, ISPWAN4)
}

// namedConf: authoritative for example.test, recursive for everyone. The
// lab's own root zone keeps recursion inside the lab: a name outside
// example.test is NXDOMAIN, and no query ever leaves for the real root.
// With a dns64 prefix the ISP's resolver is a DNS64 (RFC 6147) for its
// NAT64: it synthesizes AAAA records into that prefix, for its own zones
// too, ipv4only.arpa included (RFC 7050 discovery).
func namedConf(dir string, dns64 netip.Prefix) string {
	synth := ""
	if dns64.IsValid() {
		synth = fmt.Sprintf("\tdns64 %s { clients { any; }; };\n", dns64)
	}
	return fmt.Sprintf(`// gizmo lab: the ISP's DNS (written by lab/netlab)
options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port 53 { %[2]s; };
	listen-on-v6 port 53 { %[3]s; };
	recursion yes;
	allow-recursion { any; };
	allow-query { any; };
	allow-query-cache { any; };
	dnssec-validation no;
	notify no;
	minimal-responses no;
%[4]s};
controls { };
zone "." { type primary; file "%[1]s/root.zone"; };
zone "example.test" { type primary; file "%[1]s/example.test.zone"; };
zone "ipv4only.arpa" { type primary; file "%[1]s/ipv4only.arpa.zone"; };
`, dir, ISPDNS4, ISPDNS6, synth)
}

func zoneHeader(origin string) string {
	return fmt.Sprintf(`$ORIGIN %s
$TTL 60
@	IN SOA	ns.example.test. hostmaster.example.test. 1 60 30 600 60
@	IN NS	ns.example.test.
`, origin)
}

// zones returns file name → contents.
func zones() map[string]string {
	example := zoneHeader("example.test.") + strings.Join([]string{
		"ns	IN A	" + ISPDNS4.String(),
		"ns	IN AAAA	" + ISPDNS6.String(),
		"v4only	IN A	" + V4OnlyServer.String(),
		"dual	IN A	" + DualServer4.String(),
		"dual	IN AAAA	" + DualServer6.String(),
		"v6only	IN AAAA	" + V6OnlyServer.String(),
		// The DS-Lite AFTR of the "ds-lite" scenario (RFC 6334 §4).
		"aftr	IN AAAA	" + AFTR6.String(),
		// RFC 6147 §5.1.4: a DNS64 must not use AAAA records in excluded
		// ranges such as ::ffff:0:0/96; this name checks that rule.
		"mapped	IN AAAA	::ffff:" + V4OnlyServer.String(),
		"mapped	IN A	" + V4OnlyServer.String(),
		"chain	IN CNAME	v4only",
	}, "\n") + "\n"
	root := zoneHeader(".") + strings.Join([]string{
		"test.	IN NS	ns.example.test.",
		"ns.example.test.	IN A	" + ISPDNS4.String(),
		"ns.example.test.	IN AAAA	" + ISPDNS6.String(),
	}, "\n") + "\n"
	// RFC 8880 §2.2: ipv4only.arpa has exactly these two A records; RFC 7050
	// prefix discovery looks them up.
	ipv4only := zoneHeader("ipv4only.arpa.") + "@	IN A	192.0.0.170\n@	IN A	192.0.0.171\n"
	return map[string]string{"root.zone": root, "example.test.zone": example, "ipv4only.arpa.zone": ipv4only}
}

// dhcpcdConf configures a LAN host's DHCPv4 client. Hooks are disabled (the
// script is /bin/true), so dhcpcd never edits the host's resolv.conf or
// hostname; it only configures the namespace's interface.
func dhcpcdConf(hostname string, ipv6OnlyPreferred bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# gizmo lab: %s (written by lab/netlab)\n", hostname)
	b.WriteString("script /bin/true\n")
	b.WriteString("ipv4only\n")
	b.WriteString("noipv4ll\n")
	b.WriteString("noarp\n")
	b.WriteString("timeout 0\n")
	fmt.Fprintf(&b, "hostname %s\n", hostname)
	b.WriteString("option domain_name_servers, domain_name, domain_search, host_name\n")
	if ipv6OnlyPreferred {
		// RFC 8925: dhcpcd 9.4 asks for option 108 only when told to.
		b.WriteString("option ipv6_only_preferred\n")
	}
	return b.String()
}
