package roles

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// WatchConfig configures Watch.
type WatchConfig struct {
	// Roles in force, with the ports' present names (the WAN is uplink0,
	// or "" when no port heard an upstream at start).
	Roles Roles
	// Ports are every port that can take a role (Ports()).
	Ports []string
	// Bridge is the LAN bridge the LAN ports are in (LANName).
	Bridge     string
	Thresholds Thresholds
	// ProbeTimeout bounds the probe of a port that came up while the WAN
	// was down; the port is out of the bridge meanwhile.
	ProbeTimeout time.Duration
	Logger       *slog.Logger
	// OnEvaluation reports each observation the watch weighed, for the
	// dashboard; it must not block.
	OnEvaluation func(Evaluation)
	// Pinned reports whether the WAN in force has proven itself (it
	// carried a delegation or a DHCPv4 lease, or the owner chose it). Then
	// nothing heard on a LAN port moves the role (Tracker.Pin), and no LAN
	// port is taken out of the bridge to be probed. Asked at start and
	// once a second; nil means never.
	Pinned func() bool
	// OnRogue reports an upstream server (a default router, a DHCPv4 or
	// DHCPv6 server) heard on a LAN port while the roles have a WAN, at
	// most once per rogueReportEvery for each port and kind; it must not
	// block.
	OnRogue func(Rogue)
}

// Rogue is an upstream heard on a LAN port while the roles have a WAN.
type Rogue struct {
	Port   string
	Signal Signal
	At     time.Time
	SrcMAC net.HardwareAddr
	From   netip.Addr
}

// rogueReportEvery bounds how often a port's rogue of one kind is
// reported: a router on the LAN side sends every few seconds, and each
// report changes the daemon's state. Keyed by port and kind only, the
// memory of it cannot grow with the senders a LAN host makes up.
const rogueReportEvery = 5 * time.Second

// Evaluation is one observation the watch weighed, and what came of it.
type Evaluation struct {
	At   time.Time
	Port string
	What string
}

// Watch re-evaluates the roles while the gizmo runs: it follows the carrier
// of every port (netlink), listens on the LAN-side ports for upstream
// signals (listenUpstream) and feeds both to a Tracker once a second. It
// returns the decision when the roles should change, or ctx's error.
//
// While the WAN is down (or there is none), a LAN port whose carrier comes
// up, or that hears an upstream, is taken out of the bridge and probed
// before it carries the LAN again: the uplink may be moving there, and then
// the ISP's RAs must not reach the LAN hosts, nor the LAN's RAs and DHCP
// replies reach the ISP. The port rejoins the bridge when the probe heard
// nothing, when its carrier drops, or when the WAN is back.
//
// While the WAN is pinned (WatchConfig.Pinned), none of that happens: the
// roles stay, LAN ports stay in the bridge, and what a LAN port hears is
// only reported (OnRogue) and noted.
func Watch(ctx context.Context, cfg WatchConfig) (Decision, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Thresholds.Rounds == 0 {
		cfg.Thresholds = DefaultThresholds
	}
	if cfg.ProbeTimeout == 0 {
		cfg.ProbeTimeout = 3 * time.Second
	}
	if cfg.OnEvaluation == nil {
		cfg.OnEvaluation = func(Evaluation) {}
	}
	if cfg.Pinned == nil {
		cfg.Pinned = func() bool { return false }
	}
	if cfg.OnRogue == nil {
		cfg.OnRogue = func(Rogue) {}
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &watch{cfg: cfg, log: cfg.Logger.With("component", "roles"), events: make(chan event, 64),
		quarantined: map[string]bool{}, probing: map[string]bool{}, carrier: map[string]bool{}, noted: map[string]time.Time{},
		rogues: map[string]time.Time{}}
	now := time.Now()
	w.tr = NewTracker(cfg.Roles, cfg.Ports, cfg.Thresholds, now)
	w.tr.Pin(cfg.Pinned())
	// No goroutine of the watch outlives it: a late probe must not take a
	// port out of the bridge after the next roles were applied.
	defer w.goroutines.Wait()
	defer cancel()

	updates := make(chan netlink.LinkUpdate, 32)
	if err := netlink.LinkSubscribeWithOptions(updates, ctx.Done(), netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			if ctx.Err() == nil {
				w.log.Warn("link updates", "err", err)
			}
		},
	}); err != nil {
		return Decision{}, fmt.Errorf("roles: subscribe to link updates: %w", err)
	}
	own := ownMACs()
	for _, p := range cfg.Ports {
		if p == cfg.Roles.WAN {
			continue
		}
		w.goroutines.Go(func() {
			err := listenUpstream(ctx, p, func(u Upstream) {
				if own[u.SrcMAC.String()] {
					return // the gizmo's own frame, looped back by the LAN
				}
				w.send(ctx, event{port: p, signal: u.Signal, from: u, at: time.Now()})
			})
			if err != nil && ctx.Err() == nil {
				w.log.Warn("cannot listen for upstream signals", "port", p, "err", err)
			}
		})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return Decision{}, ctx.Err()
		case u, ok := <-updates:
			if !ok {
				return Decision{}, fmt.Errorf("roles: link updates ended")
			}
			a := u.Attrs()
			if slices.Contains(cfg.Ports, a.Name) {
				// A port that is gone (a USB NIC pulled out) has no carrier.
				w.link(ctx, a.Name, hasCarrier(a) && u.Header.Type != unix.RTM_DELLINK, time.Now())
			}
		case ev := <-w.events:
			w.handle(ctx, ev)
		case now := <-tick.C:
			w.pin()
			w.rebridgeIfWANBack()
			w.quarantineHeard(ctx)
			if d, ok := w.tr.Tick(now); ok {
				w.log.Info("roles re-evaluated: changing", "roles", d.Roles.String(), "reason", d.Reason)
				return d, nil
			}
		}
	}
}

type event struct {
	port   string
	signal Signal
	from   Upstream
	probe  *Evidence
	at     time.Time
	// started is when the probe began.
	started time.Time
}

type watch struct {
	cfg    WatchConfig
	log    *slog.Logger
	tr     *Tracker
	events chan event
	// quarantined ports are out of the bridge until a probe clears them.
	quarantined map[string]bool
	probing     map[string]bool
	carrier     map[string]bool
	noted       map[string]time.Time
	// rogues is when each port's rogue of each kind was last reported.
	rogues     map[string]time.Time
	goroutines sync.WaitGroup
}

// pin follows the daemon's word on whether the WAN has proven itself.
func (w *watch) pin() {
	p := w.cfg.Pinned()
	if p == w.tr.Pinned() {
		return
	}
	w.tr.Pin(p)
	if p {
		w.evaluated(w.tr.Current().WAN, "the WAN has proven itself: nothing heard on a LAN port moves its role now")
	}
}

// rogue reports an upstream heard on a LAN port while there is a WAN.
func (w *watch) rogue(ev event) {
	if w.tr.Current().WAN == "" || ev.signal == SignalRouterNoDefault {
		return // no WAN yet: an upstream there is what detection looks for
	}
	key := ev.port + "/" + ev.signal.Kind()
	if ev.at.Sub(w.rogues[key]) < rogueReportEvery {
		return
	}
	w.rogues[key] = ev.at
	w.cfg.OnRogue(Rogue{Port: ev.port, Signal: ev.signal, At: ev.at, SrcMAC: ev.from.SrcMAC, From: ev.from.From})
}

func (w *watch) send(ctx context.Context, ev event) {
	select {
	case w.events <- ev:
	case <-ctx.Done():
	}
}

func (w *watch) evaluated(port, what string) {
	w.log.Info("roles: weighed an observation", "port", port, "what", what)
	w.cfg.OnEvaluation(Evaluation{At: time.Now(), Port: port, What: what})
}

func (w *watch) link(ctx context.Context, port string, up bool, at time.Time) {
	prev, known := w.carrier[port]
	w.carrier[port] = up
	w.tr.Link(port, up, at)
	if known && prev == up {
		return
	}
	if !known {
		return // the listing at start, not a change
	}
	state := map[bool]string{true: "carrier up", false: "carrier down"}[up]
	switch {
	case port == w.tr.Current().WAN:
		w.evaluated(port, "WAN "+state)
	case !up:
		w.rebridge(port)
		w.evaluated(port, state)
	case w.tr.Pinned():
		w.evaluated(port, state+"; the WAN has proven itself, so it stays a LAN port")
	case w.tr.WANDown():
		w.evaluated(port, state+" while there is no WAN: probing it out of the bridge")
		w.quarantine(ctx, port)
	default:
		w.evaluated(port, state+"; the WAN is up, so it stays a LAN port")
	}
}

func (w *watch) handle(ctx context.Context, ev event) {
	if ev.probe != nil {
		delete(w.probing, ev.port)
		e := *ev.probe
		var heard []Signal
		if e.RouterAdvertisement {
			heard = append(heard, SignalRouter)
		} else if e.AnyRouterAdvertisement {
			heard = append(heard, SignalRouterNoDefault)
		}
		if e.DHCPv4Server {
			heard = append(heard, SignalDHCPv4Server)
		}
		for _, s := range heard {
			w.tr.Heard(ev.port, s, ev.at)
		}
		if score(e) < 2 || !w.carrier[ev.port] || !w.tr.WANDown() || w.tr.Pinned() {
			if score(e) < 2 {
				w.tr.Forget(ev.port, ev.started)
			}
			w.rebridge(ev.port)
			w.evaluated(ev.port, "probed: no upstream server; back in the LAN")
			return
		}
		w.evaluated(ev.port, fmt.Sprintf("probed: hears %s; kept out of the LAN while the hysteresis runs", signalsText(heard)))
		return
	}
	w.rogue(ev)
	w.tr.Heard(ev.port, ev.signal, ev.at)
	if ev.signal == SignalRouterNoDefault {
		return // not an upstream: the gizmo's own existing-network RA is one
	}
	key := ev.port + "/" + ev.signal.String()
	if w.tr.Pinned() {
		// A router on the LAN side sends every few seconds: note it
		// once a minute, not every time.
		if ev.at.Sub(w.noted[key]) >= time.Minute {
			w.noted[key] = ev.at
			w.evaluated(ev.port, fmt.Sprintf("heard %s from %s (%s); the WAN has proven itself, so the roles stay", ev.signal, ev.from.From, ev.from.SrcMAC))
		}
		return
	}
	if w.tr.WANDown() && !w.quarantined[ev.port] {
		w.evaluated(ev.port, fmt.Sprintf("heard %s from %s while there is no WAN: probing it out of the bridge", ev.signal, ev.from.From))
		w.quarantine(ctx, ev.port)
		return
	}
	// Noted once a minute, as above.
	if !w.quarantined[ev.port] && ev.at.Sub(w.noted[key]) >= time.Minute {
		w.noted[key] = ev.at
		w.evaluated(ev.port, fmt.Sprintf("heard %s from %s (%s); the WAN is up, so the roles stay", ev.signal, ev.from.From, ev.from.SrcMAC))
	}
}

func signalsText(ss []Signal) string {
	var out string
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += s.String()
	}
	return out
}

// quarantine takes port out of the bridge, at once (before any decision can
// make it the WAN), and probes it.
func (w *watch) quarantine(ctx context.Context, port string) {
	w.quarantined[port] = true
	if l, err := netlink.LinkByName(port); err == nil && l.Attrs().MasterIndex != 0 {
		if err := netlink.LinkSetNoMaster(l); err != nil {
			w.log.Warn("cannot take the port out of the LAN", "port", port, "err", err)
		}
	}
	if w.probing[port] {
		return
	}
	w.probing[port] = true
	w.goroutines.Go(func() {
		started := time.Now()
		e := Probe(ctx, port, w.cfg.ProbeTimeout, w.log)
		w.send(ctx, event{port: port, probe: &e, at: time.Now(), started: started})
	})
}

// quarantineHeard takes the ports that heard an upstream while the WAN was
// up out of the bridge once the WAN is down: one of them may become the
// WAN, and must not carry the LAN's services when it does. The probe also
// tells whether what they heard then is still there.
func (w *watch) quarantineHeard(ctx context.Context) {
	if !w.tr.WANDown() || w.tr.Pinned() {
		return
	}
	for _, p := range w.cfg.Ports {
		if p != w.tr.Current().WAN && !w.quarantined[p] && w.carrier[p] && w.tr.HeardUpstream(p) {
			w.evaluated(p, "heard an upstream before and there is no WAN now: probing it out of the bridge")
			w.quarantine(ctx, p)
		}
	}
}

// rebridge puts a quarantined port back into the LAN bridge.
func (w *watch) rebridge(port string) {
	if !w.quarantined[port] || w.probing[port] {
		return
	}
	delete(w.quarantined, port)
	l, err := netlink.LinkByName(port)
	if err != nil {
		w.log.Warn("port gone", "port", port, "err", err)
		return
	}
	br, err := netlink.LinkByName(w.cfg.Bridge)
	if err != nil {
		w.log.Warn("LAN bridge gone", "bridge", w.cfg.Bridge, "err", err)
		return
	}
	if err := netlink.LinkSetMaster(l, br); err != nil {
		w.log.Warn("cannot put the port back into the LAN", "port", port, "err", err)
	}
}

// rebridgeIfWANBack releases the quarantined ports once the WAN has its
// carrier again (the uplink did not move) or has proven itself.
func (w *watch) rebridgeIfWANBack() {
	if w.tr.WANDown() && !w.tr.Pinned() {
		return
	}
	for p := range w.quarantined {
		if !w.probing[p] {
			w.rebridge(p)
			w.evaluated(p, "the WAN is back or has proven itself: back in the LAN")
		}
	}
}

func hasCarrier(a *netlink.LinkAttrs) bool {
	return a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown && a.Flags&net.FlagRunning != 0
}

// ownMACs are the hardware addresses of the gizmo's own links.
func ownMACs() map[string]bool {
	out := map[string]bool{}
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if len(i.HardwareAddr) > 0 {
			out[i.HardwareAddr.String()] = true
		}
	}
	return out
}
