package dns64

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
)

func key(name string) hostKey { return hostKey{mac: name} }

// push queues a query from client, its sequence number in the port of the
// slot's client address; it returns false when the query was dropped.
func push(q *fairQueue, client string, seq int) bool {
	j := q.admit(key(client), netip.IPv6Loopback())
	if j < 0 {
		return false
	}
	q.slot(j).client = netip.AddrPortFrom(netip.IPv6Loopback(), uint16(seq))
	return true
}

// popAll answers everything queued and returns "client/seq" in the order
// served.
func popAll(q *fairQueue) []string {
	var out []string
	for {
		i, ok := q.pop()
		if !ok {
			return out
		}
		s := q.slot(i)
		out = append(out, fmt.Sprintf("%s/%d", s.key.mac, s.client.Port()))
		q.release(i)
	}
}

func TestFairQueueOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		pushes []string // client names, in arrival order; each gets the next sequence number
		want   []string
		drops  uint64
	}{
		{"one client alone is served in arrival order", 8,
			[]string{"a", "a", "a"}, []string{"a/0", "a/1", "a/2"}, 0},
		{"clients take turns, one query each", 8,
			[]string{"a", "a", "a", "a", "b", "b", "c"}, []string{"a/0", "b/4", "c/6", "a/1", "b/5", "a/2", "a/3"}, 0},
		{"full: the arrival from the longest queue is dropped", 4,
			[]string{"a", "a", "a", "a", "a"}, []string{"a/0", "a/1", "a/2", "a/3"}, 1},
		{"full: another client's arrival drops the longest queue's oldest", 4,
			[]string{"a", "a", "a", "a", "b"}, []string{"a/1", "b/4", "a/2", "a/3"}, 1},
		{"full: of two long queues the arrival's own is cut when it is as long", 4,
			[]string{"a", "a", "b", "b", "b"}, []string{"a/0", "b/2", "a/1", "b/3"}, 1},
		{"full: a light client keeps its query while the heavy one loses", 4,
			[]string{"a", "a", "a", "b", "a", "a", "c", "a"}, []string{"a/1", "b/3", "c/6", "a/2"}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newFairQueue(tc.max, 2)
			for seq, c := range tc.pushes {
				push(q, c, seq)
				if q.total > tc.max {
					t.Fatalf("after %d arrivals %d queued, limit %d", seq+1, q.total, tc.max)
				}
			}
			if got := popAll(q); !slices.Equal(got, tc.want) {
				t.Errorf("served %v, want %v", got, tc.want)
			}
			if d := q.takeDropped(); d != tc.drops {
				t.Errorf("%d dropped, want %d", d, tc.drops)
			}
			if q.total != 0 || len(q.queues) != 0 || q.longest != 0 || q.next != nil {
				t.Errorf("empty queue not empty: total %d, %d clients, longest %d", q.total, len(q.queues), q.longest)
			}
		})
	}
}

// A client that shows up waits for one turn of those already waiting, not
// for their whole queues.
func TestFairQueueNewClientWaitsOneTurn(t *testing.T) {
	q := newFairQueue(16, 2)
	for i := range 3 {
		push(q, "a", i)
	}
	push(q, "b", 3)
	i, _ := q.pop() // a/0
	q.release(i)
	push(q, "c", 4)
	if got, want := popAll(q), []string{"b/3", "a/1", "c/4", "a/2"}; !slices.Equal(got, want) {
		t.Errorf("served %v, want %v", got, want)
	}
}

// tick simulates one interval of a reader: the arrivals, then answering up
// to service queries. It returns how many of each client's were answered.
func tick(q *fairQueue, arrivals map[string]int, service int, seq *int) map[string]int {
	for _, c := range slices.Sorted(maps.Keys(arrivals)) {
		for range arrivals[c] {
			push(q, c, *seq)
			*seq++
		}
	}
	answered := map[string]int{}
	for range service {
		i, ok := q.pop()
		if !ok {
			break
		}
		answered[q.slot(i).key.mac]++
		q.release(i)
	}
	return answered
}

// The goals: a client alone gets the whole service, and a flood from one
// client leaves a modest one everything it asks for, while two floods
// share what is left equally.
func TestFairQueueShares(t *testing.T) {
	for _, tc := range []struct {
		name     string
		arrivals map[string]int // per tick
		service  int            // answers per tick
		want     map[string]int // answered over 1,000 ticks
		drops    bool
	}{
		{"work conserving: one client at the full rate loses nothing",
			map[string]int{"a": 30}, 30, map[string]int{"a": 30000}, false},
		{"a flood leaves a modest client all its queries",
			map[string]int{"flood": 100, "normal": 2}, 30, map[string]int{"flood": 28000, "normal": 2000}, true},
		{"two floods share the service equally, a third client keeps its own",
			map[string]int{"f1": 100, "f2": 50, "normal": 1}, 31, map[string]int{"f1": 15000, "f2": 15000, "normal": 1000}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newFairQueue(64, 32)
			got := map[string]int{}
			seq := 0
			for range 1000 {
				for c, n := range tick(q, tc.arrivals, tc.service, &seq) {
					got[c] += n
				}
			}
			for c, want := range tc.want {
				// A client below its share gets every query answered in
				// the tick it arrives; a flood's count may be off by what
				// is queued at the end, or by a turn's phase.
				slack := 64
				if want == 1000*tc.arrivals[c] {
					slack = 0
				}
				if got[c] > want+slack || got[c] < want-slack {
					t.Errorf("%s: %d answered, want %d (all per tick: %v)", c, got[c], want, got)
				}
			}
			if d := q.takeDropped(); d > 0 != tc.drops {
				t.Errorf("%d dropped", d)
			}
		})
	}
}

// A flood from random source addresses never holds more than the limit,
// in queries, clients tracked or memory; every query it loses is counted.
func TestFairQueueBoundedUnderRandomSources(t *testing.T) {
	const limit = 128
	q := newFairQueue(limit, 32)
	for i := range 100 * limit {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		q.admit(hostKey{addr: a}, a)
		if q.total > limit || len(q.queues) > limit {
			t.Fatalf("after %d arrivals: %d queued for %d clients, limit %d", i+1, q.total, len(q.queues), limit)
		}
	}
	if d := q.takeDropped(); d != 99*limit {
		t.Errorf("%d dropped, want %d", d, 99*limit)
	}
	if n := len(popAll(q)); n != limit {
		t.Errorf("%d answered, want %d", n, limit)
	}
	if len(q.spare) > limit || len(q.free) != limit+32 {
		t.Errorf("%d spare client queues, %d free slots", len(q.spare), len(q.free))
	}
}

// RFC 8981 temporary addresses: a host the plan does not know is one
// client for its whole /64; a known host is one client for all its
// addresses.
func TestFairKey(t *testing.T) {
	p, err := compile(Plan{Clients: map[netip.Addr]ClientPolicy{
		netip.MustParseAddr("2001:db8:1000::100"): {MAC: "02:00:00:00:00:01"},
		netip.MustParseAddr("203.0.113.130"):      {MAC: "02:00:00:00:00:01"},
		netip.MustParseAddr("2001:db8:1000::200"): {DNS64: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1000::100", "203.0.113.130"},       // one host, two families
		{"2001:db8:2000::1", "2001:db8:2000::ffff:1"}, // unknown, same /64
		{"2001:db8:1000::200", "2001:db8:1000::300"},  // known without a MAC, same /64
	} {
		if ka, kb := p.fairKey(netip.MustParseAddr(tc.a)), p.fairKey(netip.MustParseAddr(tc.b)); ka != kb {
			t.Errorf("%s and %s are different clients: %v, %v", tc.a, tc.b, ka, kb)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:2000::1", "2001:db8:2000:1::1"}, // unknown, other /64
		{"198.51.100.1", "198.51.100.2"},           // IPv4: per address
		{"2001:db8:1000::100", "2001:db8:1000::101"},
		{"fe80::1", "fe80::2"}, // every host has a link-local address in fe80::/64
	} {
		if ka, kb := p.fairKey(netip.MustParseAddr(tc.a)), p.fairKey(netip.MustParseAddr(tc.b)); ka == kb {
			t.Errorf("%s and %s are one client: %v", tc.a, tc.b, ka)
		}
	}
}

// A client may hold at most its share of the queries waiting for
// upstreams; the readers and the answering goroutines share the count.
func TestUpstreamShares(t *testing.T) {
	const share = 8
	u := newUpstreamShares(share)
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := map[string]int{}
	for g := range 4 {
		wg.Go(func() {
			for i := range 10 {
				c := fmt.Sprintf("c%d", (g+i)%2)
				if u.take(key(c)) {
					mu.Lock()
					taken[c]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if taken["c0"] != share || taken["c1"] != share {
		t.Errorf("taken %v, want %d each", taken, share)
	}
	if u.take(key("c0")) {
		t.Error("a ninth wait taken")
	}
	if !u.take(key("other")) {
		t.Error("another client refused")
	}
	u.release(key("c0"))
	if !u.take(key("c0")) {
		t.Error("refused after a release")
	}
	for range share {
		u.release(key("c0"))
	}
	for range share {
		u.release(key("c1"))
	}
	u.release(key("other"))
	if len(u.waiting) != 0 {
		t.Errorf("clients without waiting queries still tracked: %v", u.waiting)
	}
}
