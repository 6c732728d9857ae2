package ra

import (
	"net/netip"
	"time"
)

// Protocol constants of RFC 4861 §10 (router constants).
const (
	maxInitialRtrAdvertInterval = 16 * time.Second // MAX_INITIAL_RTR_ADVERT_INTERVAL
	maxInitialRtrAdvertisements = 3                // MAX_INITIAL_RTR_ADVERTISEMENTS
	minDelayBetweenRAs          = 3 * time.Second  // MIN_DELAY_BETWEEN_RAS
	maxRADelayTime              = 500 * time.Millisecond
)

// maxPendingUnicast bounds the per-host state kept for unicast replies; past
// it, solicitations are answered by the (rate-limited) multicast RA, so a
// flood of RS from made-up sources costs no memory.
const maxPendingUnicast = 64

// scheduler decides when RAs go out (RFC 4861 §6.2.4, §6.2.6). It is pure
// bookkeeping over the times it is given, so tests drive it with made-up
// clocks; the service's loop asks it what is due and when to wake up.
type scheduler struct {
	maxInterval time.Duration
	// rnd returns a uniform random value in [0, n).
	rnd func(n int64) int64

	lastMulticast time.Time
	next          time.Time // next multicast RA; zero when none is scheduled
	nextSolicited bool      // the next multicast RA answers an RS
	initialLeft   int       // fast initial RAs still to send

	unicastDue  map[netip.Addr]time.Time
	lastUnicast map[netip.Addr]time.Time
}

func newScheduler(maxInterval time.Duration, rnd func(int64) int64) *scheduler {
	return &scheduler{
		maxInterval: maxInterval,
		rnd:         rnd,
		unicastDue:  map[netip.Addr]time.Time{},
		lastUnicast: map[netip.Addr]time.Time{},
	}
}

// minInterval is MinRtrAdvInterval's default (RFC 4861 §6.2.1): 0.33 ×
// MaxRtrAdvInterval from 9 s up, else MaxRtrAdvInterval; never under 3 s.
func minInterval(maxInterval time.Duration) time.Duration {
	if maxInterval >= 9*time.Second {
		return max(maxInterval*33/100, 3*time.Second)
	}
	return maxInterval
}

func (s *scheduler) uniform(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rnd(int64(hi-lo)+1))
}

// changed restarts the fast initial schedule: the interface just became an
// advertising one, or what it advertises changed (RFC 4861 §6.2.4), so that
// a renumbering reaches hosts at once. Multicast RAs stay at least
// MIN_DELAY_BETWEEN_RAS apart.
func (s *scheduler) changed(now time.Time, maxInterval time.Duration) {
	s.maxInterval = maxInterval
	s.initialLeft = maxInitialRtrAdvertisements
	at := now
	if !s.lastMulticast.IsZero() {
		at = maxTime(at, s.lastMulticast.Add(minDelayBetweenRAs))
	}
	if s.next.IsZero() || at.Before(s.next) {
		s.next = at
	}
}

// solicited records a valid RS at now and returns true when it will be
// answered by unicast to src (RFC 4861 §6.2.6 allows that for a host that
// has an address); otherwise the answer is the next multicast RA.
func (s *scheduler) solicited(now time.Time, src netip.Addr) (unicast bool) {
	if s.next.IsZero() {
		// Nothing is being advertised (no plan yet, or shut down).
		return false
	}
	delay := s.uniform(0, maxRADelayTime)
	s.forget(now)
	if src.IsLinkLocalUnicast() && len(s.unicastDue) < maxPendingUnicast && len(s.lastUnicast) < maxPendingUnicast {
		if _, pending := s.unicastDue[src]; pending {
			return true
		}
		at := now.Add(delay)
		// The same rate limit as for multicast RAs, per host, so that a
		// host soliciting in a loop gets at most one RA every 3 s.
		if last, ok := s.lastUnicast[src]; ok {
			at = maxTime(at, last.Add(minDelayBetweenRAs))
		}
		s.unicastDue[src] = at
		return true
	}
	at := now.Add(delay)
	if !s.lastMulticast.IsZero() && now.Sub(s.lastMulticast) < minDelayBetweenRAs {
		at = s.lastMulticast.Add(minDelayBetweenRAs + delay)
	}
	if at.Before(s.next) {
		s.next = at
		s.nextSolicited = true
	}
	return false
}

// due returns what must be sent at now: whether a multicast RA is due and
// whether it answers an RS, and the hosts owed a unicast RA.
func (s *scheduler) due(now time.Time) (multicast, solicited bool, unicast []netip.Addr) {
	if !s.next.IsZero() && !now.Before(s.next) {
		multicast, solicited = true, s.nextSolicited
	}
	for a, at := range s.unicastDue {
		if !now.Before(at) {
			unicast = append(unicast, a)
		}
	}
	return multicast, solicited, unicast
}

// sentMulticast records a multicast RA at now and schedules the next
// unsolicited one: uniformly in [MinRtrAdvInterval, MaxRtrAdvInterval], and
// no later than MAX_INITIAL_RTR_ADVERT_INTERVAL while initial RAs remain
// (RFC 4861 §6.2.4).
func (s *scheduler) sentMulticast(now time.Time) {
	s.lastMulticast = now
	s.nextSolicited = false
	d := s.uniform(minInterval(s.maxInterval), s.maxInterval)
	if s.initialLeft > 0 {
		s.initialLeft--
	}
	if s.initialLeft > 0 {
		d = min(d, maxInitialRtrAdvertInterval)
	}
	s.next = now.Add(d)
	// A multicast RA answers every host that was waiting for a unicast one.
	clear(s.unicastDue)
}

// sentUnicast records a unicast RA to a at now.
func (s *scheduler) sentUnicast(now time.Time, a netip.Addr) {
	delete(s.unicastDue, a)
	s.lastUnicast[a] = now
}

// forget drops hosts whose rate limit has run out, so the map stays small.
func (s *scheduler) forget(now time.Time) {
	for h, t := range s.lastUnicast {
		if now.Sub(t) >= minDelayBetweenRAs {
			delete(s.lastUnicast, h)
		}
	}
}

// wake returns the earliest time something is due; zero when nothing is.
func (s *scheduler) wake() time.Time {
	w := s.next
	for _, at := range s.unicastDue {
		if w.IsZero() || at.Before(w) {
			w = at
		}
	}
	return w
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
