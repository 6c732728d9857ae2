package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"codeberg.org/monostack/gizmo/internal/benchns"
	"codeberg.org/monostack/gizmo/internal/iperf"
	"codeberg.org/monostack/gizmo/internal/sockopt"
)

// iperfRate runs one iperf3 test from the client to m.target: TCP
// throughput in Gbit/s, or with udp the 64-byte packets per second that
// arrived.
func iperfRate(ch *chain, m mode, udp bool) (float64, error) {
	dst := m.target
	srv := exec.Command("ip", benchns.In(ch.Server, "iperf3", "-s", "-1", "-B", m.server)[1:]...)
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	time.Sleep(300 * time.Millisecond)
	args := []string{"iperf3", "-c", dst, "-t", fmt.Sprint(*seconds), "-J"}
	if udp {
		args = append(args, "-u", "-l", "64", "-b", "0")
	}
	var out []byte
	var err error
	// The server may not listen yet on a busy machine: try a few times.
	for range 40 {
		out, err = benchns.Output(ch.Client, args...)
		// iperf3 -J may exit 0 with the refusal in its JSON.
		if !strings.Contains(string(out), "Connection refused") {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err != nil {
		return 0, fmt.Errorf("iperf3 to %s: %v: %s", dst, err, out)
	}
	res, err := iperf.Parse(out)
	if err != nil {
		return 0, err
	}
	if udp {
		pps, ok := res.Delivered()
		if !ok {
			return 0, fmt.Errorf("no UDP result: %s", out)
		}
		return pps, nil
	}
	return res.Gbps(), nil
}

// hostDialer dials from one LAN host: its address, through its device.
func hostDialer(dev string, local netip.Addr) *net.Dialer {
	return &net.Dialer{
		Timeout:   time.Second,
		LocalAddr: &net.TCPAddr{IP: local.AsSlice()},
		Control:   sockopt.Control(sockopt.BindToDevice(dev)),
	}
}

// dialers are the LAN hosts' dialers for dst: IPv4 sources for an IPv4
// target (NAT44), IPv6 otherwise.
func dialers(ch *chain, dst string) []*net.Dialer {
	v4 := netip.MustParseAddr(dst).Is4()
	var ds []*net.Dialer
	for _, h := range ch.hosts {
		a := h.v6
		if v4 {
			a = h.v4
		}
		ds = append(ds, hostDialer(h.dev, a))
	}
	return ds
}

// listen starts a server on port 9000 in the server namespace that
// accepts and closes with RST.
func listen(ch *chain) (net.Listener, error) {
	var ln net.Listener
	if err := <-benchns.Go(ch.Server, func() (err error) {
		ln, err = net.Listen("tcp", ":9000")
		return err
	}); err != nil {
		return nil, fmt.Errorf("listen in %s: %w", ch.Server, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	return ln, nil
}

// dialLoop has 8 parallel dialers open and close (RST, so that no
// TIME_WAIT piles up) connections to dst until stop says so; the k-th
// connection goes out from ds[k % len(ds)]. It returns the completed
// handshakes.
func dialLoop(ch *chain, dst string, ds []*net.Dialer, stop func(attempts int64) bool) int64 {
	var n, k atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		benchns.Go(ch.Client, func() error {
			defer wg.Done()
			for {
				i := k.Add(1)
				if stop(i) {
					return nil
				}
				c, err := ds[int(i)%len(ds)].Dial("tcp", net.JoinHostPort(dst, "9000"))
				if err != nil {
					continue
				}
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return n.Load()
}

// connRate counts completed TCP handshakes per second in a burst of
// *conns connections spread over the LAN's hosts, as a home's are
// (chain). The burst is bounded because every connection takes a binding
// and its pool port until 4.5 minutes after it closed (RFC 6146 §4
// TCP_TRANS, and the reaper's grace), and the NAT64's one IPv4 address
// has 31,744 TCP pool ports from 1024 up: rounds of unbounded bursts would
// measure the pool running out, not the translator. The limit counters
// check that the burst stayed inside every limit.
func connRate(ch *chain, u setUp) (float64, error) {
	ln, err := listen(ch)
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	before := refusals(u.counters)
	start := time.Now()
	deadline := start.Add(time.Duration(*seconds) * 10 * time.Second)
	n := dialLoop(ch, u.target, dialers(ch, u.target), func(attempt int64) bool {
		return attempt > int64(*conns) || time.Now().After(deadline)
	})
	elapsed := time.Since(start)
	if r := refusals(u.counters) - before; r > 0 {
		return 0, fmt.Errorf("%d new sessions refused at a limit during the connection test: the measurement is not of hosts inside their shares", r)
	}
	return float64(n) / elapsed.Seconds(), nil
}

// limitCounters are the counters of new sessions refused at a limit.
var limitCounters = []string{"host_limit_refused", "mac_limit_refused", "prefix_limit_refused", "table_full", "ports_exhausted"}

// refusals sums the limit counters.
func refusals(counters func() map[string]uint64) uint64 {
	if counters == nil {
		return 0
	}
	c := counters()
	var n uint64
	for _, k := range limitCounters {
		n += c[k]
	}
	return n
}

// atLimit is one host opening connections from one address as fast as it
// can until the gizmo refuses it (its address's share), and a bit longer;
// then a neighbour opens one. It reports what happened, with no ratio:
// no reference has such a limit.
type atLimit struct {
	completed     int64
	elapsed       time.Duration
	refused       uint64
	neighbourOK   bool
	neighbourErr  error
	limitsCounted map[string]uint64
}

func measureAtLimit() (atLimit, error) {
	var r atLimit
	ch, err := newChain()
	if err != nil {
		return r, err
	}
	defer ch.Close()
	m := modes[slices.IndexFunc(modes, func(m mode) bool { return m.name == "gizmo" })]
	run, err := m.setup(ch)
	if err != nil {
		return r, err
	}
	defer run.stop()
	u := setUp{m, run, ch}
	exec.Command("ip", benchns.In(ch.Client, "ping", "-c", "3", "-i", "0.2", "-w", "10", m.target)[1:]...).Run()
	ln, err := listen(ch)
	if err != nil {
		return r, err
	}
	defer ln.Close()
	before := u.counters()
	refusedBefore := refusals(u.counters)
	start := time.Now()
	// The counters are read ten times a second, beside the dialers: the
	// host dials for *seconds more once the first refusal is counted,
	// 30 s at most.
	var done atomic.Bool
	watch := make(chan struct{})
	go func() {
		defer close(watch)
		var capped time.Time
		for now := range time.Tick(100 * time.Millisecond) {
			if capped.IsZero() && refusals(u.counters) > refusedBefore {
				capped = now
			}
			if now.Sub(start) > 30*time.Second || (!capped.IsZero() && now.Sub(capped) > time.Duration(*seconds)*time.Second) {
				done.Store(true)
				return
			}
		}
	}()
	one := []*net.Dialer{hostDialer("eth0", netip.MustParseAddr("2001:db8:1000::a"))}
	r.completed = dialLoop(ch, u.target, one, func(int64) bool { return done.Load() })
	<-watch
	r.elapsed = time.Since(start)
	after := u.counters()
	r.limitsCounted = map[string]uint64{}
	for _, k := range limitCounters {
		if d := after[k] - before[k]; d > 0 {
			r.limitsCounted[k] = d
			r.refused += d
		}
	}
	// The neighbour: another host of the LAN, its own MAC and address.
	var c net.Conn
	if err := <-benchns.Go(ch.Client, func() error {
		c, r.neighbourErr = hostDialer(ch.hosts[0].dev, ch.hosts[0].v6).Dial("tcp", net.JoinHostPort(u.target, "9000"))
		return nil
	}); err != nil {
		return r, err
	}
	switch {
	case r.neighbourErr == nil:
		r.neighbourOK = true
		c.Close()
	case errors.Is(r.neighbourErr, syscall.ECONNRESET):
		// The server resets what it accepts at once; a reset that
		// beats connect's completion means the handshake was done.
		r.neighbourOK, r.neighbourErr = true, nil
	}
	slog.Info("at the limit", "completed", r.completed, "elapsed", r.elapsed, "refused", r.limitsCounted, "neighbour", r.neighbourOK)
	return r, nil
}
