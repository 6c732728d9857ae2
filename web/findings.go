package web

import (
	"net/netip"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// Findings are the daemon's plan functions' view of the state at one
// moment, in the pages' terms.
type Findings struct {
	// Internet is the overview's "Internet OK / what is wrong" line.
	Internet Internet
	// Rules are the owner's inbound rules, in order, each with what it
	// opens now.
	Rules []RuleFinding
	// PoolStart and PoolEnd bound the legacy DHCPv4 pool that
	// reservations come from; invalid without a legacy network.
	PoolStart, PoolEnd netip.Addr
	// Fastpath is whether the eBPF fast path carries established IPv6
	// flows; nil where the gizmo runs none (on an existing network).
	Fastpath *Fastpath
}

// Fastpath is the fast path's plan: on, or off and why.
type Fastpath struct {
	On  bool
	Off string // why it is off, e.g. "no BPF JIT"
}

// Line says it in words: "fast path: on", "fast path: off (no BPF JIT)".
func (f Fastpath) Line() string {
	if f.On {
		return "fast path: on"
	}
	return "fast path: off (" + f.Off + ")"
}

// Internet says whether the LAN reaches the internet, and if not, what is
// wrong and what to do.
type Internet struct {
	OK bool `json:"ok"`
	// Key names the finding for scripts: ok, no-wan, no-cable, waiting,
	// no-dns, no-ipv4, no-prefix, no-prefix-no-ipv4.
	Key  string `json:"key"`
	Line string `json:"line"`
	Hint string `json:"hint,omitempty"`
}

// RuleFinding is one inbound rule and what it lets in now.
type RuleFinding struct {
	Rule state.InboundRule
	// Opens are the destinations the firewall accepts for the rule.
	Opens []netip.Prefix
	// Hosts are the hosts' current addresses among them.
	Hosts []RuleHost
	// Waiting says why a good rule opens nothing yet; Problem why the
	// firewall leaves a rule out.
	Waiting, Problem string
}

// RuleHost is a host's address that a rule matches.
type RuleHost struct {
	MAC, Name string
	Addr      netip.Addr
}

// Firmware describes the running build of the gizmo.
type Firmware struct {
	// Version is the main module's version ("(devel)" for a build from a
	// work tree); Revision, RevisionTime and Modified its VCS stamp, when
	// the build kept one.
	Version      string
	Revision     string
	RevisionTime time.Time
	Modified     bool
	// Go is the toolchain, Platform GOOS/GOARCH.
	Go, Platform string
	// BinarySHA256 is the hash of the running executable: the image
	// builds reproducibly, so it names the build exactly.
	BinarySHA256 string
	// Board is the hardware profile the image was built for ("" off an
	// image), and Built when (the image's SOURCE_DATE_EPOCH; zero off an
	// image).
	Board string
	Built time.Time
}
