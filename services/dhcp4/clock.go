package dhcp4

import "time"

// What the server does when its wall clock steps.
//
// A lease is a duration, not a date: RFC 2131 §3.3 has clients count it on
// their own clocks from the moment they asked, because client and server
// clocks are not synchronised. The server keeps each lease as an absolute
// expiry (it is stored and compared across restarts), computed from its
// wall clock. On a board without a real-time clock that wall clock starts
// wrong and is stepped by NTP (services/timesync) minutes after the server
// has granted its first leases; a step of years forward would otherwise
// end every such lease at once, while the clients hold them for up to the
// lease time still, and their addresses would be free to give to others.
//
// So the server watches its wall clock against the monotonic clock, which
// steps never move, and moves every expiry it set in this run by the size
// of a step: each lease keeps the time it has left, as its client counts
// it. The moved expiries are written to the lease file like any change.
//
// Leases read from disk at start are the exception: they were computed
// with an earlier run's clock, which the saved time and NTP had set right,
// so they are already in real time, and a step that merely corrects this
// run's clock must not move them. While this run's clock is still behind,
// they look longer than they are: their addresses are held too long rather
// than given to a second host, the safe side. Once such a lease is renewed
// or released, it is this run's and follows the clock.

// stepTolerance: differences below it between the wall and the monotonic
// clock are not steps (the kernel slews both clocks alike).
const stepTolerance = time.Second

// wallOffset returns how far the wall clock has moved from the monotonic
// clock since ref (a time.Now, carrying both readings).
func wallOffset(ref time.Time) func() time.Duration {
	return func() time.Duration {
		now := time.Now()
		return now.Round(0).Sub(ref.Round(0)) - now.Sub(ref)
	}
}

// followClock moves this run's expiries by a step of the wall clock since
// the last call. The caller holds e.mu.
func (e *engine) followClock() {
	if e.offset == nil {
		return
	}
	o := e.offset()
	step := o - e.lastOffset
	if step.Abs() < stepTolerance {
		return
	}
	e.lastOffset = o
	n := e.t.rebase(step)
	e.c.clockSteps.Add(1)
	e.log.Info("dhcp4: the clock stepped, leases keep their remaining time", "step", step, "moved", n)
}

// rebase adds step to every expiry and hold set in this run and returns how
// many leases moved.
func (t *table) rebase(step time.Duration) int {
	n := 0
	for _, b := range t.byMAC {
		if !b.Expires.IsZero() && !b.restored {
			b.Expires = b.Expires.Add(step).UTC().Round(0)
			t.touch(b)
			n++
		}
		if !b.OfferedUntil.IsZero() {
			b.OfferedUntil = b.OfferedUntil.Add(step)
		}
	}
	for ip, until := range t.declined {
		t.declined[ip] = until.Add(step)
	}
	return n
}
