package nsresponder

import (
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound how many solicitations the responder answers, so that a
// host flooding NS with made-up targets (each answer is a packet the gizmo
// sends) or made-up sources (each tracked source costs memory) gets its
// share and no more. A zero field takes its Default* value.
type Limits struct {
	// PerSource is the answers per second to one source address, with a
	// burst of PerSourceBurst: a host opening connections to many
	// synthesized addresses at once (a web page with IPv4-only servers)
	// resolves each of them.
	PerSource      float64
	PerSourceBurst int
	// All is the answers per second to all sources together, with a burst
	// of AllBurst.
	All      float64
	AllBurst int
	// MaxSources bounds the sources tracked at once. A source whose share
	// is whole again is forgotten when room is needed; while every tracked
	// source is busy, a new one is refused (ReasonSources).
	MaxSources int
}

// Defaults of Limits.
const (
	DefaultPerSource      = 50
	DefaultPerSourceBurst = 100
	DefaultAll            = 500
	DefaultAllBurst       = 1000
	DefaultMaxSources     = 1024
)

func (l Limits) withDefaults() Limits {
	if l.PerSource <= 0 {
		l.PerSource = DefaultPerSource
	}
	if l.PerSourceBurst <= 0 {
		l.PerSourceBurst = DefaultPerSourceBurst
	}
	if l.All <= 0 {
		l.All = DefaultAll
	}
	if l.AllBurst <= 0 {
		l.AllBurst = DefaultAllBurst
	}
	if l.MaxSources <= 0 {
		l.MaxSources = DefaultMaxSources
	}
	return l
}

// limiter applies Limits. It is used by one goroutine.
type limiter struct {
	lim     Limits
	all     *rate.Limiter
	sources map[netip.Addr]*rate.Limiter
	swept   time.Time
}

// sweepInterval is how often a full source table is swept for idle
// sources at most.
const sweepInterval = 100 * time.Millisecond

func newLimiter(l Limits) *limiter {
	l = l.withDefaults()
	return &limiter{
		lim:     l,
		all:     rate.NewLimiter(rate.Limit(l.All), l.AllBurst),
		sources: map[netip.Addr]*rate.Limiter{},
	}
}

// allow reports whether an answer to src may go out at now, and if not,
// why (a Reason* constant). The source's share is checked first, so that
// one flooding source uses up its own share and not everyone's.
func (l *limiter) allow(src netip.Addr, now time.Time) (bool, string) {
	s, ok := l.sources[src]
	if !ok {
		// A new source costs memory, and room for it a sweep of the
		// table: not while the answers of all are used up anyway (a flood
		// of made-up sources), and one sweep per sweepInterval at most.
		if l.all.TokensAt(now) < 1 {
			return false, ReasonRateAll
		}
		if len(l.sources) >= l.lim.MaxSources && now.Sub(l.swept) >= sweepInterval {
			l.forgetIdle(now)
			l.swept = now
		}
		if len(l.sources) >= l.lim.MaxSources {
			return false, ReasonSources
		}
		s = rate.NewLimiter(rate.Limit(l.lim.PerSource), l.lim.PerSourceBurst)
		l.sources[src] = s
	}
	if !s.AllowN(now, 1) {
		return false, ReasonRateSource
	}
	if !l.all.AllowN(now, 1) {
		return false, ReasonRateAll
	}
	return true, ""
}

// forgetIdle drops the sources whose share is whole again: tracking them
// changes nothing until they ask again.
func (l *limiter) forgetIdle(now time.Time) {
	for a, s := range l.sources {
		if s.TokensAt(now) >= float64(l.lim.PerSourceBurst) {
			delete(l.sources, a)
		}
	}
}

// tracked is how many sources the limiter holds.
func (l *limiter) tracked() int { return len(l.sources) }
