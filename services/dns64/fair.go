package dns64

import (
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
)

// Fair queuing: on an otherwise idle gizmo one host gets the resolver's
// full speed (a fixed rate per client would cap it far below), and when
// hosts compete, each gets an equal share, however fast one of them sends.
//
// Each UDP reader drains its socket into a fairQueue, one FIFO per client,
// and answers from it round robin, one query per client in turn (deficit
// round robin with a quantum of one query: what a query costs hardly
// depends on who asked). The reader takes datagrams from the socket faster
// than it answers them, so that under a flood the kernel's receive buffer,
// which drops without regard to the sender, does not fill: the choice of
// what to drop is made here, where the senders are known. When the queue
// holds maxQueued queries, the query dropped is one of the client with the
// most queued (longest queue drop): a client that sends faster than its
// share loses its own queries, never another's.
//
// A client is the host as the plan knows it (its MAC, so that all of a
// host's addresses share one queue), else its IPv4 address, else its
// IPv6 /64: a host that is not in the plan can take any address of its
// /64 (RFC 8981 temporary addresses, or forged ones), and must not get a
// share per address. Link-local addresses are the exception: every host
// on the link has one in fe80::/64, so each counts alone. Queues exist only while they hold queries, so the
// number of clients tracked is bounded by maxQueued, also under a flood
// from random source addresses.

// maxQueued is how many queries one reader holds. At about 8 µs per
// answer on a slow two-core router that is 8 ms of work, and more than a
// closed-loop load generator keeps outstanding (dnsperf -c 8 -q 100).
const maxQueued = 1024

// slotBytes is the buffer kept per queued query. Queries hardly exceed 100
// bytes; a longer one gets a buffer of its own, dropped once answered.
const slotBytes = 512

// fairKey returns the client a query from a is counted against.
func (c *compiledPlan) fairKey(a netip.Addr) hostKey {
	if cp, ok := c.Clients[a]; ok && cp.MAC != "" {
		return hostKey{mac: cp.MAC}
	}
	if a.Is6() && !a.IsLinkLocalUnicast() {
		p, _ := a.Prefix(64)
		return hostKey{addr: p.Addr()}
	}
	return hostKey{addr: a}
}

// fairQueue is one reader's queue. It is used by that reader alone.
type fairQueue struct {
	max   int
	slots []querySlot // max plus one batch: the queries being answered are out of the queue but still in their slots
	free  []int32     // slots not in use

	queues map[hostKey]*clientQueue
	spare  []*clientQueue // for new clients, so that queueing allocates nothing
	next   *clientQueue   // the next queue to serve; the non-empty queues form a ring
	total  int

	// lens[n] is how many queues hold n queries; longest is the largest n
	// with lens[n] > 0. Together they find the longest queue without a
	// scan of all.
	lens    []int
	longest int

	dropped  uint64     // queries dropped because the queue was full
	lastDrop netip.Addr // the source of the last one dropped
}

// querySlot holds one query between the socket and its answer.
type querySlot struct {
	wire    []byte
	name    unix.RawSockaddrInet6 // where it came from, as the kernel gave it
	namelen uint32
	client  netip.AddrPort
	key     hostKey
	next    int32 // the next query of the same client, -1 for none
}

// clientQueue is one client's FIFO of slots, and its place in the ring.
type clientQueue struct {
	key        hostKey
	head, tail int32
	n          int
	prev, next *clientQueue
}

func newFairQueue(max, batch int) *fairQueue {
	q := &fairQueue{
		max:    max,
		slots:  make([]querySlot, max+batch),
		free:   make([]int32, 0, max+batch),
		queues: make(map[hostKey]*clientQueue, max),
		lens:   make([]int, max+2),
	}
	for i := len(q.slots) - 1; i >= 0; i-- {
		q.free = append(q.free, int32(i))
	}
	return q
}

// admit makes room for a query from key (at source address from) and
// returns the slot to fill, or -1 when the query is dropped: the queue is
// full and key's own queue is the longest. If another client's queue is
// longer, its oldest query is dropped instead (the one most likely to be
// answered too late anyway).
func (q *fairQueue) admit(key hostKey, from netip.Addr) int32 {
	cq := q.queues[key]
	if q.total >= q.max {
		n := 0
		if cq != nil {
			n = cq.n
		}
		if n >= q.longest {
			q.dropped++
			q.lastDrop = from
			return -1
		}
		i := q.dropHead(q.longestQueue())
		q.dropped++
		q.lastDrop = q.slots[i].client.Addr()
		q.release(i)
	}
	if len(q.free) == 0 {
		// Every slot is queued or being answered: cannot happen while the
		// reader answers at most one batch between admits.
		q.dropped++
		q.lastDrop = from
		return -1
	}
	i := q.free[len(q.free)-1]
	q.free = q.free[:len(q.free)-1]
	if cq == nil {
		cq = q.activate(key)
	}
	s := &q.slots[i]
	s.key, s.next = key, -1
	if cq.n == 0 {
		cq.head = i
	} else {
		q.slots[cq.tail].next = i
	}
	cq.tail = i
	q.resize(cq, cq.n+1)
	q.total++
	return i
}

// pop returns the next query to answer, round robin over the clients;
// its slot must be given back with release once the answer is sent.
func (q *fairQueue) pop() (int32, bool) {
	cq := q.next
	if cq == nil {
		return -1, false
	}
	q.next = cq.next
	return q.dropHead(cq), true
}

// release returns a slot whose query was answered or dropped.
func (q *fairQueue) release(i int32) {
	s := &q.slots[i]
	if cap(s.wire) > slotBytes {
		s.wire = nil // an outsized query's buffer is not kept
	}
	s.key = hostKey{}
	q.free = append(q.free, i)
}

// slot returns slot i.
func (q *fairQueue) slot(i int32) *querySlot { return &q.slots[i] }

// set fills a slot with a query, in the slot's own buffer.
func (s *querySlot) set(wire []byte, client netip.AddrPort, name *unix.RawSockaddrInet6, namelen uint32) {
	if s.wire == nil {
		s.wire = make([]byte, 0, max(slotBytes, len(wire)))
	}
	s.wire = append(s.wire[:0], wire...)
	s.client, s.name, s.namelen = client, *name, namelen
}

// takeDropped returns the drops counted since the last call.
func (q *fairQueue) takeDropped() uint64 {
	d := q.dropped
	q.dropped = 0
	return d
}

// dropHead takes the oldest query off cq and returns its slot.
func (q *fairQueue) dropHead(cq *clientQueue) int32 {
	i := cq.head
	cq.head = q.slots[i].next
	q.resize(cq, cq.n-1)
	q.total--
	if cq.n == 0 {
		q.deactivate(cq)
	}
	return i
}

// longestQueue returns a queue holding q.longest queries, the first found
// in serving order.
func (q *fairQueue) longestQueue() *clientQueue {
	cq := q.next
	for cq.n != q.longest {
		cq = cq.next
	}
	return cq
}

// resize moves cq to length n in the histogram of lengths.
func (q *fairQueue) resize(cq *clientQueue, n int) {
	q.lens[cq.n]--
	q.lens[n]++
	cq.n = n
	if n > q.longest {
		q.longest = n
	}
	for q.longest > 0 && q.lens[q.longest] == 0 {
		q.longest--
	}
}

// activate starts a queue for key and puts it last in the ring, so that a
// new client waits for one turn of those already waiting.
func (q *fairQueue) activate(key hostKey) *clientQueue {
	var cq *clientQueue
	if n := len(q.spare); n > 0 {
		cq, q.spare = q.spare[n-1], q.spare[:n-1]
	} else {
		cq = new(clientQueue)
	}
	*cq = clientQueue{key: key}
	q.lens[0]++
	q.queues[key] = cq
	if q.next == nil {
		cq.prev, cq.next = cq, cq
		q.next = cq
	} else {
		last := q.next.prev
		cq.prev, cq.next = last, q.next
		last.next = cq
		q.next.prev = cq
	}
	return cq
}

// deactivate removes an empty queue from the ring and the map.
func (q *fairQueue) deactivate(cq *clientQueue) {
	q.lens[0]--
	delete(q.queues, cq.key)
	if cq.next == cq {
		q.next = nil
	} else {
		cq.prev.next = cq.next
		cq.next.prev = cq.prev
		if q.next == cq {
			q.next = cq.next
		}
	}
	*cq = clientQueue{}
	q.spare = append(q.spare, cq)
}

// upstreamShares bounds how many of the queries waiting for an upstream
// (maxWaitingQueries in all) one client may hold: a host that floods the
// resolver with names no cache holds leaves the others room to ask theirs.
// It tracks only clients with queries waiting, so it is bounded by
// maxWaitingQueries.
type upstreamShares struct {
	max int

	mu      sync.Mutex
	waiting map[hostKey]int
}

func newUpstreamShares(max int) *upstreamShares {
	return &upstreamShares{max: max, waiting: map[hostKey]int{}}
}

// take reserves a wait for key, false when it has its share.
func (u *upstreamShares) take(key hostKey) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.waiting[key] >= u.max {
		return false
	}
	u.waiting[key]++
	return true
}

func (u *upstreamShares) release(key hostKey) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.waiting[key]--; u.waiting[key] <= 0 {
		delete(u.waiting, key)
	}
}
