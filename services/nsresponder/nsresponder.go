// Package nsresponder answers IPv6 Neighbor Solicitations for every
// address in a few prefixes with the gizmo's own link-layer address, as
// the owner of those addresses would (RFC 4861 §7.2.4).
//
// It serves a prefix that the gizmo announces on-link (PIO L=1) and
// translates: hosts then resolve each address in it (RFC 4861 §7.2.2) and
// send straight to the gizmo, without a route. The kernel's proxy_ndp
// needs an entry per address and cannot cover a /96; a packet socket with
// a filter for NS whose target is in a prefix can. The gizmo's own
// addresses need none of this: the kernel answers for them.
//
// Answers are bounded (Limits: per source, in all, the sources tracked),
// and every answer and refusal is counted.
package nsresponder

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/packetsock"
	"codeberg.org/monostack/gizmo/internal/serveloop"
	"codeberg.org/monostack/gizmo/internal/servicecore"
)

// MaxPrefixes bounds Plan.Prefixes (and the socket filter's length).
const MaxPrefixes = 16

// Plan is what the daemon wants answered (gizmo/plan.NSResponder).
type Plan struct {
	// Prefixes are the targets answered, each /64 or longer: a shorter
	// one spans more than one link's addresses. Empty: nothing is
	// answered and no socket is open.
	Prefixes []netip.Prefix
	// Router sets the R flag (RFC 4861 §4.4): the gizmo forwards what it
	// receives for these addresses.
	Router bool
}

// check refuses a plan the responder cannot apply.
func (p Plan) check() error {
	if len(p.Prefixes) > MaxPrefixes {
		return fmt.Errorf("nsresponder: %d prefixes, at most %d", len(p.Prefixes), MaxPrefixes)
	}
	for _, q := range p.Prefixes {
		if !q.IsValid() || !q.Addr().Is6() || q.Addr().Is4In6() || q.Bits() < 64 {
			return fmt.Errorf("nsresponder: %s is not an IPv6 prefix of /64 or longer", q)
		}
		if a := q.Addr(); a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsLoopback() {
			return fmt.Errorf("nsresponder: %s is not unicast addressing of a link", q)
		}
	}
	return nil
}

func (p Plan) answers(a netip.Addr) bool {
	return slices.ContainsFunc(p.Prefixes, func(q netip.Prefix) bool { return q.Contains(a) })
}

// Config configures the service.
type Config struct {
	// Interface is where the solicitations are answered.
	Interface string
	Logger    *slog.Logger
	Limits    Limits
}

// Stats are the service's counters for the dashboard and /metrics.
type Stats struct {
	// Prefixes are the targets answered now.
	Prefixes []netip.Prefix
	// Received counts the solicitations the socket delivered.
	Received uint64
	// Answered counts Neighbor Advertisements sent, DADAnswered those
	// among them that defended an address against a DAD probe.
	Answered, DADAnswered uint64
	// Refused counts solicitations not answered, by reason (the Reason*
	// constants); RefusedTotal is their sum.
	Refused      map[string]uint64
	RefusedTotal uint64
	// Sources is how many sources the rate limit tracks now.
	Sources int
	// SendErrors counts answers that could not be sent; PlanErrors plans
	// refused (the previous one stays).
	SendErrors, PlanErrors uint64
}

// clone copies st with its own map of refusals and list of prefixes.
func (st Stats) clone() Stats {
	st.Refused = maps.Clone(st.Refused)
	st.Prefixes = slices.Clone(st.Prefixes)
	return st
}

// Service is the responder. Create it with New.
type Service struct {
	core servicecore.Core[Plan, Stats]
	cfg  Config
	// now is the clock of the rate limits.
	now func() time.Time
}

// Update hands the service a new plan. It never blocks; the newest plan
// wins over one not yet taken.
func (s *Service) Update(p Plan) { s.core.Update(p) }

// Stats returns a snapshot of the service's counters.
func (s *Service) Stats() Stats { return s.core.Stats() }

// New checks cfg and returns a service; Run starts it. It answers what the
// newest plan given to Update asks.
func New(cfg Config) (*Service, error) {
	s := &Service{cfg: cfg, now: time.Now}
	if err := s.core.Init("nsresponder", cfg.Interface, cfg.Logger, Stats{Refused: map[string]uint64{}}, Stats.clone); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Service) refused(reason string) {
	s.core.Count(func(st *Stats) { st.Refused[reason]++; st.RefusedTotal++ })
}

// Run answers until ctx is done. No socket is open while the plan answers
// nothing; errors of the interface are logged and retried.
func (s *Service) Run(ctx context.Context) error {
	r := &runner{Service: s, lim: newLimiter(s.cfg.Limits)}
	return s.core.Serve(ctx, "answering stopped, retrying", r.serve)
}

// runner is the state of one Run, kept across re-opened sockets.
type runner struct {
	*Service
	plan atomic.Pointer[Plan]
	lim  *limiter // used by the reading goroutine only
}

// serve waits for a plan that answers something, opens the socket and
// answers until the plan answers nothing, the interface goes away or ctx
// is done.
func (r *runner) serve(ctx context.Context) error {
	for r.current().Prefixes == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-r.core.Plans().C():
			r.take()
		}
	}
	ifi, err := net.InterfaceByName(r.cfg.Interface)
	if err != nil {
		return fmt.Errorf("nsresponder: %w", err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return fmt.Errorf("nsresponder: %s has no Ethernet address", ifi.Name)
	}
	conn, err := listen(ifi, r.current().Prefixes)
	if err != nil {
		return err
	}
	defer conn.Close()
	r.core.Log.Info("answering neighbor solicitations", "prefixes", r.current().Prefixes)

	done, stop := serveloop.Read(conn, func() error { return r.read(conn, ifi.HardwareAddr) })
	check := time.NewTicker(serveloop.CheckInterval)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			stop()
			return nil
		case err := <-done:
			return fmt.Errorf("nsresponder: read on %s: %w", ifi.Name, err)
		case <-check.C:
			if err := serveloop.SameInterface(ifi); err != nil {
				stop()
				return fmt.Errorf("nsresponder: %w", err)
			}
		case <-r.core.Plans().C():
			if !r.take() {
				continue
			}
			p := r.current()
			if p.Prefixes == nil {
				stop()
				r.core.Log.Info("answering nothing")
				return nil
			}
			if err := setFilter(conn, p.Prefixes); err != nil {
				stop()
				return err
			}
			r.core.Log.Info("answering neighbor solicitations", "prefixes", p.Prefixes)
		}
	}
}

// current is the plan in force.
func (r *runner) current() Plan {
	if p := r.plan.Load(); p != nil {
		return *p
	}
	return Plan{}
}

// take puts the newest plan in force, or counts and logs it when it cannot
// be applied. It reports whether the plan in force changed.
func (r *runner) take() bool {
	p, ok := r.core.Plans().Take()
	if !ok {
		return false
	}
	if err := p.check(); err != nil {
		r.core.Count(func(st *Stats) { st.PlanErrors++ })
		r.core.Log.Error("plan refused, keeping the previous one", "err", err)
		return false
	}
	if len(p.Prefixes) == 0 {
		p.Prefixes = nil
	}
	p.Prefixes = slices.Clone(p.Prefixes)
	cur := r.current()
	if slices.Equal(cur.Prefixes, p.Prefixes) && cur.Router == p.Router {
		return false
	}
	r.plan.Store(&p)
	r.core.Count(func(st *Stats) { st.Prefixes = slices.Clone(p.Prefixes) })
	return true
}

// read answers each solicitation the socket delivers until it fails.
func (r *runner) read(conn *packet.Conn, mac net.HardwareAddr) error {
	b := make([]byte, snapLen)
	for {
		n, from, err := conn.ReadFrom(b)
		if err != nil {
			return err
		}
		r.core.Count(func(st *Stats) { st.Received++ })
		var frameSource net.HardwareAddr
		if pa, ok := from.(*packet.Addr); ok {
			frameSource = pa.HardwareAddr
		}
		r.answer(conn, b[:n], frameSource, mac)
	}
}

// answer checks one solicitation and answers it, or counts why not.
func (r *runner) answer(conn *packet.Conn, b []byte, frameSource net.HardwareAddr, mac net.HardwareAddr) {
	ns, err := parseNS(b)
	if err != nil {
		r.refused(reasonOf(err))
		r.core.Log.Debug("refused neighbor solicitation", "err", err)
		return
	}
	p := r.current()
	if !p.answers(ns.target) {
		// The filter of an earlier plan, between a plan change and the
		// new filter.
		r.refused(ReasonNotTarget)
		return
	}
	ok, reason := r.lim.allow(ns.source, r.now())
	r.core.Count(func(st *Stats) { st.Sources = r.lim.tracked() })
	if !ok {
		r.refused(reason)
		return
	}
	na, dstMAC, err := advertisement(ns, frameSource, mac, p.Router)
	if err != nil {
		r.refused(ReasonInvalid)
		return
	}
	if _, err := conn.WriteTo(na, &packet.Addr{HardwareAddr: dstMAC}); err != nil {
		r.core.Count(func(st *Stats) { st.SendErrors++ })
		r.core.Log.Warn("sending neighbor advertisement failed", "target", ns.target, "to", ns.source, "err", err)
		return
	}
	r.core.Count(func(st *Stats) {
		st.Answered++
		if ns.source.IsUnspecified() {
			st.DADAnswered++
		}
	})
}

// listen opens the packet socket: IPv6 without link-layer headers, the
// filter for prefixes, and every multicast group joined for the socket's
// lifetime (PACKET_MR_ALLMULTI), because an NS goes to its target's
// solicited-node group (RFC 4861 §7.2.2) and the gizmo joins none of the
// groups of the addresses it answers for. The kernel drops the membership
// when the socket closes, even after a crash.
func listen(ifi *net.Interface, prefixes []netip.Prefix) (*packet.Conn, error) {
	c, err := packetsock.Listen(ifi, packet.Datagram, unix.ETH_P_IPV6, filter(prefixes))
	if err != nil {
		return nil, fmt.Errorf("nsresponder: %w", err)
	}
	if err := packetsock.AllMulticast(c, ifi); err != nil {
		return nil, fmt.Errorf("nsresponder: %w", err)
	}
	return c, nil
}

// setFilter replaces the socket's filter for new prefixes.
func setFilter(c *packet.Conn, prefixes []netip.Prefix) error {
	raw, err := bpf.Assemble(filter(prefixes))
	if err != nil {
		return fmt.Errorf("nsresponder: assemble filter: %w", err)
	}
	if err := c.SetBPF(raw); err != nil {
		return fmt.Errorf("nsresponder: set filter: %w", err)
	}
	return nil
}
