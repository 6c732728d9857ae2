package dns64

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// reuseportGroup binds n UDP sockets to one loopback address and port with
// SO_REUSEPORT, in order: socket i is index i of the group.
func reuseportGroup(t *testing.T, network, ip string, n int) []*net.UDPConn {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		return errors.Join(err, serr)
	}}
	addr := net.JoinHostPort(ip, "0")
	var conns []*net.UDPConn
	for range n {
		pc, err := lc.ListenPacket(context.Background(), network, addr)
		if err != nil {
			t.Skipf("cannot listen on %s: %v", addr, err)
		}
		conns = append(conns, pc.(*net.UDPConn))
		t.Cleanup(func() { pc.Close() })
		addr = pc.LocalAddr().String()
	}
	return conns
}

// arrivals sends one query with each ID from a socket bound to from, and
// returns which socket of the group each arrived on.
func arrivals(t *testing.T, group []*net.UDPConn, network, from string, ids []uint16) []int {
	t.Helper()
	laddr, err := net.ResolveUDPAddr(network, net.JoinHostPort(from, "0"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP(network, laddr, group[0].LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Skipf("cannot send from %s: %v", from, err)
	}
	defer c.Close()
	var got []int
	for _, id := range ids {
		m := new(dns.Msg)
		m.SetQuestion("dual.example.test.", dns.TypeAAAA)
		m.Id = id
		b, _ := m.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		got = append(got, receivedOn(t, group))
	}
	return got
}

// receivedOn returns the index of the socket that has a datagram.
func receivedOn(t *testing.T, group []*net.UDPConn) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 512)
	for time.Now().Before(deadline) {
		for i, c := range group {
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(buf); err == nil {
				return i
			}
		}
	}
	t.Fatal("the datagram arrived on no socket of the group")
	return -1
}

// The program the kernel runs: the steered sources' datagrams go to the
// last socket; everyone else's are spread over the others by DNS ID.
func TestSteerProgramInTheKernel(t *testing.T) {
	ids := []uint16{0, 1, 2, 3, 0x1234, 0xffff}
	spreadByID := []int{0, 1, 0, 1, 0, 1}
	steered := []int{2, 2, 2, 2, 2, 2}
	for _, tc := range []struct {
		name, network, listen, from string
		srcs                        []string
		want                        []int
	}{
		{"IPv4: nothing steered", "udp4", "127.0.0.1", "127.0.0.2", nil, spreadByID},
		{"IPv4: a steered source (RFC 791 source address)", "udp4", "127.0.0.1", "127.0.0.2",
			[]string{"127.0.0.9", "127.0.0.2", "127.0.0.10"}, steered},
		{"IPv4: another source is not", "udp4", "127.0.0.1", "127.0.0.3",
			[]string{"127.0.0.9", "127.0.0.2", "127.0.0.10"}, spreadByID},
		{"IPv6: a steered /64 (RFC 8200 source address)", "udp6", "::1", "::1",
			[]string{"2001:db8:1::", "::", "2001:db8:2::"}, steered},
		{"IPv6: another /64 is not", "udp6", "::1", "::1",
			[]string{"2001:db8:1::", "2001:db8:2::"}, spreadByID},
		{"IPv6: the same first word is not enough", "udp6", "::1", "::1",
			[]string{"0:0:0:1::"}, spreadByID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			group := reuseportGroup(t, tc.network, tc.listen, 3)
			rc, err := group[0].SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			st := newSteering(rc, 2, tc.network == "udp6", new(atomic.Uint64))
			for _, s := range tc.srcs {
				st.steered[netip.MustParseAddr(s)] = time.Now().Add(time.Hour)
			}
			if err := st.attach(); err != nil {
				t.Fatal(err)
			}
			if got := arrivals(t, group, tc.network, tc.from, ids); !slices.Equal(got, tc.want) {
				t.Errorf("queries with IDs %v arrived on sockets %v, want %v", ids, got, tc.want)
			}
		})
	}
}

// newTestSteering is a steering on a real group, so that attach works.
func newTestSteering(t *testing.T) *steering {
	t.Helper()
	group := reuseportGroup(t, "udp4", "127.0.0.1", 3)
	rc, err := group[0].SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return newSteering(rc, 2, false, new(atomic.Uint64))
}

func TestSteeringStartsAndEnds(t *testing.T) {
	st := newTestSteering(t)
	flood, other := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("192.0.2.8")
	t0 := time.Unix(1_000_000, 0)
	// Drops below the threshold within one window steer nothing; the
	// count starts again in the next window.
	st.dropped(flood, steerAfter-1, t0)
	if changed, err := st.dropped(flood, steerAfter-1, t0.Add(steerWindow)); changed || err != nil {
		t.Fatalf("steered after %d drops in each of two windows: %v", steerAfter-1, err)
	}
	if changed, err := st.dropped(flood, 1, t0.Add(steerWindow+time.Millisecond)); !changed || err != nil {
		t.Fatalf("not steered after %d drops in a window: %v", steerAfter, err)
	}
	if got := st.sources(); !slices.Equal(got, []netip.Addr{flood}) || st.counter.Load() != 1 {
		t.Errorf("steered %v, counted %d", got, st.counter.Load())
	}
	// An IPv6 source cannot reach IPv4 sockets.
	if changed, _ := st.dropped(netip.MustParseAddr("2001:db8:1:2::77"), steerAfter, t0.Add(steerWindow+time.Millisecond)); changed {
		t.Errorf("an IPv6 source steered on IPv4 sockets: %v", st.sources())
	}
	// Another source floods too; then it stops, while the first goes on
	// (its drops keep it steered): after the hold only the first is left.
	t1 := t0.Add(steerWindow + time.Millisecond)
	st.dropped(other, steerAfter, t1)
	if got := st.sources(); len(got) != 2 || st.counter.Load() != 2 {
		t.Errorf("steered %v, counted %d; want both floods", got, st.counter.Load())
	}
	for d := time.Second; d <= steerHold+2*time.Second; d += time.Second {
		st.dropped(flood, 10, t1.Add(d))
	}
	if got := st.sources(); !slices.Equal(got, []netip.Addr{flood}) {
		t.Errorf("after the hold, steered %v, want only the flood", got)
	}
	// The flood stops: idle releases it once its hold ran out.
	t2 := t1.Add(steerHold + 2*time.Second)
	if changed, _ := st.idle(t2.Add(steerHold - time.Second)); changed {
		t.Error("released before the hold ran out")
	}
	if changed, err := st.idle(t2.Add(steerHold + time.Second)); !changed || err != nil || len(st.sources()) != 0 {
		t.Errorf("idle after the hold: changed %v, %v, still steered %v", changed, err, st.sources())
	}
	if _, err := st.dropped(other, 1, t2.Add(time.Hour)); err != nil || len(st.sources()) != 0 {
		t.Errorf("one drop steered %v (%v)", st.sources(), err)
	}
}

// An IPv6 source is steered by its /64 (RFC 8981: a host may use any
// address of it), but never a link-local one: all hosts share fe80::/64.
func TestLinkLocalSourcesAreNotSteered(t *testing.T) {
	group := reuseportGroup(t, "udp6", "::1", 3)
	rc, err := group[0].SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	st := newSteering(rc, 2, true, new(atomic.Uint64))
	if changed, err := st.dropped(netip.MustParseAddr("fe80::77"), 10*steerAfter, time.Now()); changed || err != nil || len(st.sources()) > 0 {
		t.Errorf("a link-local flood steered fe80::/64: %v (%v)", st.sources(), err)
	}
	if changed, err := st.dropped(netip.MustParseAddr("2001:db8:1:2::77"), steerAfter, time.Now()); !changed || err != nil {
		t.Errorf("a global flood not steered: %v", err)
	}
}

// steerSource is what a source is steered by: an IPv4 address, an IPv6 /64.
func TestSteerSourceIsThe64(t *testing.T) {
	for a, want := range map[string]string{
		"2001:db8:1:2::77":            "2001:db8:1:2::",
		"2001:db8:1:2:ffff:ffff:1:77": "2001:db8:1:2::",
		"192.0.2.7":                   "192.0.2.7",
	} {
		if got := steerSource(netip.MustParseAddr(a)); got != netip.MustParseAddr(want) {
			t.Errorf("steerSource(%s) = %s, want %s", a, got, want)
		}
	}
}

// However many sources flood, the steering holds at most maxSteered and
// counts the drops of at most maxDropSources per window.
func TestSteeringIsBounded(t *testing.T) {
	st := newTestSteering(t)
	t0 := time.Unix(1_000_000, 0)
	for i := range 4 * maxSteered {
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		if _, err := st.dropped(a, steerAfter, t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(st.sources()); n != maxSteered {
		t.Errorf("%d sources steered, want %d", n, maxSteered)
	}
	// The newest stay: the ones held the shortest made room.
	if !slices.Contains(st.sources(), netip.AddrFrom4([4]byte{198, 51, 100, byte(4*maxSteered - 1)})) {
		t.Error("the newest flood is not steered")
	}
	for i := range 10 * maxDropSources {
		st.dropped(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1, t0.Add(time.Second))
	}
	if n := len(st.drops); n > maxDropSources {
		t.Errorf("drops of %d sources counted, bound %d", n, maxDropSources)
	}
}

// The service steers a flood from one host to a socket of its own, and
// another host's queries are all answered while it goes on.
func TestRunSteersAFlood(t *testing.T) {
	ap := loopbackAddrPort(t)
	s := newTestService(t, newTestZone(), nil)
	serve(t, s, testPlan(), Listener{Addr: ap, Source: SourceRDNSS})

	q := new(dns.Msg)
	q.SetQuestion("dual.example.test.", dns.TypeAAAA)
	wire, _ := q.Pack()
	fctx, stopFlood := context.WithCancel(context.Background())
	flooded := make(chan error, 1)
	go func() { flooded <- floodFrom(fctx, "127.0.0.2", ap, wire) }()
	defer func() {
		stopFlood()
		if err := <-flooded; err != nil {
			t.Errorf("flood: %v", err)
		}
	}()
	deadline := time.Now().Add(time.Minute)
	for s.Stats().Fairness.Steered == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the flood was not steered within a minute: %+v", s.Stats().Fairness)
		}
		time.Sleep(50 * time.Millisecond)
	}
	laddr := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.3:0"))
	cl := &dns.Client{Timeout: time.Second, Dialer: &net.Dialer{LocalAddr: laddr}}
	for i := range 50 {
		var err error
		for try := 0; try < 3; try++ { // a stub resolver retries too
			if _, _, err = cl.Exchange(q, ap.String()); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("query %d of the other host during the flood: %v (%+v)", i, err, s.Stats().Fairness)
		}
	}
}

// floodFrom sends wire to ap from a socket bound to the address from, as
// fast as it can, until ctx is done.
func floodFrom(ctx context.Context, from string, ap netip.AddrPort, wire []byte) error {
	c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(from), 0)), net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return err
	}
	defer c.Close()
	go func() { // read and drop the answers
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil && errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}()
	for ctx.Err() == nil {
		c.Write(wire) // ECONNREFUSED and a full buffer are part of a flood
	}
	return nil
}
