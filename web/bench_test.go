package web

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web/series"
)

// benchHosts is the load: 500 hosts, 90 days of history.
const benchHosts = 500

func benchMAC(i int) string {
	return fmt.Sprintf("02:00:5e:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
}

// bigBackend builds the state of a busy household: n hosts with a SLAAC, a
// privacy and a link-local address each (every fifth a legacy host with an
// IPv4 lease), and a history store whose three rings are full: 90 days of
// hourly, 24 h of minute and 1 h of 10 s buckets, every host active in
// every bucket (the per-host worst case).
func bigBackend(n int, now time.Time) *fakeBackend {
	st := state.State{
		Pref64:    netip.MustParsePrefix("2001:db8:64::/96"),
		ULA:       netip.MustParsePrefix("fd00:1234:5678::/48"),
		Delegated: &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(2 * time.Hour)},
		Hosts:     map[string]*state.Host{},
	}
	macs := make([]string, n)
	ins := Insights{Hosts: map[string]HostInsights{}}
	for i := range n {
		mac := benchMAC(i)
		macs[i] = mac
		h := &state.Host{MAC: mac, Hostname: "host-" + strconv.Itoa(i), Policy: state.DefaultHostPolicy(), FirstSeen: now.Add(-90 * 24 * time.Hour), LastSeen: now,
			Addrs: map[netip.Addr]time.Time{
				netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x10, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)}):    now,
				netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x10, 0x00, 0x01, 0x00, 0xaa, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)}): now,
				netip.AddrFrom16([16]byte{0xfe, 0x80, 14: byte(i >> 8), 15: byte(i)}):                                                  now,
			}}
		if i%5 == 0 {
			h.IPv4Lease = netip.AddrFrom4([4]byte{203, 0, 113, byte(128 + i%126)})
			h.Policy.V6OnlyPreferred = false
		} else {
			h.GotV6OnlyPreferred = true
		}
		st.Hosts[mac] = h
		ins.Hosts[mac] = HostInsights{DNSSources: map[string]uint64{"rdnss": uint64(i)}, Traffic: series.Categories{NativeIPv6: uint64(i) << 20, NAT44: uint64(i) << 10}}
	}
	store := series.New(series.DefaultResolutions)
	cum := make([]series.Categories, n)
	var total series.Categories
	add := func(at time.Time) {
		hosts := make(map[string]series.Categories, n)
		for i := range cum {
			d := series.Categories{NativeIPv6: 9000 + uint64(i), NAT64DNS64: 700, NAT64CLAT: 200, NAT44: 100}
			cum[i] = cum[i].Add(d)
			total = total.Add(d)
			hosts[macs[i]] = cum[i]
		}
		store.Add(series.Sample{At: at, Total: total, Hosts: hosts})
	}
	for t := now.Add(-90 * 24 * time.Hour); t.Before(now.Add(-24 * time.Hour)); t = t.Add(time.Hour) {
		add(t)
	}
	for t := now.Add(-24 * time.Hour); t.Before(now.Add(-time.Hour)); t = t.Add(time.Minute) {
		add(t)
	}
	for t := now.Add(-time.Hour); !t.After(now); t = t.Add(10 * time.Second) {
		add(t)
	}
	return &fakeBackend{st: st, insights: ins, history: store}
}

// rssBytes reads the resident set size from /proc (Linux).
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// discard is a ResponseWriter that keeps nothing but the status.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// threadCPU is the CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// timeRequests serves GET path b.N times, timing every request, and
// reports the median and the 99th percentile of the wall time. It also
// reports the 99th percentile of the CPU time the request used on its
// thread: on a machine shared with other work, the wall-time tail is mostly
// time spent waiting for a CPU, which the CPU time leaves out.
func timeRequests(b *testing.B, h http.Handler, path string, mods ...func(*http.Request)) {
	runtime.LockOSThread() // ServeHTTP runs on this goroutine: its thread's CPU clock is the request's
	defer runtime.UnlockOSThread()
	r := httptest.NewRequest("GET", "http://gizmo.home.arpa"+path, nil)
	for _, mod := range mods {
		mod(r)
	}
	durs := make([]time.Duration, 0, b.N)
	cpu := make([]time.Duration, 0, b.N)
	for b.Loop() {
		w := &discard{h: http.Header{}}
		c0, t0 := threadCPU(), time.Now()
		h.ServeHTTP(w, r)
		durs = append(durs, time.Since(t0))
		cpu = append(cpu, threadCPU()-c0)
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("GET %s: %d", path, w.code)
		}
	}
	slices.Sort(durs)
	slices.Sort(cpu)
	b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(cpu[len(cpu)*99/100].Microseconds())/1000, "cpu-p99-ms")
}

func benchName(path string) string {
	if path == "/" {
		return "overview"
	}
	return strings.Trim(strings.NewReplacer("/", "_", "?", "_", "=", "_").Replace(path), "_")
}

// BenchmarkAPI serves the endpoints at 500 hosts and 90 days of
// history and reports each one's p99. It also reports what building the
// backend (state and history) and the server added to the heap and RSS.
func BenchmarkAPI(b *testing.B) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rssBefore := rssBytes()
	backend := bigBackend(benchHosts, time.Now())
	s, err := New(Config{Backend: backend, Password: "secret", Hostnames: []string{"gizmo.home.arpa"}})
	if err != nil {
		b.Fatal(err)
	}
	// Building the fixture made garbage (thousands of samples) that the
	// daemon, which fills its history over 90 days, never holds at once:
	// collect it and give it back to the OS before reading RSS.
	debug.FreeOSMemory()
	runtime.ReadMemStats(&after)
	heapMB := float64(after.HeapAlloc-before.HeapAlloc) / 1e6
	rssMB := (float64(rssBytes()) - float64(rssBefore)) / 1e6
	// The reference: encoding the same 500 hosts, prepared beforehand,
	// with nothing else. It is the floor for /api/hosts, and its p99 shows
	// the machine's own scheduling noise in the same run.
	var prepared []HostJSON
	for _, h := range backend.Snapshot().Hosts {
		prepared = append(prepared, hostOf(h))
	}
	b.Run("reference_encode_500_hosts", func(b *testing.B) {
		timeRequests(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, prepared) }), "/")
	})
	for _, path := range []string{"/api/status", "/api/hosts", "/api/series?resolution=1h"} {
		b.Run(benchName(path), func(b *testing.B) {
			timeRequests(b, s.Handler(), path)
			b.ReportMetric(heapMB, "heap-MB")
			b.ReportMetric(rssMB, "rss-MB")
		})
	}
	runtime.KeepAlive(backend)
}

// BenchmarkPages is BenchmarkAPI for the HTML pages (no goal in the issue;
// measured so that a slow page is noticed), as the logged-in owner sees
// them over HTTPS: with every host's details.
func BenchmarkPages(b *testing.B) {
	s, err := New(Config{Backend: bigBackend(benchHosts, time.Now()), Password: "secret", Hostnames: []string{"gizmo.home.arpa"}})
	if err != nil {
		b.Fatal(err)
	}
	token := s.sessions.create(time.Now())
	loggedIn := func(r *http.Request) {
		r.TLS = &tls.ConnectionState{}
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
	}
	for _, path := range []string{"/", "/?range=90d", "/hosts", "/dns", "/nat64", "/metrics"} {
		b.Run(benchName(path), func(b *testing.B) { timeRequests(b, s.Handler(), path, loggedIn) })
	}
}

// TestBigBackendIsFull checks the benchmark's fixture: the rings hold what
// the issue asks for, so the numbers mean what docs/performance.md
// says.
func TestBigBackendIsFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 90 days of history")
	}
	now := time.Now()
	b := bigBackend(50, now)
	for _, tc := range []struct {
		res       string
		n         int
		withHosts bool
	}{{"10s", 360, true}, {"1m", 1440, false}, {"1h", 90 * 24, true}} {
		pts, err := b.history.HostSeries(tc.res, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pts) < tc.n-1 || len(pts) > tc.n {
			t.Errorf("%s ring: %d points, want %d", tc.res, len(pts), tc.n)
		}
		if got := len(pts[len(pts)-1].Hosts); (got == 50) != tc.withHosts {
			t.Errorf("%s ring: last point has %d hosts", tc.res, got)
		}
	}
	// The 1 h ring keeps hosts for 7 days only.
	if pts, _ := b.history.HostSeries("1h", now.Add(-8*24*time.Hour)); len(pts[0].Hosts) != 0 || len(pts[len(pts)-7*24].Hosts) != 50 {
		t.Errorf("1h ring: %d hosts 8 days ago, %d 7 days ago; want 0 and 50", len(pts[0].Hosts), len(pts[len(pts)-7*24].Hosts))
	}
	s, _ := New(Config{Backend: b, Password: "x", Hostnames: []string{"gizmo.home.arpa"}})
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest("GET", "http://gizmo.home.arpa/api/hosts", nil))
	body, _ := io.ReadAll(w.Body)
	if w.Code != 200 || strings.Count(string(body), `"mac"`) != 50 {
		t.Errorf("/api/hosts: %d, %d hosts", w.Code, strings.Count(string(body), `"mac"`))
	}
}
