package timesync

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/beevik/ntp"
)

// Clock-discipline thresholds, after chrony's defaults for a router-class
// clock (a Pi's crystal drifts tens of ppm, and nothing on the gizmo needs
// better than milliseconds).
const (
	// stepThreshold: an offset beyond it is stepped even after the first
	// sync (chrony's makestep 0.5 for any update, where the kernel would
	// need over 1000 s to slew it at 500 ppm).
	stepThreshold = 500 * time.Millisecond
	// noiseFloor: offsets below it are within the jitter of one LAN or
	// broadband sample; correcting them would only chase noise.
	noiseFloor = time.Millisecond
	// falsetickerSpread: with three or more samples, one whose offset is
	// this far from the median is a falseticker (RFC 5905 §11.2.1 in the
	// small: a majority of agreeing servers outvotes a wrong one).
	falsetickerSpread = time.Second
)

// Poll intervals (RFC 5905 §7.3: MINPOLL 64 s, MAXPOLL 36 h; a router
// polls no slower than about 17 min so that a drifting crystal stays
// within milliseconds).
const (
	minPoll = 64 * time.Second
	maxPoll = 1024 * time.Second
	// Until the first sync, retries start fast (the clock may be years
	// off at boot) and back off to minPoll.
	firstRetry = 2 * time.Second
	// rateKissBackoff is the least interval after a RATE kiss (RFC 5905
	// §7.4: the client must reduce its polling rate).
	rateKissBackoff = maxPoll
)

// Action is what one poll round does to the clock.
type Action string

const (
	ActionStep   Action = "step"
	ActionSlew   Action = "slew"
	ActionIgnore Action = "ignore"
)

// sample is one validated server response.
type sample struct {
	server   netip.Addr
	name     string // the name it was resolved from, if any
	resp     *ntp.Response
	distance time.Duration // root distance: RTT/2 + root delay/2 + root dispersion
}

// Sample rejection reasons, the keys of Stats.Rejected.
const (
	RejectKissOfDeath = "kiss-of-death"
	RejectUnsynced    = "unsynchronized" // leap 3 or stratum 16 (RFC 5905 §7.3)
	RejectStale       = "stale"          // reference time older than MAXPOLL
	RejectDispersion  = "dispersion"     // root distance over MAXDISP (16 s)
	RejectOther       = "invalid"
	RejectFalseticker = "falseticker"
)

// rejectReason maps the library's validation error to a Stats label.
func rejectReason(err error) string {
	switch {
	case errors.Is(err, ntp.ErrKissOfDeath):
		return RejectKissOfDeath
	case errors.Is(err, ntp.ErrInvalidStratum), errors.Is(err, ntp.ErrInvalidLeapSecond),
		errors.Is(err, ntp.ErrServerNotSynchronized):
		return RejectUnsynced
	case errors.Is(err, ntp.ErrServerClockFreshness):
		return RejectStale
	case errors.Is(err, ntp.ErrInvalidDispersion):
		return RejectDispersion
	}
	return RejectOther
}

func distanceOf(r *ntp.Response) time.Duration {
	return r.RTT/2 + r.RootDelay/2 + r.RootDispersion
}

// selectSample picks the sample to discipline the clock with: falsetickers
// (far from the median of three or more) are dropped, then the lowest root
// distance wins (RFC 5905 §11.2.3 ranks survivors by it); ties keep the
// plan's order of preference. It returns the index of the winner in
// samples, or -1, and the falsetickers.
func selectSample(samples []sample) (best int, falsetickers []int) {
	if len(samples) == 0 {
		return -1, nil
	}
	ok := make([]bool, len(samples))
	for i := range ok {
		ok[i] = true
	}
	if len(samples) >= 3 {
		offs := make([]time.Duration, len(samples))
		for i, s := range samples {
			offs[i] = s.resp.ClockOffset
		}
		slices.Sort(offs)
		median := offs[len(offs)/2]
		for i, s := range samples {
			if (s.resp.ClockOffset - median).Abs() > falsetickerSpread {
				ok[i] = false
				falsetickers = append(falsetickers, i)
			}
		}
	}
	best = -1
	for i, s := range samples {
		if ok[i] && (best < 0 || s.distance < samples[best].distance) {
			best = i
		}
	}
	return best, falsetickers
}

// decide is the clock discipline for one accepted offset (what to add to
// the clock): step at the first sync of this run, so that a board that
// booted at its image's build time is right at once; afterwards slew, and
// step only what a slew would take too long for (chrony's makestep).
func decide(offset time.Duration, firstSync bool) Action {
	switch {
	case offset.Abs() < noiseFloor:
		return ActionIgnore
	case firstSync || offset.Abs() > stepThreshold:
		return ActionStep
	}
	return ActionSlew
}

// nextPoll is the interval to the next round after one that ended with
// action (ok false: no usable sample). Unsynced, retries start at
// firstRetry and double to minPoll; synced, a quiet clock doubles the
// interval up to maxPoll and a step starts over at minPoll (RFC 5905 §13
// adapts the poll interval to the clock's stability the same way).
func nextPoll(prev time.Duration, synced, ok bool, action Action) time.Duration {
	switch {
	case !synced:
		if prev <= 0 {
			return firstRetry
		}
		return min(2*prev, minPoll)
	case !ok:
		// No server answered usefully: back off like after a quiet round
		// (a synced clock holds for hours without updates), so that a dead
		// or overloaded server is not hammered.
		return min(max(2*prev, minPoll), maxPoll)
	case action == ActionStep:
		return minPoll
	}
	return min(max(2*prev, minPoll), maxPoll)
}
