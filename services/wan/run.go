package wan

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
)

// runState is one Run's event sources, Router Solicitation schedule and
// view of the upstream.
type runState struct {
	*Service
	ifi    *net.Interface
	conn   *ndp.Conn
	linkCh chan netlink.LinkUpdate
	addrCh chan netlink.AddrUpdate
	// addrsDone ends the address subscription in force.
	addrsDone chan struct{}
	subErr    *lastError
	raCh      chan raPacket
	raErr     chan error
	linkUp    chan struct{} // to the DHCPv4 client: the link came back

	o       *observer
	rsLeft  int // Router Solicitations still to send after a link-up
	rsTimer *time.Timer
	expiry  *time.Timer // the next lifetime that runs out
}

// subscribe starts the netlink link and address subscriptions (with the
// existing addresses). The link subscription ends when done is closed,
// the address subscription when Run calls endAddrs.
func (r *runState) subscribe(done <-chan struct{}) error {
	r.linkCh = make(chan netlink.LinkUpdate, 16)
	// The library reports every message it drops through the callback and
	// reads on; a subscription has ended only when its channel is closed.
	// Most reports are harmless: a subscriber that lists what exists
	// (ListExisting, as the roles watch does) sends its dump request to
	// its multicast groups, so every other socket of the namespace in
	// those groups receives that request from a user-space port id
	// ("Wrong sender portid"). Ending the service on such a report would
	// leave the gizmo without its default router for the restart pause.
	r.subErr = &lastError{}
	if err := netlink.LinkSubscribeWithOptions(r.linkCh, done, netlink.LinkSubscribeOptions{ErrorCallback: r.netlinkDropped}); err != nil {
		return fmt.Errorf("wan: subscribe to links: %w", err)
	}
	return r.subscribeAddrs(true)
}

// netlinkDropped counts a message a subscription dropped, and keeps the
// error for the message should the subscription end.
func (r *runState) netlinkDropped(err error) {
	r.subErr.set(err)
	r.stats.Add(func(st *Stats) { st.NetlinkDropped++ })
	r.log.Debug("wan: netlink message dropped", "err", err)
}

// addrBufferSize is the address subscription's socket buffer: room for
// some thousand notifications, the burst of an interface's addresses
// coming or going at once, before the kernel drops them.
const addrBufferSize = 1 << 20

// subscribeAddrs starts a new address subscription; with listExisting
// the kernel sends the addresses there are as notifications.
func (r *runState) subscribeAddrs(listExisting bool) error {
	r.addrCh, r.addrsDone = make(chan netlink.AddrUpdate, 64), make(chan struct{})
	size := addrBufferSize
	if r.cfg.addrBufferSize > 0 {
		size = r.cfg.addrBufferSize
	}
	err := netlink.AddrSubscribeWithOptions(r.addrCh, r.addrsDone, netlink.AddrSubscribeOptions{
		ErrorCallback: r.netlinkDropped, ListExisting: listExisting,
		ReceiveBufferSize: size, ReceiveBufferForceSize: true,
	})
	if err != nil {
		r.endAddrs()
		return fmt.Errorf("wan: subscribe to addresses: %w", err)
	}
	return nil
}

// endAddrs ends the address subscription in force, if there is one.
func (r *runState) endAddrs() {
	if r.addrsDone != nil {
		close(r.addrsDone)
		r.addrsDone = nil
	}
}

// resubscribeAddrs replaces an address subscription that ended while the
// service runs. The kernel ends it when notifications come faster than
// they are read and the socket's buffer overflows (ENOBUFS): those
// notifications are lost. Restarting the service instead would close the
// RA socket in the middle of whatever caused the burst. The new
// subscription starts first, then the uplink's addresses are read whole,
// so that no change after the read is missed and none lost in the
// overflow stays in the view.
func (r *runState) resubscribeAddrs() error {
	r.log.Warn("wan: address notifications lost; reading the addresses again", "err", r.subErr.get())
	r.stats.Add(func(st *Stats) { st.AddrResyncs++ })
	r.endAddrs()
	if err := r.subscribeAddrs(false); err != nil {
		return err
	}
	addrs, err := netlink.AddrList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: r.ifi.Index}}, netlink.FAMILY_V6)
	if err != nil {
		return fmt.Errorf("wan: addresses of %s: %w", r.cfg.Interface, err)
	}
	r.o.addrs = map[netip.Prefix]bool{}
	for _, a := range addrs {
		r.o.addr(netlink.AddrUpdate{LinkAddress: *a.IPNet, LinkIndex: a.LinkIndex, NewAddr: true, Flags: a.Flags})
	}
	r.publish()
	return nil
}

// addrsChanged takes the address notification u (ok false: the
// subscription ended) and the ones queued behind it, and publishes the
// view once: an interface's addresses come and go in bursts, and each
// publish costs the daemon a replan.
func (r *runState) addrsChanged(u netlink.AddrUpdate, ok bool) error {
	changed := false
	for {
		if !ok {
			// resubscribeAddrs publishes what it read.
			return r.resubscribeAddrs()
		}
		if u.LinkIndex == r.ifi.Index && r.o.addr(u) {
			r.stats.Add(func(st *Stats) { st.AddrChanges++ })
			changed = true
		}
		if len(r.addrCh) == 0 {
			break
		}
		u, ok = <-r.addrCh
	}
	if changed {
		r.publish()
	}
	return nil
}

// observeLink starts the view from the link as it is now.
func (r *runState) observeLink() error {
	r.o = &observer{
		up:    newUpstream(),
		addrs: map[netip.Prefix]bool{},
		view:  Upstream{Interface: r.cfg.Interface},
	}
	r.o.up.linkMTU = r.ifi.MTU
	// Read the link again now that the subscription runs: the one from
	// before LinkSetUp is stale.
	link, err := netlink.LinkByName(r.cfg.Interface)
	if err != nil {
		return fmt.Errorf("wan: %w", err)
	}
	r.o.view.Up = isUp(link)
	return nil
}

// loop handles events until ctx is done or an event source fails.
func (r *runState) loop(ctx context.Context) error {
	r.rsLeft = maxRtrSolicitations
	r.rsTimer = time.NewTimer(0)
	defer r.rsTimer.Stop()
	r.expiry = time.NewTimer(time.Hour)
	defer r.expiry.Stop()
	r.publish()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-r.raErr:
			// Without the NDP socket the view would silently go stale;
			// let the daemon restart the service instead.
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("wan: read RAs on %s: %w", r.cfg.Interface, err)
		case <-r.rsTimer.C:
			r.solicitIfDue()
		case p := <-r.raCh:
			// The RAs already read are handled together and the daemon
			// sees the view once: a burst (a flood, many routers at a
			// link-up) costs one replan, not one per RA.
			accepted := r.heardRA(p)
			for n := len(r.raCh); n > 0; n-- {
				accepted = r.heardRA(<-r.raCh) || accepted
			}
			if accepted {
				r.publish()
			}
		case <-r.expiry.C:
			r.publish()
		case u, ok := <-r.linkCh:
			if !ok {
				return fmt.Errorf("wan: link subscription on %s ended: %v", r.cfg.Interface, r.subErr.get())
			}
			r.linkChanged(u)
		case u, ok := <-r.addrCh:
			if err := r.addrsChanged(u, ok); err != nil {
				return err
			}
		case <-r.plans.C():
			r.applyPlan()
		}
	}
}

// publish hands the daemon the current view and schedules the next
// expiry.
func (r *runState) publish() {
	now := time.Now()
	r.o.up.expire(now)
	r.o.up.fill(&r.o.view, now)
	r.o.view.Addrs = slices.SortedFunc(maps.Keys(r.o.addrs), func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	v := cloneUpstream(r.o.view)
	full, clamped, sizes := maps.Clone(r.o.up.full), maps.Clone(r.o.up.clamped), r.o.up.sizes()
	r.stats.Add(func(st *Stats) {
		st.Upstream = cloneUpstream(v)
		st.UpstreamFull, st.LifetimesClamped, st.UpstreamEntries = full, clamped, sizes
	})
	r.cfg.OnUpstream(v)
	r.expiry.Reset(max(time.Until(r.o.up.nextExpiry(now)), 0))
}

// solicitIfDue sends the next Router Solicitation while the link is up
// and no router has answered (RFC 4861 §6.3.7).
func (r *runState) solicitIfDue() {
	if r.rsLeft == 0 || !r.o.view.Up {
		return
	}
	if r.solicit(r.conn, r.ifi) {
		r.rsLeft--
		r.rsTimer.Reset(rtrSolicitationInterval)
	} else {
		// Right after link-up the link-local address may not be there
		// yet (EADDRNOTAVAIL); try again soon.
		r.rsTimer.Reset(rsRetry)
	}
}

// heardRA validates an RA from the upstream and merges it into the view;
// it reports whether the RA was accepted.
func (r *runState) heardRA(p raPacket) bool {
	ra, err := parseRA(p.b, p.src, p.hopLimit)
	if err != nil {
		r.stats.Add(func(st *Stats) { countInvalid(st, reasonOf(err)) })
		r.log.Debug("wan: dropped RA", "from", p.src, "err", err)
		return false
	}
	if fromSelf(ra, r.ifi.HardwareAddr) {
		r.stats.Add(func(st *Stats) { countInvalid(st, raOwn) })
		r.log.Debug("wan: dropped own RA", "from", p.src)
		return false
	}
	r.stats.Add(func(st *Stats) { st.RAs++ })
	r.log.Debug("wan: RA", "from", p.src, "router_lifetime", ra.RouterLifetime, "options", len(ra.Options))
	if ra.RouterLifetime > 0 && r.rsLeft < maxRtrSolicitations {
		// RFC 4861 §6.3.7: stop soliciting once a router answered. An RA
		// with router lifetime 0 (e.g. a PREF64 or RIO-only announcer) is
		// not the default router we are asking for. At least one RS goes
		// out after each link-up, so that a flap always re-asks the
		// upstream.
		r.rsLeft = 0
	}
	for _, e := range r.o.up.apply(ra, p.src, p.at) {
		r.stats.Add(func(st *Stats) { countInvalid(st, reasonOf(e)) })
		r.log.Info("wan: skipped RA option", "from", p.src, "err", e)
	}
	return true
}

// linkChanged follows the uplink's carrier and MTU.
func (r *runState) linkChanged(u netlink.LinkUpdate) {
	if u.Attrs().Index != r.ifi.Index {
		return
	}
	up := isUp(u.Link)
	if mtu := u.Attrs().MTU; mtu > 0 {
		r.o.up.linkMTU = mtu
	}
	if up == r.o.view.Up {
		return
	}
	r.o.view.Up = up
	if up {
		r.stats.Add(func(st *Stats) { st.LinkUps++ })
		r.log.Info("wan: link up")
		// A flap keeps what we learned (lifetimes still apply); ask the
		// router again at once (RFC 4861 §6.3.7) and let DHCPv4 re-verify
		// its lease.
		r.rsLeft = maxRtrSolicitations
		r.rsTimer.Reset(0)
		select {
		case r.linkUp <- struct{}{}:
		default:
		}
	} else {
		r.stats.Add(func(st *Stats) { st.LinkDowns++ })
		r.log.Warn("wan: link down")
	}
	r.publish()
}

// lastError keeps the last error a netlink subscription reported, for the
// message when the subscription ends.
type lastError struct {
	mu  sync.Mutex
	err error
}

func (l *lastError) set(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

func (l *lastError) get() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
