package wan

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
	"github.com/vishvananda/netlink"
)

// A netlink subscriber that lists what exists sends its dump request to its
// multicast groups, so the WAN service's own link and address subscriptions
// receive a request from a user-space port id. The service must count and
// drop it and keep observing the link: the roles watch does exactly this
// when the gizmo restarts its services after a roles change, and a WAN
// service that stopped on it left the LAN without a default router.
func TestForeignNetlinkRequests(t *testing.T) {
	if os.Getenv(envRole) != "" {
		t.Skip("parent test")
	}
	testns.NeedRoot(t)
	ns := testns.New(t, "wannl")
	out := testns.RunChild(t, ns, "TestForeignNetlinkChild", envRole+"=netlink")
	t.Logf("child:\n%s", out)
}

// TestForeignNetlinkChild runs in the namespace TestForeignNetlinkRequests
// made, on a veth uplink.
func TestForeignNetlinkChild(t *testing.T) {
	if os.Getenv(envRole) != "netlink" {
		t.Skip("child of TestForeignNetlinkRequests")
	}
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink0"}, PeerName: "isp0"}); err != nil {
		t.Fatal(err)
	}
	if peer, err := netlink.LinkByName("isp0"); err != nil || netlink.LinkSetUp(peer) != nil {
		t.Fatalf("the uplink's peer: %v", err)
	}
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
