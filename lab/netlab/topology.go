package netlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// sysctls per namespace, applied before any interface is created so that
// the interfaces inherit the "default" values.
func nsSysctls(ns string) []string {
	common := []string{
		// No DAD: link-locals are usable at once and Up stays fast. Every
		// address in the lab is unique by construction (fixed MACs).
		"net.ipv6.conf.all.accept_dad=0",
		"net.ipv6.conf.default.accept_dad=0",
		"net.ipv6.conf.default.addr_gen_mode=0",
		"net.ipv6.conf.default.use_tempaddr=0",
	}
	switch ns {
	case NSInet:
		return append(common, "net.ipv6.conf.default.accept_ra=0")
	case NSISP:
		return append(common,
			"net.ipv4.ip_forward=1",
			"net.ipv6.conf.all.forwarding=1",
			"net.ipv6.conf.default.accept_ra=0")
	case NSSwitch:
		// The switch is a layer-2 device: it must not speak IPv6 itself.
		return append(common,
			"net.ipv6.conf.all.disable_ipv6=1",
			"net.ipv6.conf.default.disable_ipv6=1")
	case NSLanV6:
		return append(common,
			"net.ipv6.conf.default.accept_ra=1",
			// Honour Route Information Options (RFC 4191); Linux ignores
			// them unless this is set.
			"net.ipv6.conf.default.accept_ra_rt_info_max_plen=64")
	case NSLanLegacy:
		return append(common,
			"net.ipv6.conf.all.disable_ipv6=1",
			"net.ipv6.conf.default.disable_ipv6=1")
	case NSLanCLAT:
		// The CLAT forwards translated packets between its tun and eth0,
		// so the host forwards IPv6 and needs accept_ra=2 to keep SLAAC.
		return append(common,
			"net.ipv6.conf.default.accept_ra=2",
			"net.ipv6.conf.all.accept_ra=2",
			"net.ipv6.conf.default.accept_ra_rt_info_max_plen=64",
			"net.ipv6.conf.all.forwarding=1")
	}
	return common
}

// veth describes one veth pair; an empty namespace means the switch bridge
// port side, which is enslaved to br0.
type veth struct {
	ns1, name1, mac1 string
	ns2, name2, mac2 string
}

func lanPorts() []veth {
	return []veth{
		{NSGizmo, GizmoLAN, MACGizmoLAN, NSSwitch, "p-gizmo", macSwitchBase + "01"},
		{NSLanV6, HostIf, MACLanV6, NSSwitch, "p-v6", macSwitchBase + "10"},
		{NSLanLegacy, HostIf, MACLanLegacy, NSSwitch, "p-legacy", macSwitchBase + "20"},
		{NSLanCLAT, HostIf, MACLanCLAT, NSSwitch, "p-clat", macSwitchBase + "30"},
	}
}

// topologySteps returns the commands that build the lab, each an argv for
// `ip` (or for sysctl inside a namespace), in order.
func topologySteps() [][]string {
	var s [][]string
	ip := func(args string) { s = append(s, strings.Fields(args)) }
	for _, ns := range Namespaces() {
		ip("netns add " + ns)
	}
	for _, ns := range Namespaces() {
		s = append(s, append([]string{"netns", "exec", ns, "sysctl", "-q", "-w"}, nsSysctls(ns)...))
	}

	links := append([]veth{
		{NSInet, HostIf, MACInetEth0, NSISP, ISPInet, MACISPInet},
		{NSISP, ISPWAN, MACISPWAN, NSGizmo, GizmoWAN, MACGizmoWAN},
	}, lanPorts()...)
	for _, v := range links {
		ip(fmt.Sprintf("link add name %s address %s netns %s type veth peer name %s address %s netns %s",
			v.name1, v.mac1, v.ns1, v.name2, v.mac2, v.ns2))
	}

	// gz-switch: one bridge without STP or multicast snooping, so that RAs,
	// ND and DHCP flow at once and to every port.
	ip("-n " + NSSwitch + " link set lo up")
	ip("-n " + NSSwitch + " link add name " + Bridge + " address " + MACBridge +
		" type bridge stp_state 0 forward_delay 0 mcast_snooping 0")
	for _, v := range lanPorts() {
		ip("-n " + NSSwitch + " link set " + v.name2 + " master " + Bridge + " up")
	}
	ip("-n " + NSSwitch + " link set " + Bridge + " up")

	// gz-inet: the servers live on lo; eth0 is the transit link.
	ip("-n " + NSInet + " link set lo up")
	ip("-n " + NSInet + " addr add " + V4OnlyServer.String() + "/24 dev " + HostIf)
	ip("-n " + NSInet + " addr add " + InetISP6.String() + "/64 dev " + HostIf)
	for _, a := range []string{DualServer4.String() + "/32", DualServer6.String() + "/128", V6OnlyServer.String() + "/128"} {
		ip("-n " + NSInet + " addr add " + a + " dev lo")
	}
	ip("-n " + NSInet + " link set " + HostIf + " up")
	// Only routes back to the lab's own prefixes: nothing else is reachable.
	ip("-n " + NSInet + " route add " + WANPrefix4.String() + " via " + ISPInet4.String())
	ip("-n " + NSInet + " route add 2001:db8::/32 via " + ISPInet6.String())

	// gz-isp.
	ip("-n " + NSISP + " link set lo up")
	ip("-n " + NSISP + " addr add " + ISPInet4.String() + "/24 dev " + ISPInet)
	ip("-n " + NSISP + " addr add " + ISPInet6.String() + "/64 dev " + ISPInet)
	ip("-n " + NSISP + " addr add " + ISPWAN4.String() + "/24 dev " + ISPWAN)
	ip("-n " + NSISP + " addr add " + ISPDNS4.String() + "/24 dev " + ISPWAN)
	ip("-n " + NSISP + " addr add " + ISPWAN6.String() + "/64 dev " + ISPWAN)
	ip("-n " + NSISP + " addr add " + ISPDNS6.String() + "/64 dev " + ISPWAN)
	ip("-n " + NSISP + " link set " + ISPInet + " up")
	ip("-n " + NSISP + " link set " + ISPWAN + " up")
	ip("-n " + NSISP + " route add " + DualNet4.String() + " via " + V4OnlyServer.String())
	ip("-n " + NSISP + " route add " + InetRoute.String() + " via " + InetISP6.String())
	ip("-n " + NSISP + " route add " + PDAggregate.String() + " via " + GizmoWANLinkLocal.String() + " dev " + ISPWAN)

	// gz-gizmo: only the links; the daemon configures the rest.
	ip("-n " + NSGizmo + " link set lo up")
	ip("-n " + NSGizmo + " link set " + GizmoWAN + " up")
	ip("-n " + NSGizmo + " link set " + GizmoLAN + " up")

	for _, ns := range []string{NSLanV6, NSLanLegacy, NSLanCLAT} {
		ip("-n " + ns + " link set lo up")
		ip("-n " + ns + " link set " + HostIf + " up")
	}
	return s
}

// batch is one `ip [-n NS] -batch -` run, or a single command (sysctl
// inside a namespace) when lines is empty.
type batch struct {
	args  []string // ip's arguments before -batch, or the whole command
	lines []string
}

// batches groups consecutive steps for the same namespace into one `ip
// -batch` run, so that Up runs a dozen processes instead of seventy.
func batches(steps [][]string) []batch {
	var out []batch
	key := func(argv []string) string {
		if len(argv) > 2 && argv[0] == "-n" {
			return argv[1]
		}
		return ""
	}
	for _, argv := range steps {
		if argv[0] == "netns" && len(argv) > 1 && argv[1] == "exec" {
			out = append(out, batch{args: argv})
			continue
		}
		k, line := key(argv), argv
		if k != "" {
			line = argv[2:]
		}
		if n := len(out); n > 0 && out[n-1].lines != nil && key(out[n-1].args) == k {
			out[n-1].lines = append(out[n-1].lines, strings.Join(line, " "))
			continue
		}
		args := []string{"-batch", "-"}
		if k != "" {
			args = []string{"-n", k, "-batch", "-"}
		}
		out = append(out, batch{args: args, lines: []string{strings.Join(line, " ")}})
	}
	return out
}

func (l *Lab) buildTopology(ctx context.Context) error {
	return runBatches(ctx, batches(topologySteps()))
}

// setSysctls writes "key=value" settings inside namespace ns. /proc/sys/net
// shows the namespace of the thread that opens it, so this needs no process.
func setSysctls(ns string, kvs []string) error {
	return inNamespace(ns, func() error {
		for _, kv := range kvs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("netlab: sysctl %q: want key=value", kv)
			}
			path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
			if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
				return fmt.Errorf("netlab: sysctl in %s: %w", ns, err)
			}
		}
		return nil
	})
}

func runBatches(ctx context.Context, bs []batch) error {
	for _, b := range bs {
		if a := b.args; b.lines == nil && len(a) > 6 && a[0] == "netns" && a[1] == "exec" && a[3] == "sysctl" && a[4] == "-q" && a[5] == "-w" {
			if err := setSysctls(a[2], a[6:]); err != nil {
				return err
			}
			continue
		}
		cmd := exec.CommandContext(ctx, "ip", b.args...)
		if b.lines != nil {
			cmd.Stdin = strings.NewReader(strings.Join(b.lines, "\n") + "\n")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("netlab: topology: ip %s: %w: %s\n%s", strings.Join(b.args, " "), err,
				strings.TrimSpace(string(out)), strings.Join(b.lines, "\n"))
		}
	}
	return nil
}
