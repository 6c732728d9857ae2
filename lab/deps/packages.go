// Package deps knows which Debian packages the lab, the tests and the
// builds use, and installs the missing ones with apt-get, so that a machine
// with only Go and apt can run `sudo go run ./lab demo` and the tests.
//
// The list is the one place that maps what the code runs (kea-dhcp6,
// named, tshark, …) to the package that provides it. It is grouped by who
// needs it, so that each user installs only its group: the lab and its
// tests (Lab), regenerating the eBPF objects (EBPF), building images
// (Image), booting them in qemu (QEMU), and the dashboard's browser test
// (Browser). CI installs them all (`go run ./lab deps`).
package deps

import (
	"fmt"
	"slices"
	"strings"
)

// Group names the users of a set of packages.
type Group string

const (
	// Lab: the lab's peers (Kea, BIND, radvd, dhcpcd, tayga, chrony) and the
	// tools the demo, the lab tests and the service tests run.
	Lab Group = "lab"
	// EBPF: regenerating the eBPF objects (go generate in each eBPF package).
	EBPF Group = "ebpf"
	// Image: writing an appliance image (go run ./image).
	Image Group = "image"
	// QEMU: booting an image or the target kernel under qemu (GIZMO_SLOW).
	QEMU Group = "qemu"
	// Browser: the dashboard test in a headless browser.
	Browser Group = "browser"
)

// Groups are all groups, in the order Packages lists them.
var Groups = []Group{Lab, EBPF, Image, QEMU, Browser}

// ParseGroup returns the group called name.
func ParseGroup(name string) (Group, error) {
	for _, g := range Groups {
		if string(g) == name {
			return g, nil
		}
	}
	names := make([]string, len(Groups))
	for i, g := range Groups {
		names[i] = string(g)
	}
	return "", fmt.Errorf("unknown package group %q (groups: %s)", name, strings.Join(names, ", "))
}

// Package is one Debian package and what the code uses from it.
type Package struct {
	Name  string
	Group Group
	// Uses are the commands the code runs from the package (looked up in
	// PATH) or, for packages without one, the absolute path of a file it
	// reads. The package counts as missing when any of them is.
	Uses []string
}

// packages is the list. The package names are Debian 12's (bookworm).
var packages = []Package{
	// The lab's peers.
	{"kea-dhcp6-server", Lab, []string{"kea-dhcp6"}},
	{"kea-dhcp4-server", Lab, []string{"kea-dhcp4"}},
	{"bind9", Lab, []string{"named"}},
	{"radvd", Lab, []string{"radvd"}},
	// dhcpcd-base is the client alone; the dhcpcd package adds a system
	// service that would manage the host's own interfaces.
	{"dhcpcd-base", Lab, []string{"dhcpcd"}},
	{"tayga", Lab, []string{"tayga"}},
	{"chrony", Lab, []string{"chronyd"}},
	// What the lab and the tests run to build and probe the network.
	{"iproute2", Lab, []string{"ip"}},
	{"nftables", Lab, []string{"nft"}},
	{"iputils-ping", Lab, []string{"ping"}},
	{"traceroute", Lab, []string{"traceroute"}},
	{"ndisc6", Lab, []string{"rdisc6"}},
	{"isc-dhcp-client", Lab, []string{"dhclient"}},
	{"bind9-dnsutils", Lab, []string{"dig"}},
	{"curl", Lab, []string{"curl"}},
	{"tshark", Lab, []string{"tshark"}},
	// upnpc, the UPnP IGD client the UPnP service's tests run.
	{"miniupnpc", Lab, []string{"upnpc"}},
	// References and load generators of the benchmarks.
	{"unbound", Lab, []string{"unbound"}},
	{"dnsperf", Lab, []string{"dnsperf"}},
	{"iperf3", Lab, []string{"iperf3"}},

	{"clang", EBPF, []string{"clang"}},
	{"llvm", EBPF, []string{"llvm-strip"}},
	{"libbpf-dev", EBPF, []string{"/usr/include/bpf/bpf_helpers.h"}},

	{"squashfs-tools", Image, []string{"mksquashfs", "unsquashfs"}},
	{"mtools", Image, []string{"mformat", "mmd", "mcopy"}},
	{"syslinux", Image, []string{"syslinux"}},
	{"syslinux-common", Image, []string{"/usr/lib/syslinux/mbr/mbr.bin"}},
	{"extlinux", Image, []string{"extlinux"}},
	{"e2fsprogs", Image, []string{"mkfs.ext4"}},
	{"fdisk", Image, []string{"sfdisk"}},

	{"qemu-system-x86", QEMU, []string{"qemu-system-x86_64"}},
	{"qemu-utils", QEMU, []string{"qemu-img"}},
	{"seabios", QEMU, []string{"/usr/share/seabios/bios.bin"}},
	{"qemu-system-arm", QEMU, []string{"qemu-system-aarch64"}},
	{"device-tree-compiler", QEMU, []string{"fdtget"}},

	{"chromium", Browser, []string{"chromium"}},
}

// Packages returns the packages of the given groups (all groups when none
// is given), in the list's order.
func Packages(groups ...Group) []Package {
	var out []Package
	for _, p := range packages {
		if len(groups) == 0 || slices.Contains(groups, p.Group) {
			out = append(out, p)
		}
	}
	return out
}

// Provider returns the package that provides what the code uses, a command
// or a file path, and false when the list does not know it.
func Provider(use string) (Package, bool) {
	for _, p := range packages {
		if slices.Contains(p.Uses, use) {
			return p, true
		}
	}
	return Package{}, false
}

// Missing returns the names of the packages of the groups (all when none is
// given) of which have does not find everything the code uses.
func Missing(have func(use string) bool, groups ...Group) []string {
	var out []string
	for _, p := range Packages(groups...) {
		for _, u := range p.Uses {
			if !have(u) {
				out = append(out, p.Name)
				break
			}
		}
	}
	return out
}
