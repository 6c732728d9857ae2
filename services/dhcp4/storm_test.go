package dhcp4_test

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/services/dhcp4"
	"codeberg.org/monostack/gizmo/services/dhcp4/dhcp4load"
	"codeberg.org/monostack/gizmo/services/dhcp4/internal/nstest"
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

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// testLogger logs warnings and errors into the test output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func relay(t *testing.T, ns string) net.PacketConn {
	t.Helper()
	var conn net.PacketConn
	if err := nstest.Do(ns, func() (err error) {
		conn, err = net.ListenPacket("udp4", netip.AddrPortFrom(stormRelay, 67).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestStorm: 10,000 clients at once lose no lease, get distinct addresses,
// a client arriving in the middle is served within its normal retries, and
// a restarted server still has every lease.
func TestStorm(t *testing.T) {
	needRoot(t)
	const clients = 10000
	dir := t.TempDir()
	ns, err := nstest.Create("storm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nstest.Delete(ns) })

	ctx, cancel := context.WithCancel(context.Background())
	var conn net.PacketConn
	if err := nstest.Do(ns, func() (err error) {
		conn, err = net.ListenPacket("udp4", netip.AddrPortFrom(stormServer.Addr(), 67).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	svc, err := dhcp4.New(dhcp4.Config{Conn: conn, StateDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	svc.Update(stormPlan())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()

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
		err := nstest.Do(ns, func() (err error) {
			lc, err = net.ListenPacket("udp4", "127.16.0.3:67")
			return err
		})
		if err != nil {
			late <- result{err: err}
			return
		}
		defer lc.Close()
		r, err := dhcp4load.Run(ctx, dhcp4load.Config{Conn: lc, Relay: netip.MustParseAddr("127.16.0.3"), Server: server, Clients: 1, Tag: 0xee})
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

	cancel()
	if err := <-done; err != nil {
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
