package dns64

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Steering floods away from everyone else's socket buffers.
//
// The fair queue decides what to drop only among the queries a reader took
// from its socket. A host that floods faster than the readers can even
// take datagrams off the socket (a loopback or a gigabit NIC can carry
// more than a two-core router reads) fills the socket's receive buffer,
// and the kernel then drops whatever arrives, the other hosts' queries as
// well as the flood's. So a source whose queries the fair queues keep
// dropping is steered, by a classic BPF program attached to the
// SO_REUSEPORT group (SO_ATTACH_REUSEPORT_CBPF, socket(7)), to a socket of
// its own: the flood then fills only that socket's buffer, and its reader
// serves it as well as it can. Everyone else's queries are spread over the
// other sockets by their DNS ID, as random as the kernel's own hash. A
// source stays steered until its queries have not been dropped for
// steerHold; the sources are few and live briefly, and the program is
// rebuilt when they change.

const (
	// maxSteered bounds the sources steered at once (and the program).
	maxSteered = 16
	// steerAfter is how many queries of one source the fair queues must
	// drop in one steerWindow before it is steered.
	steerAfter  = 256
	steerWindow = time.Second
	// steerHold is how long a steered source stays steered after its
	// queries were last dropped.
	steerHold = 10 * time.Second
	// maxDropSources bounds the sources whose drops are counted in one
	// window (a flood from random addresses reports many).
	maxDropSources = 256
)

// steering is the steering state of one listening address's sockets.
type steering struct {
	conn    syscall.RawConn // one socket of the group: the program applies to all
	spread  int             // sockets 0 … spread-1 take the others' queries; socket spread takes the steered sources'
	v6      bool
	counter *atomic.Uint64 // counts the sources steered

	// nextCheck is when idle next looks for holds that ran out (Unix
	// nanoseconds), so that a reader takes no lock per batch for it.
	nextCheck atomic.Int64

	mu      sync.Mutex
	window  time.Time
	drops   map[netip.Addr]int       // this window's drops, by source
	steered map[netip.Addr]time.Time // steered sources, until when
}

func newSteering(conn syscall.RawConn, spread int, v6 bool, counter *atomic.Uint64) *steering {
	return &steering{conn: conn, spread: spread, v6: v6, counter: counter,
		drops: map[netip.Addr]int{}, steered: map[netip.Addr]time.Time{}}
}

// steerSource is what a source is steered by: its IPv4 address, or the
// /64 of its IPv6 address (a host may use any address of its /64).
func steerSource(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// dropped notes that the fair queue dropped n queries, the last of them
// from a; it steers a when that made it a flood, and releases the sources
// whose hold ran out. It reports whether the program changed.
func (st *steering) dropped(a netip.Addr, n int, now time.Time) (bool, error) {
	if a.Is6() != st.v6 {
		return false, nil // not a datagram of these sockets
	}
	if a.IsLinkLocalUnicast() {
		// Every host on the link has an address in fe80::/64: steering
		// the /64 would steer them all. The fair queue still holds such
		// a flood to its share of what the readers take.
		return false, nil
	}
	src := steerSource(a)
	st.mu.Lock()
	defer st.mu.Unlock()
	if now.Sub(st.window) >= steerWindow {
		clear(st.drops)
		st.window = now
	}
	changed := st.expire(now)
	if _, ok := st.steered[src]; ok {
		st.steered[src] = now.Add(steerHold)
	} else if n > 0 && (len(st.drops) < maxDropSources || st.drops[src] > 0) {
		st.drops[src] += n
		if st.drops[src] >= steerAfter {
			st.steer(src, now)
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	return true, st.attach()
}

// expire releases the sources whose hold ran out.
func (st *steering) expire(now time.Time) bool {
	changed := false
	for src, until := range st.steered {
		if now.After(until) {
			delete(st.steered, src)
			changed = true
		}
	}
	return changed
}

// steer adds src, making room by releasing the source held the shortest.
func (st *steering) steer(src netip.Addr, now time.Time) {
	if len(st.steered) >= maxSteered {
		var first netip.Addr
		for s, until := range st.steered {
			if !first.IsValid() || until.Before(st.steered[first]) {
				first = s
			}
		}
		delete(st.steered, first)
	}
	st.steered[src] = now.Add(steerHold)
	delete(st.drops, src)
	st.counter.Add(1)
}

// idle is called by the readers when they dropped nothing: once a second
// at most, it releases the sources whose hold ran out. It reports whether
// the program changed.
func (st *steering) idle(now time.Time) (bool, error) {
	if now.UnixNano() < st.nextCheck.Load() {
		return false, nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.nextCheck.Store(now.Add(steerWindow).UnixNano())
	if !st.expire(now) {
		return false, nil
	}
	return true, st.attach()
}

// sources returns the steered sources.
func (st *steering) sources() []netip.Addr {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]netip.Addr, 0, len(st.steered))
	for s := range st.steered {
		out = append(out, s)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// attach installs the program for the steered sources. The caller holds mu.
func (st *steering) attach() error {
	srcs := make([]netip.Addr, 0, len(st.steered))
	for s := range st.steered {
		srcs = append(srcs, s)
	}
	slices.SortFunc(srcs, netip.Addr.Compare)
	prog := steerProgram(srcs, st.spread, st.v6)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	var serr error
	err := st.conn.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("dns64: attach reuseport program: %w", err)
	}
	return nil
}

// skfNetOff is SKF_NET_OFF (linux/filter.h): a load relative to the
// network header. A reuseport program sees the packet from the UDP
// payload on, and the source address only through this offset.
const skfNetOff = 0xfff00000 // -0x100000

// steerProgram returns a classic BPF program for a SO_REUSEPORT group: it
// returns the index of the socket a datagram goes to, spread for a source
// in srcs (IPv4 addresses, or IPv6 /64s as their first address) and the
// DNS ID modulo spread for everyone else. A load past the end of a short
// datagram ends the program with 0, socket 0.
func steerProgram(srcs []netip.Addr, spread int, v6 bool) []unix.SockFilter {
	ld := func(k uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: k}
	}
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: jt, Jf: jf}
	}
	var prog []unix.SockFilter
	// Each entry jumps to the "steered" return at the end when it
	// matches; the spread takes 3 instructions after the last entry.
	if v6 {
		for i, s := range srcs {
			b := s.As16()
			rest := uint8(4 * (len(srcs) - i - 1)) // instructions of the entries after this one
			prog = append(prog,
				ld(skfNetOff+8), // the source address's first word (RFC 8200 §3)
				jeq(word(b[0:4]), 0, 2),
				ld(skfNetOff+12),
				jeq(word(b[4:8]), rest+3, 0),
			)
		}
	} else if len(srcs) > 0 {
		prog = append(prog, ld(skfNetOff+12)) // the source address (RFC 791 §3.1)
		for i, s := range srcs {
			b := s.As4()
			prog = append(prog, jeq(word(b[:]), uint8(len(srcs)-i-1)+3, 0))
		}
	}
	prog = append(prog,
		unix.SockFilter{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 0}, // the DNS ID
		unix.SockFilter{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: uint32(spread)},
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_A},
	)
	if len(srcs) > 0 {
		prog = append(prog, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: uint32(spread)})
	}
	return prog
}

func word(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
