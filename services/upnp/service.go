package upnp

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"codeberg.org/monostack/gizmo/internal/boundedhttp"
	"codeberg.org/monostack/gizmo/internal/guarded"
	"codeberg.org/monostack/gizmo/internal/mailbox"
	"codeberg.org/monostack/gizmo/internal/serveloop"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// Config configures the service.
type Config struct {
	// Interface is the LAN interface: SSDP is served there only, and the
	// HTTP listeners are bound to it.
	Interface string
	// Backend owns the pinholes and decides.
	Backend Backend
	Logger  *slog.Logger
	// Limits bound the service; zero fields take DefaultLimits.
	Limits Limits
	// ConntrackDir is where the conntrack timeouts are read for
	// GetOutboundPinholeTimeout; empty: /proc/sys/net/netfilter.
	ConntrackDir string
}

// Stats are the service's counters since it was created.
type Stats struct {
	// Requests counts control requests by action and result: "ok" or
	// the UPnP error code answered ("606").
	Requests map[RequestKey]uint64
	// Refused counts requests refused, by reason: the Backend's reasons
	// (policy_off, host_full, …) and the service's own (rate_limited,
	// malformed, body_too_large, bad_host, cross_site).
	Refused map[string]uint64
	// Searches are M-SEARCHes answered, Replies the answers sent,
	// Notifies the announcements sent.
	Searches, Replies, Notifies uint64
	// SSDPDropped counts SSDP datagrams left unanswered, by reason
	// (malformed, not_search, rate_limited, queue_full, source_port,
	// no_location).
	SSDPDropped map[string]uint64
	// ConnsLimited counts HTTP connections that waited for a free slot,
	// ConnTimeouts those a header, read or idle timeout ended.
	ConnsLimited, ConnTimeouts uint64
	// ClientsEvicted counts clients the rate limiters forgot to make room.
	ClientsEvicted uint64
	// SendErrors counts SSDP datagrams that could not be sent.
	SendErrors uint64
}

// RequestKey is one action and its result.
type RequestKey struct {
	Action, Result string
}

// Service is the IGD. Create it with New; it serves nothing until Update
// gives it an enabled plan.
type Service struct {
	cfg    Config
	log    *slog.Logger
	limits Limits
	conns  boundedhttp.Counters

	plans mailbox.Box[Plan]

	stats    guarded.Stats[Stats]
	requests *buckets // HTTP requests per client
	searches *buckets // SSDP searches per client
	pending  atomic.Int64
}

// New returns a service for cfg.Interface.
func New(cfg Config) (*Service, error) {
	if cfg.Interface == "" {
		return nil, errors.New("upnp: no interface")
	}
	if cfg.Backend == nil {
		return nil, errors.New("upnp: no backend")
	}
	if cfg.ConntrackDir == "" {
		cfg.ConntrackDir = "/proc/sys/net/netfilter"
	}
	lim := cfg.Limits.withDefaults()
	s := &Service{
		cfg: cfg, log: svclog.For(cfg.Logger, "upnp", "interface", cfg.Interface), limits: lim,
		requests: newBuckets(lim.Requests, lim.RequestBurst, lim.AllRequests, lim.AllRequestBurst, lim.Clients),
		searches: newBuckets(lim.Searches, lim.SearchBurst, lim.AllSearches, lim.AllSearchBurst, lim.Clients),
	}
	s.stats.Clone = func(st Stats) Stats {
		st.Requests, st.Refused, st.SSDPDropped = maps.Clone(st.Requests), maps.Clone(st.Refused), maps.Clone(st.SSDPDropped)
		return st
	}
	s.count(func(st *Stats) {
		st.Requests, st.Refused, st.SSDPDropped = map[RequestKey]uint64{}, map[string]uint64{}, map[string]uint64{}
	})
	return s, nil
}

// Update hands the service a new plan; it never blocks. An invalid plan
// is refused with the reason, and the running one stays.
func (s *Service) Update(p Plan) error {
	if err := Validate(p); err != nil {
		return err
	}
	s.plans.Put(p)
	return nil
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	st := s.stats.Snapshot()
	st.ClientsEvicted = s.requests.evictions() + s.searches.evictions()
	st.ConnsLimited, st.ConnTimeouts = s.conns.Limited.Load(), s.conns.Timeouts.Load()
	return st
}

func (s *Service) count(f func(*Stats)) { s.stats.Add(f) }

func (s *Service) refused(reason string) { s.count(func(st *Stats) { st.Refused[reason]++ }) }

func (s *Service) dropped(reason string) { s.count(func(st *Stats) { st.SSDPDropped[reason]++ }) }

// Run serves until ctx is done, starting over whenever the plan changes.
// It opens every socket on its own goroutine (a caller may run it inside
// a network namespace, as the tests do).
func (s *Service) Run(ctx context.Context) error {
	var cur Plan
	for {
		for !cur.Enabled() {
			select {
			case <-ctx.Done():
				return nil
			case <-s.plans.C():
				if p, ok := s.plans.Take(); ok {
					cur = p
				}
			}
		}
		// A different plan ends this one's serving; an equal one (the
		// daemon replans on every observation) changes nothing.
		pctx, cancel := context.WithCancel(ctx)
		nextc := make(chan Plan, 1)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			for {
				select {
				case <-pctx.Done():
					return
				case <-s.plans.C():
					if p, ok := s.plans.Take(); ok && !p.Equal(cur) {
						nextc <- p
						cancel()
						return
					}
				}
			}
		}()
		s.log.Info("serving UPnP IGD:2", "location", location(cur.Location6, cur.Port), "listen", cur.Listen)
		serveloop.Run(pctx, s.log, "UPnP stopped, retrying", retry, func(ctx context.Context) error { return s.serve(ctx, cur) })
		cancel()
		<-watched // the mailbox has one reader at a time
		if ctx.Err() != nil {
			return nil
		}
		select {
		case cur = <-nextc:
		default:
		}
	}
}

// peerAddr is the address of a net.Addr (a UDP or TCP peer), unmapped.
func peerAddr(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// retry is how long a failed listener or SSDP socket waits before it is
// opened again.
const retry = 3 * time.Second
