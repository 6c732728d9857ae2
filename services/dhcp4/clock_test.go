package dhcp4

import (
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// fakeOffset plays the wall clock's distance from the monotonic clock.
type fakeOffset struct{ d time.Duration }

func (f *fakeOffset) get() time.Duration { return f.d }

// The board booted at its build time and granted a lease; then NTP steps
// the clock a year forward. RFC 2131 §3.3: the client counts its hour from
// the ACK on its own clock, so the server's lease must still have its
// remaining time, not have ended a year ago.
func TestClockStepForwardKeepsLeases(t *testing.T) {
	off := &fakeOffset{}
	e := newTestEngine(t, labPlan())
	e.offset = off.get
	boot := t0.AddDate(-1, 0, 0)
	ip := lease(t, e, macA, boot)
	e.takeBatch()

	step := t0.Sub(boot)
	off.d = step
	later := boot.Add(10 * time.Minute).Add(step)
	ls := e.leases(later)
	if len(ls) != 1 || ls[0].IP != ip {
		t.Fatalf("leases after the step %+v, want %s kept", ls, ip)
	}
	if want := boot.Add(time.Hour).Add(step); !ls[0].Expires.Equal(want) {
		t.Errorf("expires %v, want %v (50 minutes left, as before the step)", ls[0].Expires, want)
	}
	if st := e.stats(later); st.ClockSteps != 1 || st.Leases != 1 {
		t.Errorf("clock steps %d, leases %d", st.ClockSteps, st.Leases)
	}
	// The moved expiry is written to the lease file.
	changes, _ := e.takeBatch()
	if len(changes) != 1 || !changes[0].Expires.Equal(boot.Add(time.Hour).Add(step)) {
		t.Errorf("journal changes %+v, want the moved expiry", changes)
	}
	// Another client cannot take the address.
	if off := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macB, withRequested(ip.String())), later); yiaddr(off) == ip {
		t.Errorf("offered %s, held by %s, to %s after the step", ip, macA, macB)
	}
	// No further step, no further move.
	e.leases(later)
	if st := e.stats(later); st.ClockSteps != 1 {
		t.Errorf("clock steps %d after no change", st.ClockSteps)
	}
}

// A step backward (a clock that was ahead) keeps the remaining time too.
func TestClockStepBackwardKeepsLeases(t *testing.T) {
	off := &fakeOffset{}
	e := newTestEngine(t, labPlan())
	e.offset = off.get
	lease(t, e, macA, t0)
	off.d = -24 * time.Hour
	now := t0.Add(-24 * time.Hour).Add(time.Minute)
	ls := e.leases(now)
	if len(ls) != 1 || !ls[0].Expires.Equal(t0.Add(time.Hour-24*time.Hour)) {
		t.Errorf("leases %+v, want the expiry a day earlier", ls)
	}
}

// Leases read from disk were written under the previous run's clock, which
// was right: a step that corrects this run's clock does not move them.
func TestClockStepLeavesRestoredLeases(t *testing.T) {
	off := &fakeOffset{}
	e := newTestEngine(t, labPlan())
	e.offset = off.get
	stored := t0.Add(30 * time.Minute)
	e.restore([]leaseRecord{
		{MAC: macA, IP: netip.MustParseAddr("203.0.113.140"), Expires: stored},
		{MAC: macB, IP: netip.MustParseAddr("203.0.113.141"), Expires: stored},
	})
	// Booted a day behind; the restored leases look longer than they are.
	boot := t0.Add(-24 * time.Hour)
	// macB renews before the clock is corrected: its lease is this run's.
	ack := handleNow(e, msg(t, dhcpv4.MessageTypeRequest, macB, withCiaddr("203.0.113.141")), boot)
	if typeOf(ack) != dhcpv4.MessageTypeAck {
		t.Fatalf("renewal got %v", typeOf(ack))
	}
	off.d = 24 * time.Hour
	ls := e.leases(t0)
	if len(ls) != 2 {
		t.Fatalf("leases %+v", ls)
	}
	for _, l := range ls {
		switch l.MAC {
		case macA:
			if !l.Expires.Equal(stored) {
				t.Errorf("restored lease moved to %v, want %v", l.Expires, stored)
			}
		case macB:
			if want := boot.Add(time.Hour).Add(24 * time.Hour); !l.Expires.Equal(want) {
				t.Errorf("renewed lease expires %v, want %v", l.Expires, want)
			}
		}
	}
}

// Offer holds and declined addresses are this run's too.
func TestClockStepMovesHolds(t *testing.T) {
	off := &fakeOffset{}
	e := newTestEngine(t, labPlan())
	e.offset = off.get
	o := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA), t0)
	held := yiaddr(o)
	off.d = 365 * 24 * time.Hour
	later := t0.Add(off.d).Add(10 * time.Second)
	// The offer is still held for macA.
	if o := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macB, withRequested(held.String())), later); yiaddr(o) == held {
		t.Errorf("the address offered to %s went to %s after the step", macA, macB)
	}
}

// Without a step, the wall clock and the monotonic clock agree.
func TestWallOffsetWithoutStep(t *testing.T) {
	f := wallOffset(time.Now())
	time.Sleep(10 * time.Millisecond)
	if d := f(); d.Abs() >= stepTolerance {
		t.Errorf("offset %v without a step", d)
	}
}
