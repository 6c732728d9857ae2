package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

func printHints(w io.Writer) {
	fmt.Fprintf(w, `
Things to look at (as root):
  ip netns exec %[1]s ip -6 addr show dev eth0         # SLAAC address from the delegated prefix
  ip netns exec %[1]s ip -6 route                      # default route via the gizmo's link-local
  ip netns exec %[1]s rdisc6 eth0                      # the gizmo's RA (PIO, RDNSS, RIO)
  ip netns exec %[1]s tshark -i eth0 -f icmp6 -V       # the RA in full, PREF64 included
  ip netns exec %[1]s curl http://[%[4]s]/       # native IPv6
  ip netns exec %[2]s ip -4 addr show dev eth0      # DHCPv4 lease from the gizmo
  ip netns exec %[2]s curl http://%[5]s/            # NAT44
  ip netns exec %[3]s curl http://%[5]s/              # CLAT (tayga) + the gizmo's NAT64
  ip netns exec gz-isp cat /run/gizmo-lab/kea6/dhcp6.leases  # the ISP's delegations
  tail -f /run/gizmo-lab/gizmo.log                           # the gizmo's own log
Dashboard: sudo go run ./lab demo (proxied to http://127.0.0.1:8080/)
Remove everything: sudo go run ./lab down
`, netlab.NSLanV6, netlab.NSLanLegacy, netlab.NSLanCLAT, netlab.V6OnlyServer, netlab.V4OnlyServer)
}

type scenario struct {
	title string
	ns    string
	argv  []string
	// wait: keep trying until this long (addresses take a moment).
	wait time.Duration
	ok   func(string) bool
}

func contains(s string) func(string) bool {
	return func(out string) bool { return strings.Contains(out, s) }
}

func cmdDemo(ctx context.Context, logger *slog.Logger, opts cliOptions) error {
	if err := cmdUp(ctx, logger, opts, false); err != nil {
		return err
	}
	fmt.Println("\n== Scenarios")
	sc := []scenario{
		{"gz-lan-v6 gets an address from the delegated prefix", netlab.NSLanV6,
			[]string{"ip", "-6", "addr", "show", "dev", "eth0", "scope", "global"}, 30 * time.Second, contains("inet6 2001:db8:1")},
		{"gz-lan-v6 has a default route via the gizmo", netlab.NSLanV6,
			[]string{"ip", "-6", "route", "show", "default"}, 10 * time.Second, contains("via fe80::")},
		{"native IPv6 to the v6-only server", netlab.NSLanV6,
			[]string{"curl", "-sS", "-m", "5", "http://[" + netlab.V6OnlyServer.String() + "]/"}, 10 * time.Second, contains("name=v6only")},
		{"the gizmo's RA as gz-lan-v6 hears it", netlab.NSLanV6,
			[]string{"rdisc6", "-1", "eth0"}, 10 * time.Second, contains("Prefix")},
		{"NAT64: the IPv4-only server through the PREF64", netlab.NSLanV6,
			[]string{"curl", "-sS", "-m", "5", "http://[" + nat64(netlab.V4OnlyServer) + "]/"}, 10 * time.Second, contains("name=v4only")},
		{"gz-lan-legacy gets a DHCPv4 lease", netlab.NSLanLegacy,
			[]string{"ip", "-4", "addr", "show", "dev", "eth0"}, 30 * time.Second, contains("inet 203.0.113.")},
		{"legacy IPv4 (NAT44) to the IPv4-only server", netlab.NSLanLegacy,
			[]string{"curl", "-sS", "-m", "5", "http://" + netlab.V4OnlyServer.String() + "/"}, 10 * time.Second, contains("name=v4only")},
		{"CLAT: IPv4 from a v6-only host", netlab.NSLanCLAT,
			[]string{"curl", "-sS", "-m", "5", "http://" + netlab.V4OnlyServer.String() + "/"}, 20 * time.Second, contains("name=v4only")},
	}
	for _, s := range sc {
		runScenario(ctx, s)
	}
	if dns, ok := rdnss(ctx); ok {
		for _, name := range []string{"v4only", "dual", "v6only", "mapped"} {
			runScenario(ctx, scenario{"DNS64 via the gizmo: " + name, netlab.NSLanV6,
				[]string{"dig", "+short", "+time=2", "+tries=1", "@" + dns, "AAAA", name + ".example.test"}, 5 * time.Second,
				func(out string) bool { return strings.TrimSpace(out) != "" }})
		}
	} else {
		fmt.Println("-- no RDNSS heard in gz-lan-v6; skipping the DNS64 scenarios")
	}
	printHints(os.Stdout)
	return serveDashboard(ctx, opts.listen)
}

func nat64(v4 netip.Addr) string {
	a := netlab.Pref64.Addr().As16()
	b := v4.As4()
	copy(a[12:], b[:])
	return netip.AddrFrom16(a).String()
}

func runScenario(ctx context.Context, s scenario) {
	fmt.Printf("\n-- %s\n$ ip netns exec %s %s\n", s.title, s.ns, strings.Join(s.argv, " "))
	wctx, cancel := context.WithTimeout(ctx, s.wait)
	defer cancel()
	var last string
	err := netlab.WaitFor(wctx, s.title, func(ctx context.Context) (bool, error) {
		out, err := netlab.Exec(ctx, s.ns, s.argv...)
		last = string(out)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		return s.ok(last), nil
	})
	fmt.Print(strings.TrimRight(last, "\n") + "\n")
	if err != nil {
		fmt.Println("   => NOT YET (the gizmo may not do this yet)")
		return
	}
	fmt.Println("   => ok")
}

// rdnss returns the first RDNSS the gizmo advertises to gz-lan-v6.
func rdnss(ctx context.Context) (string, bool) {
	out, err := netlab.Exec(ctx, netlab.NSLanV6, "rdisc6", "-1", "eth0")
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "Recursive DNS server" {
			return strings.Fields(v)[0], true
		}
	}
	return "", false
}

// serveDashboard proxies listen to the gizmo's web UI on port 80 inside
// gz-gizmo, and port 8443 of listen's host to its HTTPS on port 443 (TLS
// passed through, so the browser sees the gizmo's own certificate), until
// ctx is done. The dialer enters the namespace.
func serveDashboard(ctx context.Context, listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("dashboard proxy: -listen %q: %w", listen, err)
	}
	secure := net.JoinHostPort(host, "8443")
	// The gizmo links and redirects its login to its own HTTPS port,
	// which the browser reaches here through the second proxy.
	gizmoHTTPS, proxyHTTPS := []byte("https://gizmo.home.arpa/"), []byte("https://"+secure+"/")
	targets := []string{"[::1]:80", "127.0.0.1:80", netip.AddrPortFrom(netlab.GizmoLANIPv4.Addr(), 80).String()}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "gizmo.home.arpa"
			r.Out.Host = "gizmo.home.arpa"
			r.SetXForwarded()
		},
		ModifyResponse: func(resp *http.Response) error {
			if loc := resp.Header.Get("Location"); loc != "" {
				resp.Header.Set("Location", strings.Replace(loc, string(gizmoHTTPS), string(proxyHTTPS), 1))
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				return nil
			}
			b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
			resp.Body.Close()
			if err != nil {
				return err
			}
			b = bytes.ReplaceAll(b, gizmoHTTPS, proxyHTTPS)
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var errs []error
				for _, t := range targets {
					c, err := netlab.DialContext(ctx, netlab.NSGizmo, network, t)
					if err == nil {
						return c, nil
					}
					errs = append(errs, err)
				}
				return nil, errors.Join(errs...)
			},
		},
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("dashboard proxy: %w", err)
	}
	tlsLn, err := net.Listen("tcp", secure)
	if err != nil {
		ln.Close()
		return fmt.Errorf("dashboard proxy: %w", err)
	}
	go netlab.ForwardTCP(ctx, tlsLn, netlab.NSGizmo, "[::1]:443")
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Printf("\nThe gizmo's dashboard: http://%s/  (Ctrl-C stops the proxy; the lab stays up)\n", listen)
	stateDir := filepath.Join(netlab.DefaultRunDir, "gizmo-state")
	fp, _ := netlab.GizmoKeySHA256(stateDir)
	fmt.Printf("To log in and flip switches: https://%s/login with the password in %s\n"+
		"  (the certificate is the gizmo's own, self-signed; its public key SHA-256 is %s)\n", secure, filepath.Join(stateDir, "password.txt"), fp)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("dashboard proxy: %w", err)
	}
	fmt.Println("\nProxy stopped. The lab is still up: `sudo go run ./lab down` removes it.")
	return nil
}
