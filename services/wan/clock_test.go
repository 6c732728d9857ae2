package wan

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/persist"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// RFC 2132 §8.3: option 42 lists NTP servers; addresses that cannot be one
// are dropped.
func TestLeaseNTPServers(t *testing.T) {
	l, err := leaseFromACK(ack(t, dhcpv4.WithOption(dhcpv4.OptNTPServers(
		net.IPv4(192, 0, 2, 1), net.IPv4zero, net.IPv4bcast, net.IPv4(224, 0, 1, 1), net.IPv4(192, 0, 2, 123)))), t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.123")}
	if !slices.Equal(l.NTP, want) {
		t.Errorf("NTP %v, want %v", l.NTP, want)
	}
	// The service reports them with the lease, in a copy of its own.
	p := l.public()
	if !slices.Equal(p.NTP, want) {
		t.Errorf("reported NTP %v, want %v", p.NTP, want)
	}
	p.NTP[0] = netip.MustParseAddr("192.0.2.99")
	if l.NTP[0] != want[0] {
		t.Error("the reported lease shares its NTP servers with the service's")
	}
	if l, _ := leaseFromACK(ack(t), t0); len(l.NTP) != 0 {
		t.Errorf("NTP %v from an ACK without option 42", l.NTP)
	}
}

// A stored lease is anchored on the monotonic clock when loaded: its
// deadlines keep their distance from now whatever the wall clock does
// later.
func TestStoredLeaseIsAnchoredOnTheMonotonicClock(t *testing.T) {
	dir := t.TempDir()
	received := time.Now().Add(-10 * time.Minute).Round(0)
	if err := persist.WriteJSON(filepath.Join(dir, v4LeaseFile), storedV4{ACK: ack(t).ToBytes(), Received: received}); err != nil {
		t.Fatal(err)
	}
	c := &dhcp4Client{stateDir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	now := time.Now()
	l := c.loadLease(now)
	if l == nil {
		t.Fatal("stored lease not loaded")
	}
	for name, d := range map[string]time.Time{"T1": l.T1, "T2": l.T2, "expires": l.Expires} {
		if !strings.Contains(d.String(), "m=") {
			t.Errorf("%s %v carries no monotonic reading", name, d)
		}
	}
	if got := l.Expires.Round(0).Sub(received); got < time.Hour-time.Second || got > time.Hour+time.Second {
		t.Errorf("expires %v after receipt, want the lease time 1h", got)
	}
	// An expired stored lease is not loaded at all.
	persist.WriteJSON(filepath.Join(dir, v4LeaseFile), storedV4{ACK: ack(t).ToBytes(), Received: time.Now().Add(-2 * time.Hour).Round(0)})
	if l := c.loadLease(time.Now()); l != nil {
		t.Errorf("expired stored lease loaded: %+v", l)
	}
}

const envClockChild = "GZT_WAN_CLOCK"

// A restart with a stored lease whose INIT-REBOOT nobody answers: with a
// synchronised clock the lease is used until it ends (RFC 2131 §3.2); with
// an unsynchronised one, whose "until it ends" means nothing, it is not
// installed, and the client goes on to DISCOVER.
func TestStoredLeaseWithoutAnswer(t *testing.T) {
	if os.Getenv(envClockChild) != "" {
		t.Skip("parent test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, trusted := range []string{"trusted", "untrusted"} {
		t.Run(trusted, func(t *testing.T) {
			t.Parallel() // each waits out the INIT-REBOOT retransmissions
			ns := testns.New(t, "wanclk")
			// A link with nobody on the other end.
			testns.IP(t, "-n", ns, "link", "add", "uplink0", "type", "veth", "peer", "name", "isp0")
			testns.IP(t, "-n", ns, "link", "set", "uplink0", "up")
			testns.IP(t, "-n", ns, "link", "set", "isp0", "up")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := testns.CommandContext(ctx, ns, os.Args[0], "-test.run=^TestStoredLeaseChild$", "-test.v")
			cmd.Env = append(os.Environ(), envClockChild+"="+trusted)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestStoredLeaseChild") {
				t.Fatalf("child: %v\n%s", err, out)
			}
		})
	}
}

// TestPeerNTPChild runs in the client namespace of TestUpstreamPeers: the
// DHCPv4 client asks Kea for option 42 in DORA and in its renewal.
func TestPeerNTPChild(t *testing.T) {
	if os.Getenv(envRole) != "ntp" {
		t.Skip("child of TestUpstreamPeers")
	}
	var stats counters
	c := &dhcp4Client{
		ifname: "uplink0", stateDir: t.TempDir(), stats: &stats,
		log:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		emit: func(*IPv4Lease) {},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	l, err := c.discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.NTP, want) {
		t.Errorf("DORA: NTP %v, want %v", l.NTP, want)
	}
	c.bind(l)
	defer c.drop()
	nl, err := c.verify(ctx, l, renewing)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(nl.NTP, want) {
		t.Errorf("renewal: NTP %v, want %v", nl.NTP, want)
	}
	nl, err = c.verify(ctx, nl, initReboot)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(nl.NTP, want) {
		t.Errorf("INIT-REBOOT: NTP %v, want %v", nl.NTP, want)
	}
}

// TestStoredLeaseChild runs the DHCPv4 client in the namespace of
// TestStoredLeaseWithoutAnswer.
func TestStoredLeaseChild(t *testing.T) {
	mode := os.Getenv(envClockChild)
	if mode == "" {
		t.Skip("child of TestStoredLeaseWithoutAnswer")
	}
	dir := t.TempDir()
	// A lease received five minutes ago, valid for an hour by the clock.
	if err := persist.WriteJSON(filepath.Join(dir, v4LeaseFile), storedV4{ACK: ack(t).ToBytes(), Received: time.Now().Add(-5 * time.Minute).Round(0)}); err != nil {
		t.Fatal(err)
	}
	var stats counters
	emitted := make(chan *IPv4Lease, 8)
	c := &dhcp4Client{
		ifname: "uplink0", stateDir: dir, stats: &stats,
		log:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		emit:         func(l *IPv4Lease) { emitted <- l },
		clockTrusted: func() bool { return mode == "trusted" },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.run(ctx)
		close(done)
	}()
	// The INIT-REBOOT exchange times out after its retries; then the
	// client either binds the stored lease or starts discovering.
	deadline := time.After(45 * time.Second)
	var bound *IPv4Lease
wait:
	for {
		select {
		case l := <-emitted:
			bound = l
			break wait
		case <-time.After(100 * time.Millisecond):
			if stats.Snapshot().DHCPv4Discovers > 0 {
				break wait
			}
		case <-deadline:
			t.Fatalf("no decision; stats %+v", stats.Snapshot())
		}
	}
	cancel()
	<-done
	link, err := netlink.LinkByName("uplink0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := netlink.AddrList(link, unix.AF_INET)
	switch mode {
	case "trusted":
		if bound == nil || bound.Addr != netip.MustParsePrefix("192.0.2.100/24") {
			t.Errorf("RFC 2131 §3.2: a synchronised clock keeps the unconfirmed lease; reported %+v", bound)
		}
		if len(addrs) != 1 {
			t.Errorf("addresses %v, want the stored lease's", addrs)
		}
	default:
		if bound != nil {
			t.Errorf("an unsynchronised clock used the unconfirmed stored lease: %+v", bound)
		}
		if len(addrs) != 0 {
			t.Errorf("addresses %v installed without an ACK", addrs)
		}
		if st := stats.Snapshot(); st.DHCPv4Rebinds != 1 || st.DHCPv4Discovers == 0 {
			t.Errorf("stats %+v, want one INIT-REBOOT, then DISCOVER", st)
		}
	}
}
