// Command dhcp4bench measures how many leases per second the gizmo's DHCPv4
// server and Kea's kea-dhcp4 grant under the same load: the dhcp4load
// generator plays a relay for N new clients over loopback, in a network
// namespace of its own (gzt-d4-bench-*), against each server in turn run as
// a separate process with a fresh lease database.
//
// The lease databases go on disk (-dir /var/tmp, the default) or on tmpfs
// (-dir /dev/shm). On disk, the gizmo fdatasyncs every batch of leases
// before it ACKs them while Kea's memfile only write(2)s each lease, so the
// tmpfs run is the like-for-like comparison of the servers themselves.
//
//	sudo go run ./services/dhcp4/cmd/dhcp4bench -clients 10000 -runs 3 -windows 16,64,256,1024
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/services/dhcp4"
	"codeberg.org/monostack/gizmo/services/dhcp4/dhcp4load"
)

var (
	serverPrefix = netip.MustParsePrefix("127.16.0.1/16")
	relayAddr    = netip.MustParseAddr("127.16.0.2")
	poolStart    = netip.MustParseAddr("127.16.0.10")
	poolEnd      = netip.MustParseAddr("127.16.255.254")
)

func main() {
	serve := flag.String("serve", "", "internal: run the gizmo server with this state directory until stdin closes")
	clients := flag.Int("clients", 10000, "simulated clients per run")
	windows := flag.String("windows", "16,64,256,1024", "comma-separated numbers of exchanges in flight at once; each is measured")
	runs := flag.Int("runs", 3, "runs per server and window")
	base := flag.String("dir", "/var/tmp", "where the lease databases go: a disk directory, or /dev/shm for tmpfs")
	servers := flag.String("servers", "gizmo,kea,kea-mt", "servers to measure: gizmo, kea (single-threaded, Kea's default), kea-mt (2 threads)")
	flag.Parse()
	if *serve != "" {
		if err := serveGizmo(*serve); err != nil {
			fmt.Fprintln(os.Stderr, "dhcp4bench:", err)
			os.Exit(1)
		}
		return
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "dhcp4bench: needs root (network namespaces)")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("%d clients per run, lease databases under %s, median of %d runs\n", *clients, *base, *runs)
	fmt.Printf("| window | %s |\n", strings.ReplaceAll(*servers, ",", " | "))
	best := map[string]float64{}
	for _, ws := range strings.Split(*windows, ",") {
		var w int
		if _, err := fmt.Sscan(ws, &w); err != nil || w <= 0 {
			fmt.Fprintf(os.Stderr, "dhcp4bench: -windows: %q is not a positive number\n", ws)
			os.Exit(2)
		}
		// Runs alternate between the servers, so that a change in the
		// machine's load hits all of them alike.
		names := strings.Split(*servers, ",")
		rates := map[string][]float64{}
		for i := range *runs {
			for _, name := range names {
				r, err := run(ctx, name, *base, *clients, w)
				if err != nil {
					fmt.Fprintf(os.Stderr, "dhcp4bench: %s window %d run %d: %v\n", name, w, i+1, err)
					os.Exit(1)
				}
				fmt.Fprintf(os.Stderr, "%-7s window %4d run %d: %v\n", name, w, i+1, r)
				rates[name] = append(rates[name], r.LeasesPerSecond())
			}
		}
		row := fmt.Sprintf("| %d |", w)
		for _, name := range names {
			rs := rates[name]
			slices.Sort(rs)
			m := rs[len(rs)/2]
			best[name] = max(best[name], m)
			row += fmt.Sprintf(" %.0f |", m)
		}
		fmt.Println(row)
	}
	row := "| best |"
	for _, name := range strings.Split(*servers, ",") {
		row += fmt.Sprintf(" %.0f |", best[name])
	}
	fmt.Println(row)
	if g, ok := best["gizmo"]; ok {
		for _, k := range []string{"kea", "kea-mt"} {
			if v, ok := best[k]; ok && v > 0 {
				fmt.Printf("best gizmo / best %s: %.2fx\n", k, g/v)
			}
		}
	}
}

// run measures one server once, in a fresh namespace with a fresh lease file.
func run(ctx context.Context, name, base string, clients, window int) (dhcp4load.Result, error) {
	ns, err := testns.Create("d4-bench")
	if err != nil {
		return dhcp4load.Result{}, err
	}
	defer testns.Delete(ns)
	if out, err := exec.Command("ip", "-n", ns, "addr", "add", serverPrefix.String(), "dev", "lo").CombinedOutput(); err != nil {
		return dhcp4load.Result{}, fmt.Errorf("server address in %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
	}
	dir, err := os.MkdirTemp(base, "gzt-d4-bench-")
	if err != nil {
		return dhcp4load.Result{}, err
	}
	defer os.RemoveAll(dir)

	var cmd *exec.Cmd
	switch name {
	case "gizmo":
		self, err := os.Executable()
		if err != nil {
			return dhcp4load.Result{}, err
		}
		cmd = testns.Command(ns, self, "-serve", dir)
	case "kea", "kea-mt":
		conf := filepath.Join(dir, "kea-dhcp4.json")
		if err := os.WriteFile(conf, keaConfig(dir, name == "kea-mt"), 0o644); err != nil {
			return dhcp4load.Result{}, err
		}
		cmd = testns.Command(ns, "kea-dhcp4", "-c", conf)
		cmd.Env = append(os.Environ(), "KEA_PIDFILE_DIR="+dir, "KEA_LOCKFILE_DIR="+dir)
	default:
		return dhcp4load.Result{}, fmt.Errorf("unknown server %q", name)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return dhcp4load.Result{}, err
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return dhcp4load.Result{}, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return dhcp4load.Result{}, err
	}
	defer func() {
		stdin.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()

	var conn net.PacketConn
	if err := testns.Do(ns, func() (err error) {
		conn, err = net.ListenPacket("udp4", netip.AddrPortFrom(relayAddr, 67).String())
		return err
	}); err != nil {
		return dhcp4load.Result{}, err
	}
	defer conn.Close()
	server := netip.AddrPortFrom(serverPrefix.Addr(), 67)
	if name != "gizmo" {
		server = netip.MustParseAddrPort("127.0.0.1:67") // Kea binds lo's first address
	}
	// Wait until the server answers: one client, many patient retries.
	probe, err := dhcp4load.Run(ctx, dhcp4load.Config{Conn: conn, Relay: relayAddr, Server: server, Clients: 1, Tag: 0xff, Timeout: 250 * time.Millisecond, Retries: 40})
	if err != nil || probe.Leased != 1 {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		return dhcp4load.Result{}, fmt.Errorf("server never answered (%v, %v); its log:\n%s", probe, err, log)
	}
	return dhcp4load.Run(ctx, dhcp4load.Config{Conn: conn, Relay: relayAddr, Server: server, Clients: clients, Window: window, Tag: 0x42})
}

// keaConfig is Kea's equivalent of the gizmo's plan, with the memfile lease
// database persisting every lease (Kea writes each lease to its CSV file
// before it answers) and no lease-file cleanup in the middle of a run.
func keaConfig(dir string, mt bool) []byte {
	c := map[string]any{
		"interfaces-config": map[string]any{"interfaces": []string{"lo"}, "dhcp-socket-type": "udp"},
		"lease-database": map[string]any{
			"type": "memfile", "persist": true, "lfc-interval": 0,
			"name": filepath.Join(dir, "kea-leases4.csv"),
		},
		"valid-lifetime": 3600,
		"subnet4": []any{map[string]any{
			"id": 1, "subnet": serverPrefix.Masked().String(),
			"pools": []any{map[string]any{"pool": poolStart.String() + " - " + poolEnd.String()}},
			"option-data": []any{
				map[string]any{"name": "routers", "data": serverPrefix.Addr().String()},
				map[string]any{"name": "domain-name-servers", "data": serverPrefix.Addr().String()},
				map[string]any{"name": "domain-name", "data": "home.arpa"},
			},
		}},
		"loggers": []any{map[string]any{
			"name": "kea-dhcp4", "severity": "WARN",
			"output_options": []any{map[string]any{"output": "stderr"}},
		}},
	}
	if mt {
		c["multi-threading"] = map[string]any{"enable-multi-threading": true, "thread-pool-size": 2, "packet-queue-size": 1024}
	}
	b, _ := json.MarshalIndent(map[string]any{"Dhcp4": c}, "", "  ")
	return b
}

// serveGizmo is the child process: the gizmo's server on loopback with the
// same network as Kea's configuration, until stdin closes.
func serveGizmo(stateDir string) error {
	conn, err := net.ListenPacket("udp4", netip.AddrPortFrom(serverPrefix.Addr(), 67).String())
	if err != nil {
		return err
	}
	svc, err := dhcp4.New(dhcp4.Config{
		Conn: conn, StateDir: stateDir,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	svc.Update(dhcp4.Plan{
		Server: serverPrefix, PoolStart: poolStart, PoolEnd: poolEnd,
		Router: serverPrefix.Addr(), DNS: []netip.Addr{serverPrefix.Addr()}, Domain: "home.arpa",
		LeaseTime: time.Hour,
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		cancel()
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
	}()
	if err := svc.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
