package ra

import (
	"net/netip"
	"testing"
	"time"
)

// Random draws at the two ends of their range, so that the bounds the RFC
// sets are what the tests see.
func lowest(int64) int64    { return 0 }
func highest(n int64) int64 { return n - 1 }

var t0 = time.Unix(1_700_000_000, 0)

func TestUnsolicitedTiming(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     time.Duration
		rnd     func(int64) int64
		sends   int           // multicast RAs sent before the one checked
		wantGap time.Duration // from the last RA to the next
	}{
		{"RFC 4861 6.2.4: initial RAs are at most MAX_INITIAL_RTR_ADVERT_INTERVAL apart", 600 * time.Second, highest, 1, 16 * time.Second},
		{"RFC 4861 6.2.4: the third initial RA follows fast too", 600 * time.Second, highest, 2, 16 * time.Second},
		{"RFC 4861 6.2.4: after MAX_INITIAL_RTR_ADVERTISEMENTS the interval is up to MaxRtrAdvInterval", 600 * time.Second, highest, 3, 600 * time.Second},
		{"RFC 4861 6.2.1: the interval is at least MinRtrAdvInterval = 0.33 x Max", 600 * time.Second, lowest, 3, 198 * time.Second},
		{"RFC 4861 6.2.1: MinRtrAdvInterval is Max below 9 s", 5 * time.Second, lowest, 3, 5 * time.Second},
		{"RFC 4861 6.2.4: a short MaxRtrAdvInterval is kept during the initial RAs", 10 * time.Second, highest, 1, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScheduler(tc.max, tc.rnd)
			s.changed(t0, tc.max)
			now := t0
			for i := 0; i < tc.sends; i++ {
				mc, _, _ := s.due(now)
				if !mc {
					t.Fatalf("RA %d not due at %v", i+1, now.Sub(t0))
				}
				s.sentMulticast(now)
				if i < tc.sends-1 {
					now = s.wake()
				}
			}
			if got := s.wake().Sub(now); got != tc.wantGap {
				t.Errorf("next RA after %v, want %v", got, tc.wantGap)
			}
		})
	}
}

func TestSolicitedTiming(t *testing.T) {
	host := netip.MustParseAddr("fe80::1234")
	unspec := netip.IPv6Unspecified()
	for _, tc := range []struct {
		name    string
		lastRA  time.Duration // the last multicast RA went out this long before t0 (0: none yet)
		lastUni time.Duration // the last unicast answer to from went out this long before t0 (0: none)
		next    time.Duration // an RA is already scheduled this long after t0 (0: none)
		from    netip.Addr    // the RS's source at t0; invalid: no RS, the plan changes at t0
		want    time.Duration // wake time after t0 (0: nothing scheduled)
		uni     bool          // the answer is unicast
	}{
		{name: "RFC 4861 6.2.6: RS from :: is answered by multicast within MAX_RA_DELAY_TIME",
			lastRA: time.Minute, from: unspec, want: 500 * time.Millisecond},
		{name: "RFC 4861 6.2.6: multicast answers are MIN_DELAY_BETWEEN_RAS after the last multicast RA",
			lastRA: time.Second, from: unspec, want: 2*time.Second + 500*time.Millisecond},
		{name: "RFC 4861 6.2.6: an RS from a host with an address may be answered by unicast",
			lastRA: time.Second, from: host, want: 500 * time.Millisecond, uni: true},
		{name: "RFC 4861 6.2.6: unicast answers to one host are rate limited like multicast ones",
			lastRA: time.Minute, lastUni: time.Second, from: host, want: 2 * time.Second, uni: true},
		{name: "RFC 4861 6.2.6: an RA scheduled sooner than the answer is not postponed",
			lastRA: time.Minute, next: 100 * time.Millisecond, from: unspec, want: 100 * time.Millisecond},
		{name: "RFC 4861 6.2.2: nothing is answered before there is something to advertise",
			from: host},
		{name: "RFC 4861 6.2.4: a changed plan is advertised at once, but MIN_DELAY_BETWEEN_RAS after the last",
			lastRA: time.Second, want: 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScheduler(600*time.Second, highest)
			if tc.lastRA > 0 {
				s.sentMulticast(t0.Add(-tc.lastRA))
			}
			if tc.lastUni > 0 {
				s.sentUnicast(t0.Add(-tc.lastUni), tc.from)
			}
			if tc.next > 0 {
				s.next = t0.Add(tc.next)
			}
			uni := false
			if tc.from.IsValid() {
				uni = s.solicited(t0, tc.from)
			} else {
				s.changed(t0, 600*time.Second)
			}
			if uni != tc.uni {
				t.Errorf("unicast = %v, want %v", uni, tc.uni)
			}
			wake := s.wake()
			if tc.want == 0 {
				if !wake.IsZero() {
					t.Errorf("wake at %v, want nothing scheduled", wake.Sub(t0))
				}
				return
			}
			if got := wake.Sub(t0); got != tc.want {
				t.Errorf("wake after %v, want %v", got, tc.want)
			}
		})
	}
}

// A flood of RS from made-up link-local sources must not grow the
// scheduler's state without bound; the excess is answered by multicast.
func TestSolicitationFloodIsBounded(t *testing.T) {
	s := newScheduler(600*time.Second, lowest)
	s.sentMulticast(t0.Add(-time.Minute))
	unicast := 0
	for i := 0; i < 10_000; i++ {
		b := netip.MustParseAddr("fe80::").As16()
		b[14], b[15] = byte(i>>8), byte(i)
		if s.solicited(t0, netip.AddrFrom16(b)) {
			unicast++
		}
	}
	if unicast != maxPendingUnicast || len(s.unicastDue) != maxPendingUnicast {
		t.Errorf("unicast answers = %d (pending %d), want %d", unicast, len(s.unicastDue), maxPendingUnicast)
	}
	if mc, _, _ := s.due(t0); !mc {
		t.Error("the excess solicitations got no multicast answer")
	}
}
