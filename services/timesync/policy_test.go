package timesync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/beevik/ntp"
)

func TestDecide(t *testing.T) {
	tests := []struct {
		name   string
		offset time.Duration
		first  bool
		want   Action
	}{
		{"first sync steps a clock years behind", 4 * 365 * 24 * time.Hour, true, ActionStep},
		{"first sync steps even 20 ms, so that the clock is right at once", 20 * time.Millisecond, true, ActionStep},
		{"first sync steps a clock ahead", -3 * time.Hour, true, ActionStep},
		{"after the first sync, 200 ms is slewed", 200 * time.Millisecond, false, ActionSlew},
		{"after the first sync, -499 ms is slewed", -499 * time.Millisecond, false, ActionSlew},
		{"makestep: beyond 0.5 s is stepped even after the first sync", 600 * time.Millisecond, false, ActionStep},
		{"makestep: beyond -0.5 s is stepped too", -2 * time.Second, false, ActionStep},
		{"below the noise floor nothing is done", 300 * time.Microsecond, false, ActionIgnore},
		{"below the noise floor nothing is done at the first sync either", -300 * time.Microsecond, true, ActionIgnore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.offset, tt.first); got != tt.want {
				t.Errorf("decide(%v, first=%v) = %s, want %s", tt.offset, tt.first, got, tt.want)
			}
		})
	}
}

func TestNextPoll(t *testing.T) {
	type round struct {
		synced, ok bool
		action     Action
	}
	tests := []struct {
		name   string
		rounds []round
		want   []time.Duration
	}{
		{"unsynced: retries start at 2 s and back off to MINPOLL",
			[]round{{}, {}, {}, {}, {}, {}, {}, {}},
			[]time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 64 * time.Second, 64 * time.Second, 64 * time.Second}},
		{"RFC 5905 §13: a quiet clock doubles the interval up to the maximum",
			[]round{{true, true, ActionStep}, {true, true, ActionSlew}, {true, true, ActionIgnore}, {true, true, ActionSlew}, {true, true, ActionSlew}, {true, true, ActionSlew}},
			[]time.Duration{minPoll, 128 * time.Second, 256 * time.Second, 512 * time.Second, maxPoll, maxPoll}},
		{"a step starts over at MINPOLL",
			[]round{{true, true, ActionStep}, {true, true, ActionSlew}, {true, true, ActionSlew}, {true, true, ActionStep}},
			[]time.Duration{minPoll, 128 * time.Second, 256 * time.Second, minPoll}},
		{"synced and no answer: back off, up to the maximum",
			[]round{{true, true, ActionStep}, {true, false, ""}, {true, false, ""}, {true, false, ""}, {true, false, ""}, {true, false, ""}},
			[]time.Duration{minPoll, 128 * time.Second, 256 * time.Second, 512 * time.Second, maxPoll, maxPoll}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []time.Duration
			var iv time.Duration
			for _, r := range tt.rounds {
				iv = nextPoll(iv, r.synced, r.ok, r.action)
				got = append(got, iv)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("intervals %v, want %v", got, tt.want)
			}
		})
	}
}

func smp(addr netip.Addr, offset, distance time.Duration) sample {
	return sample{server: addr, resp: response(offset), distance: distance}
}

func TestSelectSample(t *testing.T) {
	tests := []struct {
		name    string
		samples []sample
		best    int
		false_  []int
	}{
		{"no samples", nil, -1, nil},
		{"RFC 5905 §11.2.3: the lowest root distance wins",
			[]sample{smp(ntp1, time.Millisecond, 40*time.Millisecond), smp(ntp2, 2*time.Millisecond, 10*time.Millisecond)}, 1, nil},
		{"equal distance keeps the plan's order",
			[]sample{smp(ntp1, time.Millisecond, 10*time.Millisecond), smp(ntp2, 2*time.Millisecond, 10*time.Millisecond)}, 0, nil},
		{"two servers that disagree cannot outvote each other",
			[]sample{smp(ntp1, time.Hour, 5*time.Millisecond), smp(ntp2, 0, 10*time.Millisecond)}, 0, nil},
		{"RFC 5905 §11.2.1: a majority outvotes a falseticker, however close it is",
			[]sample{smp(ntp1, time.Hour, time.Millisecond), smp(ntp2, 3*time.Millisecond, 20*time.Millisecond), smp(ntp3, 2*time.Millisecond, 30*time.Millisecond)}, 1, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			best, ft := selectSample(tt.samples)
			if best != tt.best || !slices.Equal(ft, tt.false_) {
				t.Errorf("selectSample = %d, falsetickers %v; want %d, %v", best, ft, tt.best, tt.false_)
			}
		})
	}
}

func TestRejectReason(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*ntp.Response)
		want string
	}{
		{"RFC 5905 §7.4: stratum 0 is a kiss-o'-death", func(r *ntp.Response) { r.Stratum, r.KissCode = 0, "RATE" }, RejectKissOfDeath},
		{"RFC 5905 §7.3: stratum 16 is unsynchronized", func(r *ntp.Response) { r.Stratum = 16 }, RejectUnsynced},
		{"RFC 5905 §7.3: leap 3 is unsynchronized", func(r *ntp.Response) { r.Leap = ntp.LeapNotInSync }, RejectUnsynced},
		{"a reference time older than MAXPOLL is stale", func(r *ntp.Response) { r.ReferenceTime = realTime.Add(-48 * time.Hour) }, RejectStale},
		{"RFC 5905 Appendix A.5.1.1: root distance beyond MAXDISP", func(r *ntp.Response) { r.RootDispersion = 20 * time.Second }, RejectDispersion},
	}
	if err := response(0).Validate(); err != nil {
		t.Fatalf("the test's valid response does not validate: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := response(0, tt.mod).Validate()
			if err == nil {
				t.Fatal("validated")
			}
			if got := rejectReason(err); got != tt.want {
				t.Errorf("reason %s (%v), want %s", got, err, tt.want)
			}
		})
	}
}

// The clock starts at the build time; the first valid sample steps it to
// the real time, later ones slew it or, beyond 0.5 s, step it again.
func TestRoundsDisciplineTheClock(t *testing.T) {
	clock := &fakeClock{t: buildTime}
	s, sv := newTestService(t, clock, "")
	s.Update(Plan{Servers: []netip.Addr{ntp1}})
	ctx := context.Background()

	behind := realTime.Sub(buildTime)
	sv.set(ntp1, response(behind))
	res := s.round(ctx, s.currentPlan())
	if !res.ok || res.action != ActionStep || !clock.Now().Equal(realTime) {
		t.Fatalf("first round %+v, clock %v; want a step to %v", res, clock.Now(), realTime)
	}
	if ok, src, last := s.Synced(); !ok || src != ntp1.String() || !last.Equal(realTime) {
		t.Errorf("Synced() = %v %q %v", ok, src, last)
	}
	st := s.Stats()
	if st.Stratum != 3 || st.Steps != 1 || st.Offset != behind {
		t.Errorf("stats after first sync %+v", st)
	}

	for _, c := range []struct {
		offset time.Duration
		want   Action
	}{{120 * time.Millisecond, ActionSlew}, {-800 * time.Millisecond, ActionStep}, {200 * time.Microsecond, ActionIgnore}} {
		sv.set(ntp1, response(c.offset))
		before := clock.Now()
		res := s.round(ctx, s.currentPlan())
		if res.action != c.want {
			t.Errorf("offset %v: %s, want %s", c.offset, res.action, c.want)
		}
		moved := clock.Now().Sub(before)
		if c.want == ActionIgnore && moved != 0 || c.want != ActionIgnore && moved != c.offset {
			t.Errorf("offset %v: clock moved %v", c.offset, moved)
		}
	}
	st = s.Stats()
	if st.Steps != 2 || st.Slews != 1 || st.Ignored != 1 {
		t.Errorf("steps %d slews %d ignored %d, want 2 1 1", st.Steps, st.Slews, st.Ignored)
	}
}

// Unusable answers never touch the clock, and are counted by reason.
func TestInvalidResponsesLeaveTheClock(t *testing.T) {
	clock := &fakeClock{t: buildTime}
	s, sv := newTestService(t, clock, "")
	s.Update(Plan{Servers: []netip.Addr{ntp1, ntp2, ntp3}})
	sv.set(ntp1, response(time.Hour, func(r *ntp.Response) { r.Leap = ntp.LeapNotInSync }))
	sv.set(ntp2, response(time.Hour, func(r *ntp.Response) { r.Stratum = 16 }))
	sv.set(ntp3, response(time.Hour, func(r *ntp.Response) { r.Stratum, r.KissCode = 0, "DENY" }))
	res := s.round(context.Background(), s.currentPlan())
	if res.ok || len(clock.steps)+len(clock.slews) != 0 {
		t.Fatalf("round %+v changed the clock: steps %v slews %v", res, clock.steps, clock.slews)
	}
	if ok, _, _ := s.Synced(); ok {
		t.Error("synced without a valid sample")
	}
	st := s.Stats()
	if st.Rejected[RejectUnsynced] != 2 || st.Rejected[RejectKissOfDeath] != 1 || st.Stratum != 16 {
		t.Errorf("rejected %v, stratum %d", st.Rejected, st.Stratum)
	}
	// RFC 5905 §7.4: DENY means never again (until the plan changes).
	sv.takeAsked()
	s.round(context.Background(), s.currentPlan())
	if got := sv.takeAsked(); slices.Contains(got, ntp3) || len(got) != 2 {
		t.Errorf("asked %v after a DENY from %v", got, ntp3)
	}
}

func TestRateKissBacksOff(t *testing.T) {
	clock := &fakeClock{t: buildTime}
	s, sv := newTestService(t, clock, "")
	p := Plan{Servers: []netip.Addr{ntp1}}
	sv.set(ntp1, response(time.Hour, func(r *ntp.Response) { r.Stratum, r.KissCode = 0, "RATE" }))
	if res := s.round(context.Background(), p); !res.rateKiss {
		t.Errorf("round %+v, want the RATE kiss noticed", res)
	}
}

// Candidate servers: the plan's addresses in order, then names, unusable
// and duplicate addresses and the gizmo's own dropped, at most maxQueries,
// the rest counted.
func TestCandidates(t *testing.T) {
	clock := &fakeClock{t: realTime}
	s, _ := newTestService(t, clock, "")
	own := netip.MustParseAddr("fd00:1::1")
	p := Plan{Servers: []netip.Addr{
		ntp1, netip.MustParseAddr("::"), netip.MustParseAddr("ff02::101"), ntp1, own,
		netip.MustParseAddr("::ffff:192.0.2.1"), netip.MustParseAddr("::1"), ntp3, ntp4, ntp5,
	}, Serve: []netip.Addr{own}}
	var got []netip.Addr
	for _, c := range s.candidates(context.Background(), p) {
		got = append(got, c.addr)
	}
	if want := []netip.Addr{ntp1, ntp2, ntp3, ntp4}; !slices.Equal(got, want) {
		t.Errorf("candidates %v, want %v", got, want)
	}
	if st := s.Stats(); st.Skipped != 1 {
		t.Errorf("skipped %d, want 1", st.Skipped)
	}
}

// With several servers, the round asks them all and takes the closest.
func TestRoundPicksTheClosestServer(t *testing.T) {
	clock := &fakeClock{t: realTime}
	s, sv := newTestService(t, clock, "")
	p := Plan{Servers: []netip.Addr{ntp1, ntp2, ntp3}}
	sv.set(ntp1, response(40*time.Millisecond, func(r *ntp.Response) { r.RootDispersion = 200 * time.Millisecond }))
	sv.set(ntp2, response(30*time.Millisecond))
	// ntp3 does not answer.
	s.round(context.Background(), p)
	if st := s.Stats(); st.Source != ntp2.String() || st.QueryErrors != 1 || st.Queries != 3 {
		t.Errorf("source %s, %d queries, %d errors; want %s, 3, 1", st.Source, st.Queries, st.QueryErrors, ntp2)
	}
	if len(clock.steps) != 1 || clock.steps[0] != 30*time.Millisecond {
		t.Errorf("steps %v, want ntp2's offset", clock.steps)
	}
}

// A clock that cannot be set is an error that is counted; the service does
// not claim to be synchronised.
func TestClockErrorIsCounted(t *testing.T) {
	clock := &fakeClock{t: buildTime, failOn: errPermission}
	s, sv := newTestService(t, clock, "")
	sv.set(ntp1, response(time.Hour))
	if res := s.round(context.Background(), Plan{Servers: []netip.Addr{ntp1}}); res.ok {
		t.Error("round ok with a clock that refuses to be set")
	}
	if ok, _, _ := s.Synced(); ok || s.Stats().ClockErrors != 1 {
		t.Errorf("synced %v, clock errors %d", ok, s.Stats().ClockErrors)
	}
}

// A name that does not resolve (yet) is a failed round, retried soon, not
// a plan without servers.
func TestUnresolvedNameIsAFailedRound(t *testing.T) {
	clock := &fakeClock{t: buildTime}
	s, _ := newTestService(t, clock, "")
	s.cfg.Resolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS server yet")
	}}
	res := s.round(context.Background(), Plan{Names: []string{DefaultPool}})
	if res.err != nil || res.ok {
		t.Errorf("round %+v, want a plain failure", res)
	}
	if st := s.Stats(); st.ResolveErrors != 1 {
		t.Errorf("resolve errors %d, want 1", st.ResolveErrors)
	}
	// A long list of names that do not resolve costs at most maxQueries
	// lookups a round; the rest are counted.
	names := make([]string, 100)
	for i := range names {
		names[i] = fmt.Sprintf("ntp%d.example", i)
	}
	s.round(context.Background(), Plan{Names: names})
	if st := s.Stats(); st.ResolveErrors != 1+maxQueries || st.Skipped != uint64(len(names)-maxQueries) {
		t.Errorf("resolve errors %d, skipped %d; want %d and %d", st.ResolveErrors, st.Skipped, 1+maxQueries, len(names)-maxQueries)
	}
	if res := s.round(context.Background(), Plan{}); !errors.Is(res.err, errNoServers) {
		t.Errorf("empty plan: %+v, want errNoServers", res)
	}
}
