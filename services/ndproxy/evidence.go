package ndproxy

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// What the service learns about LAN host addresses, and from what: claims
// (DAD probes, NS and NA heard on the LAN, the daemon's sightings, STALE
// neighbour entries) and proof (a REACHABLE neighbour entry: the host
// answered the gizmo's own solicitation). See table.go for what each is
// worth.

// maxProbes bounds the claims probed per second.
const maxProbes = 64

// probeDelay is how long after a claim the proxy asks the LAN for proof:
// a host in DAD ignores an NS for its tentative address (RFC 4862
// §5.4.3), and DAD takes RetransTimer (1 s, RFC 4861 §10) per probe.
const probeDelay = 2 * time.Second

// learn records evidence of a: proof (the host answered the gizmo) or a
// claim (anything else); the first claim of a run gets the address
// probed soon.
func (r *runState) learn(a netip.Addr, at time.Time, how string, proof bool) {
	a = a.WithZone("")
	was := r.tab.entries[a]
	wasProven := was != nil && r.tab.isProven(was, at)
	res, evicted := r.tab.learn(a, at, proof)
	if evicted.IsValid() {
		delete(r.probeAt, evicted)
		r.s.count(func(st *Stats) { st.UnprovenEvicted++ })
	}
	switch res {
	case learnFull:
		r.s.count(func(st *Stats) { st.Dropped++ })
		return
	case learnStale, learnBogus:
		return
	case learnNew:
		r.s.count(func(st *Stats) { st.Learned++ })
		if r.plan.Prefix.Contains(a) {
			r.s.log.Debug("learned a LAN address", "addr", a, "from", how, "proven", proof)
		}
	}
	e := r.tab.entries[a]
	if proof {
		delete(r.probeAt, a)
		if r.installed[a] && !r.proven[a] {
			r.proven[a] = true
			r.s.log.Info("a LAN host answered for its address; proxied", "addr", a)
		}
		if !wasProven {
			r.s.count(func(st *Stats) { st.Proven++ })
		}
		return
	}
	if !r.tab.isProven(e, at) && e.claimed.Equal(at) && r.plan.Prefix.Contains(a) {
		r.probeAt[a] = at.Add(probeDelay)
	}
}

// checkClaims probes the claimed addresses that are due and counts what
// the snooping sockets dropped; the reconcile after it withdraws what has
// lapsed.
func (r *runState) checkClaims(now time.Time) {
	// What the kernel dropped because the sockets' queues were full
	// (PACKET_STATISTICS, which resets) is evidence lost too.
	var drops uint64
	for _, c := range r.conns {
		if st, err := c.Stats(); err == nil {
			drops += uint64(st.Drops)
		}
	}
	if drops > 0 {
		r.s.count(func(st *Stats) { st.Dropped += drops })
	}
	// The claims that are due, earliest first, at most maxProbes a
	// second: every probe makes a neighbour entry and its changes in the
	// kernel, and a flood of claims must not flood the kernel. What waits
	// too long expires unproven; a host that holds an address is found
	// again when the upstream solicits it (lookup).
	var due []netip.Addr
	for a, at := range r.probeAt {
		if !at.After(now) {
			due = append(due, a)
		}
	}
	slices.SortFunc(due, func(a, b netip.Addr) int { return cmp.Or(r.probeAt[a].Compare(r.probeAt[b]), a.Compare(b)) })
	var failed int
	for _, a := range due[:min(len(due), maxProbes)] {
		delete(r.probeAt, a)
		if e := r.tab.entries[a]; e == nil || r.tab.isProven(e, now) {
			continue
		}
		if err := r.k.probe(a); err != nil {
			failed++
		}
	}
	if failed > 0 {
		// The kernel's neighbour table may be full (gc_thresh3) under a
		// flood of claims: counted, and said once per pass.
		r.s.count(func(st *Stats) { st.Errors += uint64(failed) })
		r.s.log.Debug("probing claimed LAN addresses failed", "count", failed)
	}
}

// expire forgets what has lapsed, and counts it: claims without proof
// after UnprovenMaxAge, proven addresses without new proof for MaxAge.
// reconcile calls it first, so that what it withdraws is counted at once.
func (r *runState) expire(now time.Time) {
	gone, neverProven := r.tab.prune(now)
	for _, a := range gone {
		delete(r.probeAt, a)
		if r.installed[a] {
			r.s.count(func(st *Stats) { st.Expired++ })
			r.s.log.Info("no sign of a LAN host for too long; no longer proxied", "addr", a, "max_age", r.s.cfg.MaxAge)
		}
	}
	for _, a := range neverProven {
		delete(r.probeAt, a)
	}
	if n := len(neverProven); n > 0 {
		r.s.count(func(st *Stats) { st.UnprovenExpired += uint64(n) })
		r.s.log.Debug("claimed LAN addresses without proof withdrawn", "count", n, "unproven_max_age", r.s.cfg.UnprovenMaxAge)
	}
}

// heard handles an ND message. LAN: a DAD probe, an NS from a host's
// address or a host's NA each show that a host holds the address. WAN:
// counted only; the kernel answers.
func (r *runState) heard(h heard, now time.Time) {
	ev := h.ev
	if h.own {
		// The gizmo resolves an address of the shared /64 on the uplink:
		// if a LAN host holds it, the route to it is missing.
		if ev.kind == kindNS && r.plan.Prefix.Contains(ev.target) && !r.installed[ev.target] && !slices.Contains(r.plan.Own, ev.target) {
			r.lookup(ev.target, now)
		}
		return
	}
	if h.wan {
		if ev.kind == kindNA || !r.plan.Prefix.Contains(ev.target) || slices.Contains(r.plan.Own, ev.target) {
			return
		}
		r.s.count(func(st *Stats) {
			switch {
			case !r.installed[ev.target]:
				st.NSIgnored++
			case ev.kind == kindDAD:
				st.DADDefended++
			default:
				st.NSAnswered++
			}
		})
		if ev.kind == kindNS && !r.installed[ev.target] {
			r.lookup(ev.target, now)
		}
		return
	}
	switch ev.kind {
	case kindDAD:
		if r.plan.Prefix.Contains(ev.target) {
			r.s.count(func(st *Stats) { st.DADSeen++ })
		}
		r.learn(ev.target, now, "dad", false)
	case kindNS:
		r.learn(ev.source, now, "ns", false)
	case kindNA:
		r.learn(ev.target, now, "na", false)
	}
}

// lookupHoldoff is how long the proxy waits before it looks up the same
// address on the LAN again: the upstream retransmits its NS every second
// (RFC 4861 §10 RETRANS_TIMER), and each answer or FAILED takes a moment.
const lookupHoldoff = 5 * time.Second

// lookup asks the LAN whether a host holds a, which the upstream is
// resolving and the proxy does not know: RFC 4389 §4.1.3.1 has a proxy
// solicit on the other side for a target it has no entry for. Hosts that
// skip DAD (or whose DAD the proxy missed) are found this way on their
// first traffic: the upstream resolves the address to deliver the reply.
// If a host answers, the neighbour entry becomes REACHABLE, which is
// evidence (neighbour); the upstream's next NS is then answered.
func (r *runState) lookup(a netip.Addr, now time.Time) {
	if last, ok := r.lookedUp[a]; ok && now.Sub(last) < lookupHoldoff {
		return
	}
	if len(r.lookedUp) >= r.s.cfg.MaxAddrs {
		r.s.count(func(st *Stats) { st.Dropped++ })
		return
	}
	r.lookedUp[a] = now
	r.s.count(func(st *Stats) { st.Lookups++ })
	if err := r.k.probe(a); err != nil {
		r.s.count(func(st *Stats) { st.Errors++ })
		r.s.log.Warn("looking up an address on the LAN", "addr", a, "err", err)
	}
}

// neighbour handles a change in the LAN's neighbour table: a REACHABLE
// entry is proof (the host answered the gizmo's NS, or upper layers
// confirmed it, RFC 4861 §7.3.1), a STALE one a claim (an NS or NA with a
// link-layer option makes one, from anyone), a FAILED one (RFC 4861
// §7.3.3: no answer to the probes) means the host is gone.
func (r *runState) neighbour(u netlink.NeighUpdate, now time.Time) {
	if u.LinkIndex != r.k.lanIdx || u.Type != unix.RTM_NEWNEIGH || u.Flags&netlink.NTF_PROXY != 0 {
		return
	}
	a, ok := netip.AddrFromSlice(u.IP)
	if !ok || !r.plan.Prefix.Contains(a.Unmap()) {
		return
	}
	a = a.Unmap()
	switch {
	case u.State&(netlink.NUD_REACHABLE|netlink.NUD_PERMANENT) != 0:
		r.learn(a, now, "neighbour", true)
	case u.State&netlink.NUD_STALE != 0:
		r.learn(a, now, "neighbour", false)
	case u.State&netlink.NUD_FAILED != 0:
		delete(r.probeAt, a)
		e := r.tab.entries[a]
		everProven := e != nil && !e.proven.IsZero()
		if !r.tab.fail(a, now) {
			return
		}
		if everProven {
			r.s.count(func(st *Stats) { st.Failed++ })
			r.s.log.Info("LAN host stopped answering; no longer proxied", "addr", a)
			return
		}
		// A claim nobody answers for: withdrawn without proof.
		r.s.count(func(st *Stats) { st.UnprovenExpired++ })
		r.s.log.Debug("no LAN host answers for a claimed address; no longer proxied", "addr", a)
	}
}

// verify reads the LAN's neighbour table: confirmed entries are evidence;
// for the others the kernel is asked to probe, so that a gone host ends
// FAILED. It also forgets what has had no evidence for MaxAge.
func (r *runState) verify(now time.Time) {
	for a, t := range r.lookedUp {
		if now.Sub(t) >= lookupHoldoff {
			delete(r.lookedUp, a)
		}
	}
	if len(r.installed) == 0 {
		return
	}
	states, err := neighbours(r.k.lanIdx)
	if err != nil {
		r.s.count(func(st *Stats) { st.Errors++ })
		r.s.log.Warn("verifying LAN hosts", "err", err)
		return
	}
	for a := range r.installed {
		if states[a]&(netlink.NUD_REACHABLE|netlink.NUD_PERMANENT) != 0 {
			r.learn(a, now, "neighbour", true)
			continue
		}
		if err := r.k.probe(a); err != nil {
			r.s.count(func(st *Stats) { st.Errors++ })
			r.s.log.Warn("probing a LAN host", "addr", a, "err", err)
		}
	}
}
