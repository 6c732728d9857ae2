// Package roles decides which port of the gizmo is the WAN and which are
// the LAN when nobody said so. The port that hears an upstream router
// (a Router Advertisement), a DHCPv4 server or a DHCPv6 server is the WAN; it is renamed
// uplink0, because gokrazy keeps its own web interface off uplink*. Every
// other port is bridged into lan0.
//
// The decision is a pure function of what each port heard (Decide), so it
// is tested without a kernel; Probe and Apply are the thin parts that touch
// the network.
//
// While the gizmo runs, Watch re-evaluates detected roles: carrier changes
// and upstream signals heard on the LAN ports (ParseFrame behind a kernel
// filter) go into a Tracker, which is pure again and decides through
// Hysteresis with the thresholds in DefaultThresholds. A WAN that has proven
// itself (the daemon says so: it carried a delegation or a DHCPv4 lease)
// pins the roles: what LAN ports hear is then only reported as a Rogue.
package roles

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// WANName and LANName are the names the gizmo gives its ports. gokrazy keeps
// its own web UI off interfaces named uplink*, so the WAN gets that name; the
// lab and outside checks rely on both names.
const (
	WANName = "uplink0"
	LANName = "lan0"
)

// Evidence is what probing one port found.
type Evidence struct {
	Port string
	// LinkUp: the port has carrier.
	LinkUp bool
	// RouterAdvertisement: a router answered our Router Solicitation with a
	// non-zero router lifetime (it offers a default route).
	RouterAdvertisement bool
	// AnyRouterAdvertisement: some RA was heard, even with router lifetime 0.
	AnyRouterAdvertisement bool
	// DHCPv4Server: a DHCPv4 server answered a DISCOVER (or was heard
	// sending an OFFER or ACK).
	DHCPv4Server bool
	// DHCPv6Server: a DHCPv6 server was heard sending an Advertise or a
	// Reply (RFC 8415 §7.3), as an ISP's PD server does.
	DHCPv6Server bool
}

// Roles is the outcome of detection.
type Roles struct {
	WAN string
	// LANPorts are bridged into lan0.
	LANPorts []string
	// ExistingNetwork: the gizmo has only one port and it hears a router:
	// it joins that network as a NAT64/DNS64 helper (RAs with router lifetime
	// 0, RIO, PREF64, RDNSS) rather than routing for it.
	ExistingNetwork bool
}

// ErrNoUpstream means no port heard an upstream yet: keep probing.
var ErrNoUpstream = errors.New("roles: no port hears an upstream router or DHCPv4 server yet")

// score ranks how strongly a port looks like the uplink. A default router
// counts most; a DHCPv4 server alone (an IPv4-only ISP) is enough.
func score(e Evidence) int {
	if !e.LinkUp {
		return 0
	}
	s := 0
	if e.RouterAdvertisement {
		s += 4
	}
	if e.DHCPv4Server || e.DHCPv6Server {
		s += 2
	}
	if e.AnyRouterAdvertisement {
		s++
	}
	return s
}

// Decide picks the WAN from the evidence. Ties go to the port that is
// already called uplink0 (so a restart never swaps roles), then to the
// first name in order, which is stable across boots.
func Decide(evidence []Evidence) (Roles, error) {
	if len(evidence) == 0 {
		return Roles{}, errors.New("roles: the gizmo has no network ports")
	}
	ev := slices.Clone(evidence)
	slices.SortFunc(ev, func(a, b Evidence) int {
		if d := score(b) - score(a); d != 0 {
			return d
		}
		if (a.Port == WANName) != (b.Port == WANName) {
			if a.Port == WANName {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Port, b.Port)
	})
	best := ev[0]
	if score(best) == 0 {
		return Roles{}, ErrNoUpstream
	}
	r := Roles{WAN: best.Port}
	for _, e := range ev[1:] {
		r.LANPorts = append(r.LANPorts, e.Port)
	}
	slices.Sort(r.LANPorts)
	if len(r.LANPorts) == 0 {
		r.ExistingNetwork = true
	}
	return r, nil
}

// Hysteresis keeps the current roles unless the evidence against them is
// strong and lasting: the current WAN has heard nothing for Rounds
// consecutive probe rounds while another port heard an upstream server (a
// default router, a DHCPv4 or a DHCPv6 server) in each of them. A flapping
// cable or one stray RA on the LAN does not swap roles. Roles without a WAN
// (no port heard anything at start) count as a quiet WAN: the first port
// that hears an upstream for Rounds rounds becomes the WAN.
type Hysteresis struct {
	Rounds int

	current   Roles
	against   int
	candidate string
}

// NewHysteresis starts from the roles in force.
func NewHysteresis(current Roles, rounds int) *Hysteresis {
	if rounds < 1 {
		rounds = 1
	}
	return &Hysteresis{Rounds: rounds, current: current}
}

// Observe feeds one probe round and reports whether the roles should change,
// and to what.
func (h *Hysteresis) Observe(evidence []Evidence) (Roles, bool) {
	next, err := Decide(evidence)
	// A WAN that is missing from the evidence (no WAN yet, or its port
	// is gone) is as quiet as one that hears nothing.
	wanQuiet := true
	for _, e := range evidence {
		if e.Port == h.current.WAN {
			wanQuiet = score(e) == 0
		}
	}
	// An RA with router lifetime 0 alone (score 1) is a router that
	// offers no default route: no reason to make its port the uplink.
	if err != nil || next.WAN == h.current.WAN || !wanQuiet || score(EvidenceOf(evidence, next.WAN)) < 2 {
		h.against, h.candidate = 0, ""
		return h.current, false
	}
	if next.WAN != h.candidate {
		h.candidate, h.against = next.WAN, 0
	}
	h.against++
	if h.against < h.Rounds {
		return h.current, false
	}
	h.current, h.against, h.candidate = next, 0, ""
	return next, true
}

// Heard says what the port heard, for logs and the dashboard: "a default
// router, a DHCPv4 server", or "nothing".
func (e Evidence) Heard() string {
	var out []string
	switch {
	case e.RouterAdvertisement:
		out = append(out, SignalRouter.String())
	case e.AnyRouterAdvertisement:
		out = append(out, SignalRouterNoDefault.String())
	}
	if e.DHCPv6Server {
		out = append(out, SignalDHCPv6Server.String())
	}
	if e.DHCPv4Server {
		out = append(out, SignalDHCPv4Server.String())
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}

// EvidenceOf returns the evidence about port (zero if there is none).
func EvidenceOf(evidence []Evidence, port string) Evidence {
	for _, e := range evidence {
		if e.Port == port {
			return e
		}
	}
	return Evidence{}
}

func (r Roles) String() string {
	if r.WAN == "" {
		return fmt.Sprintf("no WAN yet, LAN %s", strings.Join(r.LANPorts, "+"))
	}
	if r.ExistingNetwork {
		return fmt.Sprintf("existing network on %s", r.WAN)
	}
	return fmt.Sprintf("WAN %s, LAN %s", r.WAN, strings.Join(r.LANPorts, "+"))
}

// Current returns the roles in force.
func (h *Hysteresis) Current() Roles { return h.current }
