package wan

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// A netlink subscriber that lists what exists sends its dump request to its
// multicast groups, so the WAN service's own link and address subscriptions
// receive a request from a user-space port id. The service must count and
// drop it and keep observing the link: the roles watch does exactly this
// when the gizmo restarts its services after a roles change, and a WAN
// service that stopped on it left the LAN without a default router.
func TestForeignNetlinkRequests(t *testing.T) {
	inNamespace(t, "wannl", "TestForeignNetlinkChild", "netlink")
}

// inNamespace runs the test child, with role in envRole, in a namespace of
// its own named after name.
func inNamespace(t *testing.T, name, child, role string) {
	if os.Getenv(envRole) != "" {
		t.Skip("parent test")
	}
	testns.NeedRoot(t)
	ns := testns.New(t, name)
	out := testns.RunChild(t, ns, child, envRole+"="+role)
	t.Logf("child:\n%s", out)
}

// vethUp adds a veth pair named name and peer, and sets up peer and the
// links named in up.
func vethUp(t *testing.T, name, peer string, up ...string) {
	t.Helper()
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}); err != nil {
		t.Fatal(err)
	}
	for _, n := range append([]string{peer}, up...) {
		l, err := netlink.LinkByName(n)
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("set %s up: %v", n, err)
		}
	}
}

// TestForeignNetlinkChild runs in the namespace TestForeignNetlinkRequests
// made, on a veth uplink.
func TestForeignNetlinkChild(t *testing.T) {
	if os.Getenv(envRole) != "netlink" {
		t.Skip("child of TestForeignNetlinkRequests")
	}
	vethUp(t, "uplink0", "isp0")
	ups := &waiter[Upstream]{t: t, ch: make(chan Upstream, 1024)}
	s, err := New(Config{
		Interface: "uplink0", StateDir: t.TempDir(), NoIPv4: true,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnUpstream: func(u Upstream) { ups.ch <- u },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	defer func() {
		cancel()
		if stopped {
			return
		}
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	ups.until("the uplink up", func(u Upstream) bool { return u.Up })

	// Another subscriber lists the links and addresses, as the roles
	// watch and any `ip monitor`-like tool may.
	stop := make(chan struct{})
	defer close(stop)
	if err := netlink.LinkSubscribeWithOptions(make(chan netlink.LinkUpdate, 64), stop, netlink.LinkSubscribeOptions{ListExisting: true}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrSubscribeWithOptions(make(chan netlink.AddrUpdate, 64), stop, netlink.AddrSubscribeOptions{ListExisting: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the foreign dump requests counted as dropped", func() bool { return s.Stats().NetlinkDropped >= 2 })

	// The service still observes the link: a carrier change after the
	// foreign requests reaches the view.
	link, err := netlink.LinkByName("uplink0")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetDown(link); err != nil {
		t.Fatal(err)
	}
	ups.until("the uplink down", func(u Upstream) bool { return !u.Up })
	select {
	case err := <-done:
		stopped = true
		t.Fatalf("the service stopped after another subscriber's requests: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
}

// When address notifications come faster than the service reads them, the
// kernel overflows the subscription's buffer and ends it (ENOBUFS). The
// service must read the addresses again and keep running: a restart would
// close the RA socket in the middle of the burst.
func TestAddressNotificationsLost(t *testing.T) {
	inNamespace(t, "wanovf", "TestAddressNotificationsLostChild", "overflow")
}

// TestAddressNotificationsLostChild runs in the namespace
// TestAddressNotificationsLost made. The test holds the service's loop in
// its OnUpstream while it adds and removes addresses, so that the
// subscription's small buffer overflows.
func TestAddressNotificationsLostChild(t *testing.T) {
	if os.Getenv(envRole) != "overflow" {
		t.Skip("child of TestAddressNotificationsLost")
	}
	vethUp(t, "uplink0", "isp0")
	vethUp(t, "noise0", "noise1", "noise0")
	uplink, noise := linkByName(t, "uplink0"), linkByName(t, "noise0")
	stale, fresh := netip.MustParsePrefix("2001:db8:1::1/64"), netip.MustParsePrefix("2001:db8:2::1/64")
	addAddr(t, uplink, stale)
	h := runHeld(t, 4096)
	h.ups.until("the uplink's address", func(u Upstream) bool { return slices.Contains(u.Addrs, stale) })

	// The loop is held in OnUpstream while the uplink's addresses change
	// among a burst of other addresses.
	trigger := netip.MustParsePrefix("2001:db8:3::1/64")
	h.holdAfter(t, func() { addAddr(t, uplink, trigger) }, func() {
		for i := range 2000 {
			addAddr(t, noise, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 14: byte(i >> 8), 15: byte(i)}), 64))
		}
		if err := netlink.AddrDel(uplink, &netlink.Addr{IPNet: &net.IPNet{IP: stale.Addr().AsSlice(), Mask: net.CIDRMask(64, 128)}}); err != nil {
			t.Fatal(err)
		}
		addAddr(t, uplink, fresh)
	})

	u := h.ups.until("the uplink's addresses read again", func(u Upstream) bool {
		return slices.Contains(u.Addrs, fresh) && slices.Contains(u.Addrs, trigger) && !slices.Contains(u.Addrs, stale)
	})
	if st := h.s.Stats(); st.AddrResyncs == 0 {
		t.Errorf("no resync counted (netlink dropped %d): the buffer did not overflow, so the test proved nothing", st.NetlinkDropped)
	}
	t.Logf("addresses %v, resyncs %d", u.Addrs, h.s.Stats().AddrResyncs)
	select {
	case err := <-h.done:
		h.done <- err // for the clean-up, which waits for Run
		t.Fatalf("the service stopped after losing address notifications: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
}

// linkByName is the link named name.
func linkByName(t *testing.T, name string) netlink.Link {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// addAddr adds p to l, without duplicate address detection.
func addAddr(t *testing.T, l netlink.Link, p netip.Prefix) {
	t.Helper()
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
	if err := netlink.AddrAdd(l, a); err != nil {
		t.Fatalf("add %s: %v", p, err)
	}
}

// heldLoop is a WAN service on uplink0 whose loop a test can hold in
// OnUpstream, to let events pile up behind it.
type heldLoop struct {
	s    *Service
	ups  *waiter[Upstream]
	done chan error // Run's result
	hold sync.Mutex
	held chan struct{} // the loop entered OnUpstream
}

// runHeld starts the service, with an address subscription buffer of
// addrBuffer bytes (0: the default), until the test ends.
func runHeld(t *testing.T, addrBuffer int) *heldLoop {
	t.Helper()
	h := &heldLoop{ups: &waiter[Upstream]{t: t, ch: make(chan Upstream, 1024)}, done: make(chan error, 1), held: make(chan struct{}, 1)}
	s, err := New(Config{
		Interface: "uplink0", StateDir: t.TempDir(), NoIPv4: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		OnUpstream: func(u Upstream) {
			select {
			case h.held <- struct{}{}:
			default:
			}
			h.hold.Lock()
			defer h.hold.Unlock()
			h.ups.ch <- u
		},
		addrBufferSize: addrBuffer,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// holdAfter holds the loop in the OnUpstream that change causes, and lets
// it go when during returns.
func (h *heldLoop) holdAfter(t *testing.T, change, during func()) {
	t.Helper()
	h.hold.Lock()
	defer h.hold.Unlock()
	for len(h.held) > 0 {
		<-h.held
	}
	change()
	select {
	case <-h.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not publish the change")
	}
	during()
}

// The addresses of a burst that arrived while the service was busy are
// published together: each publish costs the daemon a replan.
func TestAddressBurstIsOnePublish(t *testing.T) {
	inNamespace(t, "wanburst", "TestAddressBurstIsOnePublishChild", "burst")
}

// TestAddressBurstIsOnePublishChild runs in the namespace
// TestAddressBurstIsOnePublish made. It holds the service's loop in its
// OnUpstream while it adds addresses to the uplink.
func TestAddressBurstIsOnePublishChild(t *testing.T) {
	if os.Getenv(envRole) != "burst" {
		t.Skip("child of TestAddressBurstIsOnePublish")
	}
	vethUp(t, "uplink0", "isp0")
	uplink := linkByName(t, "uplink0")
	first := netip.MustParsePrefix("2001:db8:1::1/64")
	addAddr(t, uplink, first)
	h := runHeld(t, 0)
	h.ups.until("the first address", func(u Upstream) bool { return slices.Contains(u.Addrs, first) })

	var added []netip.Prefix
	trigger := netip.MustParsePrefix("2001:db8:2::1/64")
	h.holdAfter(t, func() { addAddr(t, uplink, trigger) }, func() {
		for i := range 20 {
			p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 3, 15: byte(i + 1)}), 64)
			addAddr(t, uplink, p)
			added = append(added, p)
		}
		// The notifications are in the kernel's socket already; give the
		// library's reader a moment to queue them for the loop.
		time.Sleep(500 * time.Millisecond)
	})
	u := h.ups.until("the burst", func(u Upstream) bool { return slices.Contains(u.Addrs, added[0]) })
	for _, p := range added {
		if !slices.Contains(u.Addrs, p) {
			t.Fatalf("the first view with the burst's first address lacks %s: the burst took more than one publish (%d addresses)", p, len(u.Addrs))
		}
	}
}

// The Router Advertisements that arrived while the service was busy are
// published together, as addresses are.
func TestRABurstIsOnePublish(t *testing.T) {
	inNamespace(t, "wanraburst", "TestRABurstIsOnePublishChild", "raburst")
}

// TestRABurstIsOnePublishChild runs in the namespace
// TestRABurstIsOnePublish made. It holds the service's loop in its
// OnUpstream while isp0 advertises one prefix per RA.
func TestRABurstIsOnePublishChild(t *testing.T) {
	if os.Getenv(envRole) != "raburst" {
		t.Skip("child of TestRABurstIsOnePublish")
	}
	vethUp(t, "uplink0", "isp0", "uplink0")
	addAddr(t, linkByName(t, "isp0"), netip.MustParsePrefix("fe80::1/64"))
	ifi, err := net.InterfaceByName("isp0")
	if err != nil {
		t.Fatal(err)
	}
	router, _, err := ndp.Listen(ifi, ndp.Addr("fe80::1"))
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	advertise := func(p netip.Prefix) {
		t.Helper()
		ra := &ndp.RouterAdvertisement{CurrentHopLimit: 64, RouterLifetime: 30 * time.Minute, Options: []ndp.Option{
			&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, ValidLifetime: time.Hour, PreferredLifetime: time.Hour, Prefix: p.Addr()},
		}}
		if err := router.WriteTo(ra, nil, netip.IPv6LinkLocalAllNodes()); err != nil {
			t.Fatal(err)
		}
	}
	has := func(u Upstream, p netip.Prefix) bool {
		return slices.ContainsFunc(u.Prefixes, func(x Prefix) bool { return x.Prefix == p })
	}
	h := runHeld(t, 0)
	first := netip.MustParsePrefix("2001:db8:1::/64")
	// The service listens once uplink0 has its link-local address.
	deadline := time.Now().Add(30 * time.Second)
	for seen := false; !seen; {
		if time.Now().After(deadline) {
			t.Fatal("the service took no RA")
		}
		advertise(first)
		select {
		case u := <-h.ups.ch:
			seen = has(u, first)
		case <-time.After(200 * time.Millisecond):
		}
	}

	var burst []netip.Prefix
	h.holdAfter(t, func() { advertise(netip.MustParsePrefix("2001:db8:2::/64")) }, func() {
		for i := range 10 {
			p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 3, 7: byte(i + 1)}), 64)
			advertise(p)
			burst = append(burst, p)
		}
		// The RAs are in the service's socket; give its reader a moment
		// to queue them for the loop.
		time.Sleep(500 * time.Millisecond)
	})
	u := h.ups.until("the burst", func(u Upstream) bool { return has(u, burst[0]) })
	for _, p := range burst {
		if !has(u, p) {
			t.Fatalf("the first view with the burst's first prefix lacks %s: the burst took more than one publish (%d prefixes)", p, len(u.Prefixes))
		}
	}
}
