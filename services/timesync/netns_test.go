package timesync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/ntp"
	"github.com/vishvananda/netns"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// The real-peer test, three namespaces in a row:
//
//	upstream (chronyd, local stratum 8) ─ gizmo (this service) ─ lan (chronyd -Q, beevik/ntp)
//
// The service runs in a child process started with `ip netns exec`, with a
// fake clock three hours slow: it must step that clock to chrony's (the
// host's) time and then serve it to the LAN at stratum 9, and serve stratum
// 16 before. Nothing here sets the host's clock: chronyd runs with -x and
// -Q, the service's clock is a fake.

const (
	envChildState = "GZT_TS_STATE"
	childSkew     = -3 * time.Hour
)

var (
	upstream6 = netip.MustParseAddr("2001:db8:0:1::1")
	upstream4 = netip.MustParseAddr("192.0.2.1")
	gizmoWAN6 = netip.MustParseAddr("2001:db8:0:1::2")
	gizmoLAN6 = netip.MustParseAddr("fd00:1::1")
	gizmoLAN4 = netip.MustParseAddr("203.0.113.129")
)

// dialIn returns a dialer for beevik/ntp whose sockets live in ns.
func dialIn(ns string) func(local, remote string) (net.Conn, error) {
	return func(_, remote string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			// The thread stays in ns and is discarded with the goroutine.
			runtime.LockOSThread()
			h, err := netns.GetFromName(ns)
			if err == nil {
				defer h.Close()
				err = netns.Set(h)
			}
			if err != nil {
				ch <- result{nil, err}
				return
			}
			c, err := net.Dial("udp", remote)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

func queryFrom(ns string, server netip.Addr) (*ntp.Response, error) {
	return ntp.QueryWithOptions(netip.AddrPortFrom(server, 123).String(), ntp.QueryOptions{Timeout: time.Second, Dialer: dialIn(ns)})
}

// skewedClock is the child's clock: the host's, off by a fixed amount that
// Step and Slew change. It never touches the host's clock.
type skewedClock struct {
	mu    sync.Mutex
	off   time.Duration
	steps []time.Duration
}

func (c *skewedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *skewedClock) Step(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
	c.steps = append(c.steps, d)
	return nil
}

func (c *skewedClock) Slew(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
	return nil
}

// childResult is what the child reports when it stops.
type childResult struct {
	Stats Stats
	Steps []time.Duration
}

// TestServeChild is the gizmo side of TestChrony; it runs only in the child.
func TestServeChild(t *testing.T) {
	dir := os.Getenv(envChildState)
	if dir == "" {
		t.Skip("child process of TestChrony")
	}
	clock := &skewedClock{off: childSkew}
	s, err := New(Config{
		StateDir: dir, Interface: "lan0", Clock: clock,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Update(Plan{Servers: []netip.Addr{upstream6, upstream4}, Serve: []netip.Addr{gizmoLAN6, gizmoLAN4}})
	ctx, cancel := context.WithTimeout(context.Background(), 140*time.Second)
	defer cancel()
	go func() {
		// The parent asks the child to stop by creating this file.
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(dir, "stop")); err == nil {
				cancel()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(childResult{Stats: s.Stats(), Steps: clock.steps})
	fmt.Printf("RESULT %s\n", b)
}

var wrongBy = regexp.MustCompile(`System clock wrong by (-?[0-9.]+) seconds`)

// chronyQ asks server with `chronyd -Q` from ns and returns the offset
// chrony measured, or its output when it found no usable source within
// wait.
func chronyQ(t *testing.T, ns, dir string, server netip.Addr, wait time.Duration) (time.Duration, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait+10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "chronyd", "-Q", "-u", "root", "-t", strconv.Itoa(int(wait/time.Second)),
		"server "+server.String()+" iburst maxsamples 1", "pidfile "+filepath.Join(dir, "chronyq.pid"), "cmdport 0", "bindcmdaddress /").CombinedOutput()
	m := wrongBy.FindSubmatch(out)
	if m == nil {
		return 0, string(out), errors.Join(err, errors.New("no offset in chronyd's output"))
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return time.Duration(f * float64(time.Second)), string(out), nil
}

func TestChrony(t *testing.T) {
	if os.Getenv(envChildState) != "" {
		t.Skip("parent test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("chronyd"); err != nil {
		t.Skip("chronyd not installed")
	}
	up, gz, lan := testns.New(t, "ts-u"), testns.New(t, "ts-g"), testns.New(t, "ts-l")
	dir := t.TempDir()
	testns.Veth(t, gz, "wan0", up, "isp0")
	testns.Veth(t, gz, "lan0", lan, "eth0")
	testns.Up(t, up, "isp0", "2001:db8:0:1::1/64", "192.0.2.1/24")
	testns.Up(t, gz, "wan0", "2001:db8:0:1::2/64", "192.0.2.2/24")
	testns.Up(t, gz, "lan0", "fd00:1::1/64", "203.0.113.129/25")
	testns.Up(t, lan, "eth0", "fd00:1::42/64", "203.0.113.130/25")

	// The gizmo starts before its upstream: it must serve, unsynchronised.
	state := filepath.Join(dir, "state")
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := testns.CommandContext(ctx, gz, os.Args[0], "-test.run=^TestServeChild$", "-test.v")
	cmd.Env = append(os.Environ(), envChildState+"="+state)
	child := testns.Watch(t, cmd)
	var resp *ntp.Response
	waitUntil(t, "the unsynchronised gizmo answers", func() bool {
		var err error
		resp, err = queryFrom(lan, gizmoLAN6)
		return err == nil
	}, child.Output)
	// RFC 5905 §7.3: leap 3 and stratum 16, which clients refuse.
	if resp.Leap != ntp.LeapNotInSync || resp.Stratum != 16 || resp.Validate() == nil {
		t.Errorf("unsynchronised gizmo: leap %d stratum %d validate %v; want 3, 16, an error", resp.Leap, resp.Stratum, resp.Validate())
	}
	if _, out, err := chronyQ(t, lan, dir, gizmoLAN6, 3*time.Second); err == nil {
		t.Errorf("chronyd took the time of an unsynchronised gizmo:\n%s", out)
	}

	// Now the ISP's chrony: local stratum 8, no upstream, never touching
	// the host's clock (-x).
	conf := filepath.Join(dir, "chrony.conf")
	// No command port or socket: the socket's default path is the host's.
	os.WriteFile(conf, []byte(fmt.Sprintf("local stratum 8\nallow all\ncmdport 0\nbindcmdaddress /\npidfile %s\ndriftfile %s\nbindaddress %s\nbindaddress %s\n",
		filepath.Join(dir, "chronyd.pid"), filepath.Join(dir, "drift"), upstream6, upstream4)), 0o644)
	chrony := testns.Watch(t, testns.Command(up, "chronyd", "-x", "-d", "-u", "root", "-f", conf))

	// The gizmo syncs (its first retries come within seconds) and serves
	// stratum 9 on both LAN addresses.
	waitUntil(t, "the gizmo serves stratum 9", func() bool {
		r, err := queryFrom(lan, gizmoLAN6)
		if err == nil && r.Validate() == nil && r.Stratum == 9 {
			resp = r
			return true
		}
		return false
	}, func() string { return child.Output() + "\nchronyd:\n" + chrony.Output() })
	if resp.ClockOffset.Abs() > 100*time.Millisecond {
		t.Errorf("the gizmo serves a time %v off the host's; it was %v off before syncing", resp.ClockOffset, childSkew)
	}
	for _, a := range []netip.Addr{gizmoLAN6, gizmoLAN4} {
		off, out, err := chronyQ(t, lan, dir, a, 10*time.Second)
		if err != nil {
			t.Errorf("chronyd -Q from the LAN to %s: %v\n%s", a, err, out)
		} else if off.Abs() > 100*time.Millisecond {
			t.Errorf("chronyd -Q to %s: clock wrong by %v", a, off)
		}
	}
	// Never on the WAN: the gizmo's WAN address does not answer.
	if r, err := queryFrom(up, gizmoWAN6); err == nil {
		t.Errorf("the gizmo answered NTP on its WAN address: stratum %d", r.Stratum)
	}

	// The LAN interface is deleted and made again (a bridge rebuilt): the
	// server notices and serves on the new one.
	testns.IP(t, "-n", gz, "link", "del", "lan0")
	testns.Veth(t, gz, "lan0", lan, "eth0")
	testns.Up(t, gz, "lan0", "fd00:1::1/64", "203.0.113.129/25")
	testns.Up(t, lan, "eth0", "fd00:1::42/64")
	waitUntil(t, "the gizmo serves on the new LAN interface", func() bool {
		r, err := queryFrom(lan, gizmoLAN6)
		return err == nil && r.Stratum == 9
	}, child.Output)

	if err := os.WriteFile(filepath.Join(state, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-child.Exited():
		if err := child.Err(); err != nil {
			t.Fatalf("child: %v\n%s", err, child.Output())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("child did not stop\n%s", child.Output())
	}
	var res childResult
	for line := range strings.Lines(child.Output()) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := res.Stats
	t.Logf("gizmo: synced %v source %s stratum %d steps %v slews %d queries %d errors %d served %d dropped %v",
		st.Synced, st.Source, st.Stratum, res.Steps, st.Slews, st.Queries, st.QueryErrors, st.Server.Replies, st.Server.Dropped)
	// The first sync stepped the three hours at once.
	if !st.Synced || len(res.Steps) == 0 || (res.Steps[0]+childSkew).Abs() > 100*time.Millisecond {
		t.Errorf("synced %v, steps %v; want a first step of %v", st.Synced, res.Steps, -childSkew)
	}
	if st.Server.Replies < 4 || len(st.Server.Listening) != 2 {
		t.Errorf("served %d replies on %v", st.Server.Replies, st.Server.Listening)
	}
	// The saved time is the synchronised one.
	saved, err := loadSaved(state)
	if err != nil || time.Since(saved).Abs() > 5*time.Second {
		t.Errorf("saved time %v (%v), want about now", saved, err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool, show func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s\n%s", what, show())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
