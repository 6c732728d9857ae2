package dhcp6pd

import "time"

// The machine's deadlines are times from time.Now, which carry a monotonic
// reading: a step of the wall clock (NTP setting the clock of a board
// without a real-time clock) does not move them. Only a lease read from
// disk at a restart has wall-clock deadlines, and this file is about those.

// start begins operation with the persisted lease, if any. RFC 8415
// §18.2.12: a client that restarts with delegated prefixes still valid
// sends Rebind rather than starting over, so a restart keeps the prefix.
//
// The stored deadlines are wall-clock times, and "still valid" is only as
// good as the clock. A board without a real-time clock starts behind the
// real time (at the time it last saved, or its build time), so a lease
// that ended while it was off looks valid, and the ISP may have given the
// prefix to someone else. Until the clock is trusted, the stored lease is
// therefore not reported: Rebind (RFC 8415 §18.2.5; Confirm, §18.2.3, is
// for addresses only, not for delegated prefixes) must bring the server's
// Reply first. A lease the clock already calls expired is expired: the
// clock is behind, never ahead, of when it was saved.
func (m *machine) start(prev *Lease, now time.Time) {
	if prev != nil {
		m.hint = prev.Prefix
		if now.Before(prev.ValidUntil) {
			l := anchored(*prev, now)
			m.lease = &l
			if m.clockTrusted == nil || m.clockTrusted() {
				m.onLease(l)
			} else {
				saved := *prev
				m.saved = &saved
				m.log.Info("dhcp6pd: clock not synchronised, confirming the stored prefix with Rebind before using it", "prefix", l.Prefix)
			}
			m.beginRebind(now)
			return
		}
	}
	m.beginSolicit(now, true)
}

// anchored moves a stored lease's wall-clock deadlines onto now's
// monotonic reading, so that they keep their distance from now whatever
// the wall clock does later (Go compares two times by their monotonic
// readings when both have one).
func anchored(l Lease, now time.Time) Lease {
	move := func(t *time.Time) {
		if !t.IsZero() && !t.Equal(farFuture) {
			*t = now.Add(t.Round(0).Sub(now.Round(0)))
		}
	}
	move(&l.PreferredUntil)
	move(&l.ValidUntil)
	move(&l.T1)
	move(&l.T2)
	move(&l.Acquired)
	return l
}

// unconfirmed reports whether the current lease is a stored one that
// waits for a Reply or a trusted clock, and was not reported.
func (m *machine) unconfirmed() bool { return m.saved != nil }

// clockSynced judges the stored lease again once the clock is trusted:
// expired by it, the lease is dropped quietly (it was never reported) and
// the client solicits, hinting the prefix; still valid, it is reported,
// while the Rebind goes on.
func (m *machine) clockSynced(now time.Time) {
	if m.saved == nil {
		return
	}
	saved := *m.saved
	if !now.Before(saved.ValidUntil) {
		m.log.Warn("dhcp6pd: the stored prefix expired while the gizmo was off", "prefix", saved.Prefix, "valid_until", saved.ValidUntil)
		m.lose(now)
		m.beginSolicit(now, false)
		return
	}
	m.saved = nil
	l := anchored(saved, now)
	m.lease = &l
	m.log.Info("dhcp6pd: clock synchronised, the stored prefix is still valid", "prefix", l.Prefix)
	m.onLease(l)
}
