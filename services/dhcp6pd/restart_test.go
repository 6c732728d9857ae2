package dhcp6pd

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

var storedPrefix = netip.MustParsePrefix("2001:db8:1000:100::/56")

// stored is a lease saved before a restart that the clock at now calls
// valid for two more hours.
func stored(now time.Time) *Lease {
	return &Lease{
		Prefix: storedPrefix, PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(2 * time.Hour),
		T1: now.Add(-time.Minute), T2: now.Add(time.Minute), ServerID: testServerID.ToBytes(),
		Acquired: now.Add(-3 * time.Hour),
	}
}

func untrusted(h *harness) *bool {
	trusted := false
	h.m.clockTrusted = func() bool { return trusted }
	return &trusted
}

// RFC 8415 18.2.5: with a clock that cannot judge the stored deadlines, the
// stored prefix is confirmed by Rebind before the LAN is offered it.
func TestRestartWithUntrustedClockRebindsFirst(t *testing.T) {
	h := newHarness(t)
	untrusted(h)
	h.m.start(stored(h.now), h.now)
	if len(h.leases) != 0 {
		t.Fatalf("reported %v before the server confirmed it", h.leases)
	}
	reb := h.last(dhcpv6.MessageTypeRebind)
	wantAsks(t, reb, storedPrefix.String())
	h.answer(reb, dhcpv6.MessageTypeReply, iapdOpt(time.Hour, 2*time.Hour, prefixOpt(storedPrefix.String(), 3*time.Hour, 4*time.Hour)))
	if len(h.leases) != 1 || h.leases[0].Prefix != storedPrefix || !h.leases[0].ValidUntil.Equal(h.now.Add(4*time.Hour)) {
		t.Errorf("leases %+v, want the prefix with the Reply's lifetimes", h.leases)
	}
	if h.m.unconfirmed() || h.m.phase != phaseBound {
		t.Errorf("phase %v unconfirmed %v after the Reply", h.m.phase, h.m.unconfirmed())
	}
}

// The ISP gave the prefix to someone else while the gizmo was off: the
// Reply to Rebind withdraws it and delegates another. The old prefix was
// never offered, so it is not reported lost either.
func TestUntrustedStoredPrefixReassigned(t *testing.T) {
	h := newHarness(t)
	untrusted(h)
	h.m.start(stored(h.now), h.now)
	h.answer(h.last(dhcpv6.MessageTypeRebind), dhcpv6.MessageTypeReply, iapdOpt(time.Hour, 2*time.Hour,
		prefixOpt(storedPrefix.String(), 0, 0), prefixOpt("2001:db8:2000:200::/56", 3*time.Hour, 4*time.Hour)))
	if len(h.leases) != 1 || h.leases[0].Prefix != netip.MustParsePrefix("2001:db8:2000:200::/56") {
		t.Errorf("leases %v, want only the new prefix", h.leases)
	}
	if len(h.lost) != 0 {
		t.Errorf("lost %v: a prefix never offered is not phased out", h.lost)
	}
	if s := h.m.stats.Snapshot(); s.UnconfirmedDropped != 1 || s.Lost != 0 {
		t.Errorf("unconfirmed dropped %d, lost %d", s.UnconfirmedDropped, s.Lost)
	}
}

func TestUntrustedStoredPrefixWithdrawn(t *testing.T) {
	h := newHarness(t)
	untrusted(h)
	h.m.start(stored(h.now), h.now)
	h.answer(h.last(dhcpv6.MessageTypeRebind), dhcpv6.MessageTypeReply, iapdOpt(time.Hour, 2*time.Hour, prefixOpt(storedPrefix.String(), 0, 0)))
	if len(h.leases) != 0 || len(h.lost) != 0 || h.m.phase != phaseSolicit {
		t.Errorf("leases %v lost %v phase %v; want nothing reported and a Solicit", h.leases, h.lost, h.m.phase)
	}
	h.wantAsked(dhcpv6.MessageTypeSolicit, storedPrefix.String())
}

// No Reply, then the clock synchronises: the real time shows the stored
// lease ended while the gizmo was off. It is dropped without ever being
// offered, and the client solicits.
func TestClockSyncShowsStoredLeaseExpired(t *testing.T) {
	h := newHarness(t)
	trusted := untrusted(h)
	h.m.start(stored(h.now), h.now)
	h.advance() // a Rebind retransmission, unanswered
	// NTP steps the clock three days forward.
	h.now = h.now.Add(72 * time.Hour)
	*trusted = true
	h.m.clockSynced(h.now)
	if len(h.leases) != 0 || len(h.lost) != 0 {
		t.Errorf("leases %v lost %v; want nothing reported", h.leases, h.lost)
	}
	if h.m.lease != nil || h.m.phase != phaseSolicit || h.m.unconfirmed() {
		t.Errorf("lease %v phase %v; want none and soliciting", h.m.lease, h.m.phase)
	}
	if h.stored == nil || h.stored.Prefix != storedPrefix || h.stored.ValidUntil.After(h.now) {
		t.Errorf("stored %+v, want the prefix kept as an ended hint", h.stored)
	}
}

// No Reply yet, and the synchronised clock agrees the stored lease is
// valid: it is offered, with deadlines from the stored ones, and the Rebind
// goes on.
func TestClockSyncConfirmsStoredLease(t *testing.T) {
	h := newHarness(t)
	trusted := untrusted(h)
	prev := stored(h.now)
	h.m.start(prev, h.now)
	h.now = h.now.Add(10 * time.Minute)
	*trusted = true
	h.m.clockSynced(h.now)
	if len(h.leases) != 1 || h.leases[0].Prefix != storedPrefix || !h.leases[0].ValidUntil.Equal(prev.ValidUntil) {
		t.Fatalf("leases %+v, want the stored lease", h.leases)
	}
	if h.m.phase != phaseRebind {
		t.Errorf("phase %v, want still rebinding", h.m.phase)
	}
	// Expiry is now an ordinary loss.
	for h.m.lease != nil {
		h.advance()
	}
	if len(h.lost) != 1 {
		t.Errorf("lost %v at the end of the valid lifetime", h.lost)
	}
}

// No Reply and no trusted clock until the lease would end even by the slow
// clock: dropped without being reported.
func TestUntrustedStoredLeaseRunsOut(t *testing.T) {
	h := newHarness(t)
	untrusted(h)
	h.m.start(stored(h.now), h.now)
	for h.m.phase == phaseRebind {
		h.advance()
	}
	if len(h.leases) != 0 || len(h.lost) != 0 || h.m.phase != phaseSolicit {
		t.Errorf("leases %v lost %v phase %v", h.leases, h.lost, h.m.phase)
	}
}

// A trusted clock (or none asked) keeps RFC 8415 18.2.12's behaviour: the
// stored lease is used at once while Rebind confirms it.
func TestRestartWithTrustedClockReportsAtOnce(t *testing.T) {
	h := newHarness(t)
	h.m.clockTrusted = func() bool { return true }
	h.m.start(stored(h.now), h.now)
	if len(h.leases) != 1 || h.m.unconfirmed() {
		t.Errorf("leases %v, want the stored one reported", h.leases)
	}
	h.last(dhcpv6.MessageTypeRebind)
}

// Stored deadlines are moved onto the monotonic clock: a later step of the
// wall clock does not move them.
func TestStoredDeadlinesAreMonotonic(t *testing.T) {
	h := newHarness(t)
	now := time.Now()
	prev := stored(now.Round(0))
	prev.PreferredUntil = farFuture
	h.m.start(prev, now)
	l := h.m.lease
	for name, d := range map[string]time.Time{"valid": l.ValidUntil, "T1": l.T1, "T2": l.T2} {
		if !strings.Contains(d.String(), "m=") {
			t.Errorf("%s %v has no monotonic reading", name, d)
		}
	}
	if !l.ValidUntil.Equal(prev.ValidUntil) || !l.PreferredUntil.Equal(farFuture) {
		t.Errorf("anchored valid %v preferred %v, want %v and never", l.ValidUntil, l.PreferredUntil, prev.ValidUntil)
	}
	// The machine's own deadlines come from now and keep its reading.
	if w := h.m.wake(); !strings.Contains(w.String(), "m=") {
		t.Errorf("next wake-up %v has no monotonic reading", w)
	}
}
