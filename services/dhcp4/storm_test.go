package dhcp4_test

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"

	"codeberg.org/monostack/gizmo/internal/syncbuf"
	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/internal/testrun"
	"codeberg.org/monostack/gizmo/services/dhcp4"
	"codeberg.org/monostack/gizmo/services/dhcp4/dhcp4load"
)

// The storm runs over loopback in a namespace of its own: the server on
// 127.16.0.1, the simulated relay on 127.16.0.2, the pool in 127.16.0.0/16
// (a /24 from the documentation ranges could not hold 10,000 clients, and
// loopback addresses never leave the namespace).
var (
	stormServer = netip.MustParsePrefix("127.16.0.1/16")
	stormRelay  = netip.MustParseAddr("127.16.0.2")
)

func stormPlan() dhcp4.Plan {
	return dhcp4.Plan{
		Server:    stormServer,
		PoolStart: netip.MustParseAddr("127.16.0.10"),
		PoolEnd:   netip.MustParseAddr("127.16.255.254"),
		Router:    stormServer.Addr(),
		DNS:       []netip.Addr{stormServer.Addr()},
		Domain:    "home.arpa",
	}
}

// testLogger logs warnings and errors into the test output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// relay is the socket of the relay agent the load generator's clients
// speak through.
func relay(t *testing.T, ns string) net.PacketConn {
	t.Helper()
	return testns.ListenPacket(t, ns, "udp4", netip.AddrPortFrom(stormRelay, 67).String())
}

// TestStorm: 10,000 clients at once lose no lease, get distinct addresses,
// a client arriving in the middle is served within its normal retries, and
// a restarted server still has every lease.
func TestStorm(t *testing.T) {
	// Installs the lab's Debian packages when it can, else skips naming them.
	depstest.Require(t, deps.Lab)
	const clients = 10000
	dir := t.TempDir()
	ns := testns.New(t, "d4-storm")

	ctx := t.Context()
	conn := testns.ListenPacket(t, ns, "udp4", netip.AddrPortFrom(stormServer.Addr(), 67).String())
	svc, err := dhcp4.New(dhcp4.Config{Conn: conn, StateDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	svc.Update(stormPlan())
	stop := testrun.Start(t, "Run", svc.Run)

	rc := relay(t, ns)
	server := netip.AddrPortFrom(stormServer.Addr(), 67)
	type result struct {
		r   dhcp4load.Result
		err error
	}
	late := make(chan result, 1)
	go func() {
		// The latecomer joins once the storm is under way. It has its own
		// relay socket, so it must bind another loopback address.
		time.Sleep(100 * time.Millisecond)
		var lc net.PacketConn
		err := testns.Do(ns, func() (err error) {
			lc, err = net.ListenPacket("udp4", "127.16.0.3:67")
			return err
		})
		if err != nil {
			late <- result{err: err}
			return
		}
		defer lc.Close()
		// Patient retries: this checks that a newcomer is not starved by
		// the storm, not how fast it is served (that is the benchmark's).
		r, err := dhcp4load.Run(ctx, dhcp4load.Config{Conn: lc, Relay: netip.MustParseAddr("127.16.0.3"), Server: server, Clients: 1, Tag: 0xee, Retries: 10})
		late <- result{r, err}
	}()
	res, err := dhcp4load.Run(ctx, dhcp4load.Config{Conn: rc, Relay: stormRelay, Server: server, Clients: clients, Window: 1024, Tag: 0x42})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("storm: %v", res)
	if res.Leased != clients || res.Failed != 0 || res.Duplicates != 0 {
		t.Errorf("storm: %v; want every client leased, none failed, no duplicate", res)
	}
	l := <-late
	if l.err != nil || l.r.Leased != 1 {
		t.Errorf("a client arriving during the storm: %v, %v", l.r, l.err)
	}

	got := map[string]netip.Addr{}
	for _, le := range svc.Leases() {
		got[le.MAC] = le.IP
	}
	for mac, ip := range res.Leases {
		if got[mac] != ip {
			t.Fatalf("%s was ACKed %s, the server has %v", mac, ip, got[mac])
		}
	}
	st := svc.Stats()
	if st.Acks < clients+1 || st.Malformed != 0 || st.PersistErrors != 0 {
		t.Errorf("stats %+v", st)
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Every ACKed lease was on disk before its ACK: a new server has them.
	again, err := dhcp4.New(dhcp4.Config{Conn: conn, StateDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	again.Update(stormPlan())
	after := map[string]netip.Addr{}
	for _, le := range again.Leases() {
		after[le.MAC] = le.IP
	}
	for mac, ip := range res.Leases {
		if after[mac] != ip {
			t.Fatalf("after restart %s has %v, was ACKed %s", mac, after[mac], ip)
		}
	}
	if len(after) != clients+1 {
		t.Errorf("%d leases after restart, want %d", len(after), clients+1)
	}
}

// TestExhaustedSlash29: a /29 holds four clients here (the server is .1,
// the relay .2); the fifth and later get no offer, the counter says so,
// and the log has one line about it, not one per request.
func TestExhaustedSlash29(t *testing.T) {
	// Installs the lab's Debian packages when it can, else skips naming them.
	depstest.Require(t, deps.Lab)
	ns := testns.New(t, "d4-x29")
	conn := testns.ListenPacket(t, ns, "udp4", "127.16.0.1:67")
	var logs syncbuf.Buffer
	svc, err := dhcp4.New(dhcp4.Config{Conn: conn, StateDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p := stormPlan()
	p.Server = netip.MustParsePrefix("127.16.0.1/29")
	p.PoolStart, p.PoolEnd = netip.MustParseAddr("127.16.0.3"), netip.MustParseAddr("127.16.0.6")
	svc.Update(p)
	testrun.Start(t, "Run", svc.Run)

	res, err := dhcp4load.Run(t.Context(), dhcp4load.Config{
		Conn: relay(t, ns), Relay: stormRelay, Server: netip.MustParseAddrPort("127.16.0.1:67"),
		Clients: 8, Timeout: 100 * time.Millisecond, Retries: 2, Tag: 0x29,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Leased != 4 || res.Failed != 4 || res.Duplicates != 0 {
		t.Errorf("%v; want 4 leased, 4 without an offer", res)
	}
	for _, ip := range res.Leases {
		if !p.Subnet().Contains(ip) || ip == p.Server.Addr() || ip == stormRelay {
			t.Errorf("leased %s", ip)
		}
	}
	st := svc.Stats()
	if st.PoolExhausted < 4 || st.Leases != 4 {
		t.Errorf("stats %+v: want PoolExhausted >= 4 and 4 leases", st)
	}
	if n := strings.Count(logs.String(), "pool exhausted"); n != 1 {
		t.Errorf("%d log lines about the exhausted pool, want 1:\n%s", n, logs.String())
	}
}
