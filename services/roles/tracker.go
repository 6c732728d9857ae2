package roles

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Signal is one upstream sign heard on a port: by an active probe or by
// listening passively on a LAN-side port.
type Signal int

const (
	// SignalRouter: a Router Advertisement with a non-zero router
	// lifetime, a router that offers a default route (RFC 4861 §4.2).
	SignalRouter Signal = iota + 1
	// SignalRouterNoDefault: an RA with router lifetime 0, as the gizmo
	// itself sends in the existing-network mode; it is not an upstream.
	SignalRouterNoDefault
	// SignalDHCPv4Server: a DHCPv4 OFFER or ACK (RFC 2131 §3.1).
	SignalDHCPv4Server
	// SignalDHCPv6Server: a DHCPv6 Advertise or Reply (RFC 8415 §7.3).
	SignalDHCPv6Server
)

// signalNames are each signal's protocol, for the dashboard, and its
// description, for the logs.
var signalNames = map[Signal]struct{ kind, text string }{
	SignalRouter:          {"RA", "a default router"},
	SignalRouterNoDefault: {"RA", "an RA without a default route"},
	SignalDHCPv4Server:    {"DHCPv4", "a DHCPv4 server"},
	SignalDHCPv6Server:    {"DHCPv6", "a DHCPv6 server"},
}

// Kind names the protocol of an upstream signal, for the dashboard: "RA",
// "DHCPv4" or "DHCPv6".
func (s Signal) Kind() string {
	if n, ok := signalNames[s]; ok {
		return n.kind
	}
	return fmt.Sprintf("signal %d", int(s))
}

func (s Signal) String() string {
	if n, ok := signalNames[s]; ok {
		return n.text
	}
	return fmt.Sprintf("signal %d", int(s))
}

// Thresholds set how much lasting evidence the run-time re-evaluation needs
// before it moves the WAN role.
type Thresholds struct {
	// Settle: a port's carrier must have been up this long before what it
	// hears counts. A cable being plugged in, or autonegotiation
	// retrying, bounces the carrier for about a second; 2 s rides it out.
	Settle time.Duration
	// WANGone: the WAN's carrier must have been down this long before
	// another port may take its role. Re-seating a cable, a modem's PHY
	// renegotiating or a short power blip of the modem take a few
	// seconds; 10 s rides them out and is still shorter than a person
	// waits before giving up on a moved cable.
	WANGone time.Duration
	// Rounds: consecutive evaluations (one per Tick, once a second) in
	// which the new roles must win (Hysteresis.Rounds). With Settle it
	// makes a port's evidence last at least Settle + Rounds seconds.
	Rounds int
}

// DefaultThresholds are the gizmo's: a new uplink is taken over about
// 5 s after its carrier comes up, or 10 s after the old WAN lost its
// carrier, whichever is later.
var DefaultThresholds = Thresholds{Settle: 2 * time.Second, WANGone: 10 * time.Second, Rounds: 3}

// Decision is the outcome of a re-evaluation that changes the roles.
type Decision struct {
	Roles  Roles
	Reason string
	At     time.Time
}

// Tracker is the pure part of the run-time re-evaluation: it is fed what
// the ports do (carrier changes, upstream signals) with their times and
// decides, once per Tick, whether the roles in force still hold. It needs no
// kernel, so a sequence of observations can be checked against the
// decisions it must lead to. It is not safe for concurrent use.
//
// A pinned tracker (Pin) keeps its roles whatever it is fed: the WAN in
// force has proven itself (it carried a delegation or a DHCPv4 lease, or
// the owner chose it), and upstream signals on a LAN port then never move
// the role by themselves. A rogue router on the LAN, or a second home
// router plugged in the wrong way round, would otherwise take the WAN role
// whenever the real WAN is dark for WANGone (a modem rebooting), and the
// ISP's port would join the LAN bridge, where the management plane is
// open.
type Tracker struct {
	th     Thresholds
	h      *Hysteresis
	ports  map[string]*portView
	pinned bool
}

type portView struct {
	up    bool
	since time.Time // of the last carrier change
	heard map[Signal]time.Time
}

// NewTracker starts from the roles in force on ports (which include the
// WAN, if any). Every port starts without carrier at now until Link says
// otherwise.
func NewTracker(current Roles, ports []string, th Thresholds, now time.Time) *Tracker {
	t := &Tracker{th: th, h: NewHysteresis(current, th.Rounds), ports: map[string]*portView{}}
	for _, p := range ports {
		t.ports[p] = &portView{since: now, heard: map[Signal]time.Time{}}
	}
	if current.WAN != "" {
		if _, ok := t.ports[current.WAN]; !ok {
			t.ports[current.WAN] = &portView{since: now, heard: map[Signal]time.Time{}}
		}
	}
	return t
}

// Current returns the roles in force.
func (t *Tracker) Current() Roles { return t.h.Current() }

// Pin pins or unpins the roles in force. Pinning forgets every signal
// heard so far and any hysteresis under way.
func (t *Tracker) Pin(pinned bool) {
	if pinned && !t.pinned {
		for _, v := range t.ports {
			clear(v.heard)
		}
		t.h.against, t.h.candidate = 0, ""
	}
	t.pinned = pinned
}

// Pinned reports whether the roles are pinned.
func (t *Tracker) Pinned() bool { return t.pinned }

// Link records a carrier change. A port whose carrier drops forgets what it
// heard: a flap must earn its evidence again.
func (t *Tracker) Link(port string, up bool, at time.Time) {
	v := t.port(port, at)
	if v.up == up {
		return
	}
	v.up, v.since = up, at
	if !up {
		clear(v.heard)
	}
}

// Heard records an upstream signal on a port. Signals on the WAN are the
// WAN's business (services/wan) and do not count here, nor does anything
// while the roles are pinned.
func (t *Tracker) Heard(port string, s Signal, at time.Time) {
	if port == t.Current().WAN || t.pinned {
		return
	}
	v := t.port(port, at)
	if !v.up {
		return // a port without carrier hears nothing; a stale report
	}
	v.heard[s] = at
}

// HeardUpstream reports whether port has heard an upstream server (a
// default router, a DHCPv4 or DHCPv6 server) since its carrier came up.
func (t *Tracker) HeardUpstream(port string) bool {
	v, ok := t.ports[port]
	if !ok {
		return false
	}
	for _, s := range []Signal{SignalRouter, SignalDHCPv4Server, SignalDHCPv6Server} {
		if _, ok := v.heard[s]; ok {
			return true
		}
	}
	return false
}

// Forget drops what port heard before a time: a probe that asked and heard
// nothing outweighs what was heard passively before it (a router that has
// left since).
func (t *Tracker) Forget(port string, before time.Time) {
	if v, ok := t.ports[port]; ok {
		maps.DeleteFunc(v.heard, func(_ Signal, at time.Time) bool { return at.Before(before) })
	}
}

func (t *Tracker) port(name string, now time.Time) *portView {
	v, ok := t.ports[name]
	if !ok {
		v = &portView{since: now, heard: map[Signal]time.Time{}}
		t.ports[name] = v
	}
	return v
}

// WANDown reports whether the roles lack a WAN or the WAN has no carrier:
// then a port that comes up may be the uplink moving, and must not carry the
// LAN's services before it was probed.
func (t *Tracker) WANDown() bool {
	wan := t.Current().WAN
	if wan == "" {
		return true
	}
	v, ok := t.ports[wan]
	return !ok || !v.up
}

// Evidence is what the tracker makes of the ports at now, as Hysteresis
// rounds take it. The WAN in force counts as hearing its upstream while it
// has carrier, and for WANGone after it lost it: the gizmo does not
// second-guess an uplink that is plugged in (its upstream's absence is the
// dashboard's news, not a reason to move the role).
func (t *Tracker) Evidence(now time.Time) []Evidence {
	wan := t.Current().WAN
	var out []Evidence
	for _, name := range slices.Sorted(maps.Keys(t.ports)) {
		v := t.ports[name]
		e := Evidence{Port: name}
		if name == wan {
			alive := v.up || now.Sub(v.since) < t.th.WANGone
			e.LinkUp, e.RouterAdvertisement, e.AnyRouterAdvertisement = alive, alive, alive
		} else {
			e.LinkUp = v.up && now.Sub(v.since) >= t.th.Settle
			_, e.RouterAdvertisement = v.heard[SignalRouter]
			_, noDefault := v.heard[SignalRouterNoDefault]
			e.AnyRouterAdvertisement = e.RouterAdvertisement || noDefault
			_, e.DHCPv4Server = v.heard[SignalDHCPv4Server]
			_, e.DHCPv6Server = v.heard[SignalDHCPv6Server]
		}
		out = append(out, e)
	}
	return out
}

// Tick runs one evaluation round at now and reports whether the roles
// change, and to what, with the reason.
func (t *Tracker) Tick(now time.Time) (Decision, bool) {
	if t.pinned {
		return Decision{}, false
	}
	prev := t.Current()
	ev := t.Evidence(now)
	next, changed := t.h.Observe(ev)
	if !changed {
		return Decision{}, false
	}
	return Decision{Roles: next, Reason: t.reason(prev, next, now), At: now}, true
}

func (t *Tracker) reason(prev, next Roles, now time.Time) string {
	v := t.ports[next.WAN]
	var heard []string
	for _, s := range []Signal{SignalRouter, SignalDHCPv6Server, SignalDHCPv4Server} {
		if _, ok := v.heard[s]; ok {
			heard = append(heard, s.String())
		}
	}
	why := fmt.Sprintf("%s hears %s", next.WAN, strings.Join(heard, ", "))
	if prev.WAN == "" {
		return why + "; there was no WAN"
	}
	if old, ok := t.ports[prev.WAN]; ok {
		return fmt.Sprintf("%s; the WAN %s has had no carrier for %s", why, prev.WAN, now.Sub(old.since).Round(time.Second))
	}
	return fmt.Sprintf("%s; the WAN %s is gone", why, prev.WAN)
}
