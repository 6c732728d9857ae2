package timesync

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/beevik/ntp"
)

// fakeClock is a wall clock that tests move by hand; Step and Slew are
// recorded and applied at once.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	steps  []time.Duration
	slews  []time.Duration
	failOn error
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Step(d time.Duration) error { return c.apply(d, &c.steps) }
func (c *fakeClock) Slew(d time.Duration) error { return c.apply(d, &c.slews) }

// apply moves the clock by d at once and records d in log, unless the
// clock is set to fail.
func (c *fakeClock) apply(d time.Duration, log *[]time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failOn != nil {
		return c.failOn
	}
	c.t = c.t.Add(d)
	*log = append(*log, d)
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// realTime is "now" in the tests' world: the time the servers tell.
var realTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// buildTime is where a Pi's clock starts: its image's build time.
var buildTime = time.Date(2025, 11, 2, 8, 0, 0, 0, time.UTC)

// response is a valid NTPv4 answer from a stratum 2 server whose clock is
// offset ahead of the client's.
func response(offset time.Duration, mods ...func(*ntp.Response)) *ntp.Response {
	r := &ntp.Response{
		ClockOffset: offset, RTT: 10 * time.Millisecond, Version: 4, Stratum: 2,
		Time: realTime, ReferenceTime: realTime.Add(-time.Minute),
		RootDelay: 20 * time.Millisecond, RootDispersion: 5 * time.Millisecond,
		Precision: time.Microsecond,
	}
	for _, m := range mods {
		m(r)
	}
	return r
}

// servers plays the upstream NTP servers: each address answers with its
// response or error; unknown addresses time out.
type servers struct {
	mu    sync.Mutex
	resp  map[netip.Addr]*ntp.Response
	err   map[netip.Addr]error
	asked []netip.Addr
}

func (sv *servers) query(_ context.Context, a netip.Addr) (*ntp.Response, error) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.asked = append(sv.asked, a)
	if r := sv.resp[a]; r != nil {
		c := *r
		return &c, nil
	}
	if err := sv.err[a]; err != nil {
		return nil, err
	}
	return nil, errors.New("i/o timeout")
}

func (sv *servers) set(a netip.Addr, r *ntp.Response) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.resp[a] = r
}

func (sv *servers) takeAsked() []netip.Addr {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	a := sv.asked
	sv.asked = nil
	return a
}

func newTestService(t testing.TB, clock *fakeClock, dir string) (*Service, *servers) {
	t.Helper()
	sv := &servers{resp: map[netip.Addr]*ntp.Response{}, err: map[netip.Addr]error{}}
	s, err := New(Config{
		StateDir: dir, Clock: clock, query: sv.query,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, sv
}

var (
	ntp1 = netip.MustParseAddr("2001:db8:0:1::1")
	ntp2 = netip.MustParseAddr("192.0.2.1")
	ntp3 = netip.MustParseAddr("2001:db8:ffff::123")
	ntp4 = netip.MustParseAddr("2001:db8:ffff::124")
	ntp5 = netip.MustParseAddr("2001:db8:ffff::125")
)

var errPermission = errors.New("operation not permitted")
