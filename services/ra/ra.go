// Package ra sends IPv6 Router Advertisements on the LAN (RFC 4861 §6.2):
// unsolicited ones on the RFC's timer, answers to Router Solicitations, a
// prompt fresh RA whenever the plan changes, and a final RA with router
// lifetime 0 on shutdown (which also withdraws every prefix, route and DNS
// option when the plan says so). What to advertise is a Plan value
// computed by the daemon; this package only applies it.
package ra

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"

	"codeberg.org/monostack/gizmo/internal/ndpsock"
	"codeberg.org/monostack/gizmo/internal/serveloop"
	"codeberg.org/monostack/gizmo/internal/servicecore"
)

// Config configures the service.
type Config struct {
	// Interface is the LAN interface, e.g. "lan0".
	Interface string
	Logger    *slog.Logger
}

// Stats are the service's counters since it was created.
type Stats struct {
	RSReceived uint64
	// RSInvalid counts dropped solicitations by reason (the Reason*
	// constants); RSInvalidTotal is their sum.
	RSInvalid      map[string]uint64
	RSInvalidTotal uint64
	// RSQueueFull counts valid solicitations dropped because the sender
	// could not keep up.
	RSQueueFull uint64

	RAUnsolicited        uint64 // multicast, on the timer or after a plan change
	RASolicitedMulticast uint64
	RASolicitedUnicast   uint64
	RAFinal              uint64 // router lifetime 0, on shutdown
	SendErrors           uint64
	// PlanErrors counts plans that could not be encoded; the previous plan
	// stays in force.
	PlanErrors uint64
	LastRA     time.Time
}

// clone copies st with its own map of drops.
func (st Stats) clone() Stats {
	st.RSInvalid = maps.Clone(st.RSInvalid)
	return st
}

// Service is the Router Advertisement sender. Create it with New.
type Service struct {
	core servicecore.Core[Plan, Stats]
	cfg  Config
}

// Update hands the service a new plan. It never blocks; the newest plan
// wins over one not yet taken.
func (s *Service) Update(p Plan) { s.core.Update(p) }

// Stats returns a snapshot of the service's counters.
func (s *Service) Stats() Stats { return s.core.Stats() }

// New returns a service for cfg.Interface; Run starts it. Nothing is
// advertised before the first plan given to Update; the newest plan wins.
func New(cfg Config) (*Service, error) {
	s := &Service{cfg: cfg}
	if err := s.core.Init("ra", cfg.Interface, cfg.Logger, Stats{RSInvalid: map[string]uint64{}}, Stats.clone); err != nil {
		return nil, err
	}
	return s, nil
}

// Run advertises on the interface until ctx is done, then sends a final RA
// with router lifetime 0 (RFC 4861 §6.2.5) so that hosts stop using the
// gizmo as default router at once, and returns nil. Errors of the interface
// (missing, no link-local address yet, gone) are logged and retried.
func (s *Service) Run(ctx context.Context) error {
	r := &runner{
		Service: s,
		sched:   newScheduler(DefaultMaxInterval, rand.Int64N),
	}
	return s.core.Serve(ctx, "advertising stopped, retrying", r.serve)
}

// runner is the state of one Run: the plan in force and the schedule, kept
// across re-opened sockets.
type runner struct {
	*Service
	sched   *scheduler
	plan    *Plan
	lla     net.HardwareAddr // the interface's MAC, for plans without one
	conn    *ndp.Conn
	solicit chan Solicitation
}

func (r *runner) serve(ctx context.Context) error {
	ifi, err := net.InterfaceByName(r.cfg.Interface)
	if err != nil {
		return fmt.Errorf("ra: %w", err)
	}
	// Go's net package maps zone names to interface indexes through a cache
	// that may be 60 s old; after the interface is re-created, the zone
	// "lan0" would still mean the old index. A numeric zone skips the cache.
	byIndex := *ifi
	byIndex.Name = strconv.Itoa(ifi.Index)
	conn, _, err := ndp.Listen(&byIndex, ndp.LinkLocal)
	if err != nil {
		return fmt.Errorf("ra: listen on %s: %w", ifi.Name, err)
	}
	defer conn.Close()
	if err := setupConn(conn); err != nil {
		return fmt.Errorf("ra: set up socket on %s: %w", ifi.Name, err)
	}
	r.conn, r.lla = conn, ifi.HardwareAddr
	r.solicit = make(chan Solicitation, 64)
	if r.plan != nil {
		// A new socket may follow a new link: start over with fast RAs.
		r.sched.changed(time.Now(), r.plan.Interval())
	}
	r.core.Log.Info("advertising", "mtu", ifi.MTU)

	readErr, stop := serveloop.Read(conn, func() error { return r.read(conn, ifi.MTU) })
	check := time.NewTicker(serveloop.CheckInterval)
	defer check.Stop()
	for {
		var (
			wake  <-chan time.Time
			timer *time.Timer
		)
		if w := r.sched.wake(); !w.IsZero() {
			timer = time.NewTimer(time.Until(w))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			r.sendFinal()
			stop()
			return ctx.Err()
		case err := <-readErr:
			return fmt.Errorf("ra: read on %s: %w", ifi.Name, err)
		case <-r.core.Plans().C():
			r.takePlan(time.Now())
		case sol := <-r.solicit:
			r.sched.solicited(time.Now(), sol.Source)
		case <-wake:
		case <-check.C:
			if err := serveloop.SameInterface(ifi); err != nil {
				stop()
				return fmt.Errorf("ra: %w", err)
			}
		}
		if timer != nil {
			timer.Stop()
		}
		if err := r.sendDue(time.Now()); err != nil {
			stop()
			return err
		}
	}
}

func setupConn(c *ndp.Conn) error {
	// Routers listen to all-routers, where hosts send their RS (RFC 4861 §6.3.7).
	if err := c.JoinGroup(netip.MustParseAddr("ff02::2")); err != nil {
		return err
	}
	// The hop limit is needed to validate an RS (RFC 4861 §6.1.1).
	return ndpsock.Accept(c, ipv6.ICMPTypeRouterSolicitation)
}

// read validates each solicitation and passes the valid ones to the loop.
func (r *runner) read(conn *ndp.Conn, mtu int) error {
	b := make([]byte, max(mtu, 1280))
	for {
		m, err := ndpsock.Read(conn, b)
		if err != nil {
			return err
		}
		sol, reason := checkSolicitation(m.Bytes, m.HopLimit, m.Src)
		r.core.Count(func(st *Stats) {
			st.RSReceived++
			if reason != "" {
				st.RSInvalid[reason]++
				st.RSInvalidTotal++
			}
		})
		if reason != "" {
			r.core.Log.Debug("dropped router solicitation", "src", m.Src, "reason", reason)
			continue
		}
		select {
		case r.solicit <- sol:
		default:
			r.core.Count(func(st *Stats) { st.RSQueueFull++ })
		}
	}
}

// takePlan picks up the newest plan. A plan that changes what is advertised
// restarts the fast initial RAs, so that a renumbering reaches hosts at once
// (RFC 4861 §6.2.4).
func (r *runner) takePlan(now time.Time) {
	taken, ok := r.core.Plans().Take()
	if !ok {
		return
	}
	p := &taken
	next, err := ndp.MarshalMessage(r.message(*p, now))
	if err != nil {
		r.core.Count(func(st *Stats) { st.PlanErrors++ })
		r.core.Log.Error("plan cannot be advertised, keeping the previous one", "err", err)
		return
	}
	if r.plan != nil {
		cur, err := ndp.MarshalMessage(r.message(*r.plan, now))
		if err == nil && bytes.Equal(cur, next) && p.Interval() == r.plan.Interval() {
			r.plan = p
			return
		}
	}
	r.plan = p
	r.sched.changed(now, p.Interval())
}

func (r *runner) message(p Plan, now time.Time) *ndp.RouterAdvertisement {
	if len(p.SourceLinkLayer) == 0 {
		p.SourceLinkLayer = r.lla
	}
	return p.Message(now)
}

var allNodes = netip.MustParseAddr("ff02::1")

func (r *runner) sendDue(now time.Time) error {
	if r.plan == nil {
		return nil
	}
	multicast, solicited, unicast := r.sched.due(now)
	if multicast {
		if err := r.send(r.message(*r.plan, now), allNodes); err != nil {
			return err
		}
		r.sched.sentMulticast(now)
		r.core.Count(func(st *Stats) {
			if solicited {
				st.RASolicitedMulticast++
			} else {
				st.RAUnsolicited++
			}
		})
	}
	for _, dst := range unicast {
		if err := r.send(r.message(*r.plan, now), dst); err != nil {
			return err
		}
		r.sched.sentUnicast(now, dst)
		r.core.Count(func(st *Stats) { st.RASolicitedUnicast++ })
	}
	return nil
}

// send writes one RA. Errors that a later RA may not hit (a host gone from
// the neighbour cache, a full queue) are counted; a closed socket ends serve.
func (r *runner) send(m *ndp.RouterAdvertisement, dst netip.Addr) error {
	err := r.conn.WriteTo(m, nil, dst)
	if err == nil {
		r.core.Count(func(st *Stats) { st.LastRA = time.Now() })
		return nil
	}
	r.core.Count(func(st *Stats) { st.SendErrors++ })
	// The interface went away or lost its address (a bridge rebuilt, a
	// cable pulled): open a new socket rather than failing every RA.
	for _, fatal := range []error{net.ErrClosed, syscall.ENODEV, syscall.ENXIO, syscall.EADDRNOTAVAIL, syscall.ENETDOWN} {
		if errors.Is(err, fatal) {
			return fmt.Errorf("ra: send to %s: %w", dst, err)
		}
	}
	// An answer to one host fails when the kernel cannot add that host to
	// its neighbour table, which an RS flood from made-up hosts fills:
	// counted, and logged at debug level so that a flood cannot fill the
	// log.
	level := slog.LevelWarn
	if !dst.IsMulticast() {
		level = slog.LevelDebug
	}
	r.core.Log.Log(context.Background(), level, "sending router advertisement failed", "dst", dst, "err", err)
	return nil
}

// sendFinal announces that the gizmo is no longer a default router
// (RFC 4861 §6.2.5). Prefixes, DNS and PREF64 stay as they were, so that
// hosts keep their addresses across a restart of the daemon, unless the
// plan asks to withdraw them (Plan.WithdrawOnStop).
func (r *runner) sendFinal() {
	if r.plan == nil {
		return
	}
	p := *r.plan
	if p.WithdrawOnStop {
		p = p.Withdrawn()
	}
	m := r.message(p, time.Now())
	m.RouterLifetime = 0
	m.RouterSelectionPreference = ndp.Medium
	if err := r.conn.WriteTo(m, nil, allNodes); err != nil {
		r.core.Count(func(st *Stats) { st.SendErrors++ })
		r.core.Log.Warn("sending final router advertisement failed", "err", err)
		return
	}
	r.core.Count(func(st *Stats) { st.RAFinal++; st.LastRA = time.Now() })
	r.core.Log.Info("sent final router advertisement with router lifetime 0")
}
