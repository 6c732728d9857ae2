package main

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dhcp6pd"
	"codeberg.org/monostack/gizmo/services/wan"
)

// stepped is the moment t as a clock that was stepped by step shows it:
// its wall reading is t's plus step, its monotonic reading is t's. This is
// what time.Now returns once NTP has stepped the clock of a board that
// booted at its image's build time: a step moves CLOCK_REALTIME, never
// CLOCK_MONOTONIC. Go offers no way to make such a time, so the test
// writes the two readings itself, and checks that it did.
func stepped(t *testing.T, at time.Time, step time.Duration) time.Time {
	t.Helper()
	// time.Time's layout: the wall clock (with the has-monotonic flag),
	// the monotonic reading, the location.
	type layout struct {
		wall uint64
		ext  int64
		loc  *time.Location
	}
	if unsafe.Sizeof(at) != unsafe.Sizeof(layout{}) {
		t.Fatal("time.Time changed its layout: cannot make a stepped time")
	}
	s := at.Add(step)
	(*layout)(unsafe.Pointer(&s)).ext = (*layout)(unsafe.Pointer(&at)).ext
	if s.Sub(at) != 0 || s.Round(0).Sub(at.Round(0)) != step {
		t.Fatalf("cannot make a stepped time: %v from %v", s, at)
	}
	return s
}

// lanView is what the daemon's plans give the LAN and the WAN at one
// moment, as durations from that moment: what hosts and the kernel see.
type lanView struct {
	Delegated, Retired map[netip.Prefix]time.Duration // remaining valid lifetime
	PIOs               map[netip.Prefix]time.Duration // the RA's valid lifetimes
	LANAddrs           map[netip.Prefix]time.Duration // lanif's, remaining valid (0: forever)
	Unreachable        []netip.Prefix                 // the WAN's routes (RFC 7084 WPD-5)
	IPv4               bool                           // the WAN's DHCPv4 lease holds
	MovedAddrOwner     string                         // the DNS64 policy's host for a moved address
	HostAddrs          int
}

func viewOf(p plan.Plans, st *state.State, now time.Time) lanView {
	rem := func(until time.Time) time.Duration {
		if until.IsZero() {
			return 0
		}
		return max(until.Sub(now), 0)
	}
	v := lanView{
		Delegated: map[netip.Prefix]time.Duration{}, Retired: map[netip.Prefix]time.Duration{},
		PIOs: map[netip.Prefix]time.Duration{}, LANAddrs: map[netip.Prefix]time.Duration{},
		Unreachable: p.WAN.Delegated, IPv4: p.Network.IPv4 != nil,
		MovedAddrOwner: p.DNS64.Clients[movedAddr].MAC,
	}
	if d := p.Network.Delegated; d != nil {
		v.Delegated[d.Prefix] = rem(d.ValidUntil)
	}
	for _, r := range p.Network.Retired {
		v.Retired[r.Prefix] = rem(r.ValidUntil)
	}
	for _, x := range p.RA.Prefixes {
		_, v.PIOs[x.Prefix] = x.Lifetimes(now)
	}
	for _, a := range p.LAN.Addrs {
		v.LANAddrs[a.Prefix] = rem(a.ValidUntil)
	}
	for _, h := range st.Hosts {
		v.HostAddrs += len(h.Addrs)
	}
	return v
}

var (
	firstPrefix  = netip.MustParsePrefix("2001:db8:1000::/56")
	secondPrefix = netip.MustParsePrefix("2001:db8:1100::/56")
	movedAddr    = netip.MustParseAddr("2001:db8:1100::beef")
	hostA        = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	hostB        = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
)

// timeline runs the daemon through two hours and a day of observations and
// plans, with the wall clock stepped by step half a minute after boot, and
// returns what the plans gave at each checkpoint. Every deadline the
// services report comes from time.Now, as theirs do.
func timeline(t *testing.T, step time.Duration) []lanView {
	d := newDaemon(config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.st.ULA = netip.MustParsePrefix("fd12:3456:789a::/48")
	var plans plan.Plans
	d.appliers = append(d.appliers, func(p *plan.Plans) { plans = *p })

	boot := time.Now()
	lease := func(p netip.Prefix, at time.Time, valid time.Duration) dhcp6pd.Lease {
		return dhcp6pd.Lease{Prefix: p, PreferredUntil: at.Add(valid / 2), ValidUntil: at.Add(valid)}
	}
	// At boot, on the build time's clock: a delegation, at once replaced
	// by another (the first is retired: RFC 9096 §3), the WAN's IPv4
	// lease, a host on the new prefix.
	d.observe(func(st *state.State) { delegationObserved(st, lease(firstPrefix, boot, 2*time.Hour), boot) })
	d.observe(func(st *state.State) { delegationObserved(st, lease(secondPrefix, boot, time.Hour), boot) })
	d.observe(func(st *state.State) {
		st.WAN.IPv4 = ipv4Observed(&wan.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24"), Expires: boot.Add(2 * time.Hour)})
	})
	d.sawFrame(hostA, movedAddr, boot)

	var out []lanView
	for _, c := range []struct {
		at    time.Duration
		event func(now time.Time)
	}{
		{at: time.Minute},
		// The address moves to another host after the step.
		{at: 2 * time.Minute, event: func(now time.Time) { d.sawFrame(hostB, movedAddr, now) }},
		// The delegation is renewed after the step (RFC 8415 §18.2.4).
		{at: 20 * time.Minute, event: func(now time.Time) {
			d.observe(func(st *state.State) { delegationObserved(st, lease(secondPrefix, now, time.Hour), now) })
		}},
		{at: 61 * time.Minute},
		{at: 81 * time.Minute},
		{at: 91 * time.Minute},
		{at: 121 * time.Minute},
		{at: 25 * time.Hour},
	} {
		now := stepped(t, boot.Add(c.at), step)
		if c.event != nil {
			c.event(now)
		}
		d.apply(now)
		out = append(out, viewOf(plans, &d.st, now))
	}
	return out
}

// A board without a real-time clock boots at its image's build time; NTP
// then steps its clock years forward. Every deadline the daemon acts on is
// on the monotonic clock, so the step expires nothing early and prolongs
// nothing: at every moment the plans are what they would have been without
// the step. A clock that was ahead and is stepped back prolongs nothing
// either.
func TestClockStepMovesNoDeadline(t *testing.T) {
	want := timeline(t, 0)
	const min = time.Minute
	for i, c := range []struct {
		name string
		at   int
		ok   func(v lanView) bool
	}{
		{"the new delegation is on the LAN", 0, func(v lanView) bool { return v.PIOs[state.LANPrefix(secondPrefix)] == 59*min }},
		{"the old one is retired, valid for ND_VALID_LIMIT (RFC 9096 §3.3)", 0, func(v lanView) bool { return v.Retired[firstPrefix] == 89*min }},
		{"the moved address belongs to the host that used it last", 1, func(v lanView) bool { return v.MovedAddrOwner == hostB.String() }},
		{"the renewed delegation is valid an hour from the renewal", 3, func(v lanView) bool { return v.Delegated[secondPrefix] == 19*min }},
		{"the delegation expires when its valid lifetime ends", 4, func(v lanView) bool { return len(v.Delegated) == 0 && v.Retired[firstPrefix] == 9*min }},
		{"the retired prefix leaves the LAN", 5, func(v lanView) bool {
			_, pio := v.PIOs[state.LANPrefix(firstPrefix)]
			return len(v.Retired) == 0 && !pio && len(v.Unreachable) == 0
		}},
		{"the IPv4 lease holds until it expires", 5, func(v lanView) bool { return v.IPv4 }},
		{"the IPv4 lease expires", 6, func(v lanView) bool { return !v.IPv4 }},
		{"the host's address is forgotten a day after it was last seen", 7, func(v lanView) bool { return v.HostAddrs == 0 }},
	} {
		if !c.ok(want[c.at]) {
			t.Errorf("without a step, %d: %s: %+v", i, c.name, want[c.at])
		}
	}
	for _, step := range []time.Duration{5 * 365 * 24 * time.Hour, -5 * 365 * 24 * time.Hour} {
		if diff := cmp.Diff(want, timeline(t, step), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
			t.Errorf("the clock stepped by %v changed the plans (-without +with the step):\n%s", step, diff)
		}
	}
}
