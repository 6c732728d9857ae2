// Package zeroconf tests the gizmo against every kind of upstream of issue 9
// ("zero-config in the wild"). Each test brings up its own lab with one
// netlab scenario and takes it down again, so this package has no shared
// lab: TestMain only builds the two binaries once for all of them.
package zeroconf

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run() // every test skips
	}
	dir, err := os.MkdirTemp("", "gizmo-zeroconf-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, b := range []string{"gizmo", "lab"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b), "./"+b)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build ./%s: %v\n%s", b, err, out)
			return 1
		}
	}
	binDir = dir
	return m.Run()
}

func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no go.mod above %s", wd)
}

// upScenario brings up a lab running scenario and takes it down when the
// test ends; on failure it attaches the gizmo's log.
func upScenario(t testing.TB, scenario string) *netlab.Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute) // the lab lock may be held by other test packages
	defer cancel()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l, err := netlab.Up(ctx, netlab.Options{
		Scenario:     scenario,
		GizmoBinary:  filepath.Join(binDir, "gizmo"),
		HelperBinary: filepath.Join(binDir, "lab"),
		Logger:       logger,
	})
	if err != nil {
		t.Fatalf("lab up -scenario %s: %v", scenario, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := l.GizmoLog(); err == nil {
				t.Logf("gizmo log (last 60 lines):\n%s", lastLines(string(b), 60))
			}
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// status is the part of GET /api/status these tests read.
type status struct {
	WAN       statusWAN `json:"wan"`
	Delegated *struct {
		Prefix string `json:"prefix"`
	} `json:"delegated_prefix"`
	Pref64       string `json:"pref64"`
	Pref64Source string `json:"pref64_source"`
	ULA          string `json:"ula"`
	LAN          struct {
		Interface string            `json:"interface"`
		DNS       map[string]string `json:"dns_listen"`
	} `json:"lan"`
	Deployment string `json:"deployment"`
}

func apiJSON(ctx context.Context, path string, v any) error {
	body, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]"+path)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(body), v)
}

type statusWAN struct {
	Interface string   `json:"interface"`
	Addrs     []string `json:"addrs"`
	IPv4      string   `json:"ipv4"`
}

// waitStatus polls /api/status until ok accepts it.
func waitStatus(t *testing.T, ctx context.Context, what string, ok func(status) bool) status {
	t.Helper()
	return waitStatusAs(t, ctx, what, ok)
}

// waitStatusAs polls /api/status, read into a T (status, or a test's own
// view with the fields it checks), until ok accepts it.
func waitStatusAs[T any](t *testing.T, ctx context.Context, what string, ok func(T) bool) T {
	t.Helper()
	var st T
	var lastErr error
	err := netlab.WaitFor(ctx, what, func(ctx context.Context) (bool, error) {
		var s T
		if lastErr = apiJSON(ctx, "/api/status", &s); lastErr != nil {
			return false, nil
		}
		st = s
		return ok(s), nil
	})
	if err != nil {
		last, _ := json.Marshal(st)
		t.Fatalf("/api/status: %v (last error %v); last status %s", err, lastErr, last)
	}
	return st
}

// rdnss is the gizmo's DNS64 address that its RA advertises.
func rdnss(t *testing.T, st status) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(st.LAN.DNS["rdnss"])
	if err != nil {
		t.Fatalf("status has no RDNSS listen address: %+v", st.LAN.DNS)
	}
	return a
}

// fetchByName resolves name's AAAA at the gizmo's DNS64 from ns and fetches
// http://name/ at that address: a v6-only host's path to an IPv4-only
// server through DNS64 + NAT64. It returns the body.
func fetchByName(ctx context.Context, l *netlab.Lab, ns string, dns netip.Addr, name string) (string, error) {
	return fetchByNameFrom(ctx, l, ns, netip.Addr{}, dns, name)
}

// fetchFrom is fetchByName from gz-lan-v6 with the host's source address
// pinned to src.
func fetchFrom(ctx context.Context, l *netlab.Lab, src, dns netip.Addr, name string) (string, error) {
	return fetchByNameFrom(ctx, l, netlab.NSLanV6, src, dns, name)
}

// fetchByNameFrom is fetchByName with the source address pinned to src
// (dig -b, curl --interface) when src is valid.
func fetchByNameFrom(ctx context.Context, l *netlab.Lab, ns string, src, dns netip.Addr, name string) (string, error) {
	what := "fetch " + name + " from " + ns
	dig := []string{"dig", "+short", "+time=1", "+tries=1"}
	curl := []string{"curl", "-sS", "-g", "--max-time", "2"}
	if src.IsValid() {
		what += " " + src.String()
		dig = append(dig, "-b", src.String())
		curl = append(curl, "--interface", src.String())
	}
	return retryFetch(ctx, what, func(ctx context.Context) (string, error) {
		out, err := l.Exec(ctx, ns, slices.Concat(dig, []string{"@" + dns.String(), name, "AAAA"})...)
		if err != nil {
			return "", err
		}
		fields := strings.Fields(string(out))
		if len(fields) == 0 {
			return "", fmt.Errorf("no AAAA for %s", name)
		}
		out, err = l.Exec(ctx, ns, slices.Concat(curl, []string{"-H", "Host: " + name, "http://[" + fields[len(fields)-1] + "]/"})...)
		return string(out), err
	})
}

// fetchV4Only fetches v4only.example.test by its IPv4 address from ns (a
// host with IPv4) until the server answers with its own address, and
// returns the body.
func fetchV4Only(ctx context.Context, l *netlab.Lab, ns string) (string, error) {
	url := "http://" + netlab.V4OnlyServer.String() + "/"
	return retryFetch(ctx, ns+" fetching "+url, func(ctx context.Context) (string, error) {
		out, err := l.Exec(ctx, ns, "curl", "-sS", "--max-time", "2", url)
		if err == nil && !strings.Contains(string(out), "server="+netlab.V4OnlyServer.String()) {
			err = fmt.Errorf("v4only answered %q", out)
		}
		return string(out), err
	})
}

// retryFetch calls get until it succeeds or ctx ends and returns the body
// it got; the error names get's last failure.
func retryFetch(ctx context.Context, what string, get func(context.Context) (string, error)) (string, error) {
	var body string
	var last error
	err := netlab.WaitFor(ctx, what, func(ctx context.Context) (bool, error) {
		body, last = get(ctx)
		return last == nil, nil
	})
	if err != nil {
		return "", fmt.Errorf("%w (last error %v)", err, last)
	}
	return body, nil
}

// waitDeployment waits until the gizmo reports the deployment it detected:
// in /api/status once the dashboard shows it, else the daemon's last
// "deployment detected" log line (gizmo/daemon.go).
func waitDeployment(t *testing.T, ctx context.Context, l *netlab.Lab, want string) {
	t.Helper()
	var last string
	err := netlab.WaitFor(ctx, "deployment "+want, func(ctx context.Context) (bool, error) {
		var s status
		if apiJSON(ctx, "/api/status", &s) == nil && s.Deployment != "" {
			last = s.Deployment
			return last == want, nil
		}
		b, err := l.GizmoLog()
		if err != nil {
			return false, nil
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `msg="deployment detected"`) {
				if _, rest, ok := strings.Cut(line, " deployment="); ok {
					last = strings.Fields(rest)[0]
				}
			}
		}
		return last == want, nil
	})
	if err != nil {
		t.Errorf("deployment: got %q, want %q: %v", last, want, err)
	}
}
