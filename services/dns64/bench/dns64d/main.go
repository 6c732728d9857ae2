// Command dns64d runs the dns64 service alone on one address, for the
// benchmark in run.sh (the gizmo daemon wires the service itself), with
// the configuration the daemon ships: every setting the daemon leaves at
// its default is at its default here too, unless a flag changes it.
// SIGUSR1 prints the statistics as JSON on stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

	"codeberg.org/monostack/gizmo/services/dns64"
)

func main() {
	var listen, upstream netip.AddrPort
	var pref64 netip.Prefix
	flag.TextVar(&listen, "listen", netip.MustParseAddrPort("127.0.0.1:5302"), "address to serve on")
	flag.TextVar(&upstream, "upstream", netip.MustParseAddrPort("127.0.0.1:5300"), "upstream resolver")
	flag.TextVar(&pref64, "pref64", netip.MustParsePrefix("2001:db8:64::/96"), "NAT64 prefix")
	cacheBytes := flag.Int("cache-bytes", 0, "cache memory bound (0: the service's default, as the daemon ships it)")
	sockets := flag.Int("udp-sockets", 0, "SO_REUSEPORT UDP sockets (0: the service's default, GOMAXPROCS)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile to this file on exit")
	flight := flag.String("flight", "", "keep an execution trace of the last seconds, written to this file on SIGUSR2")
	flag.Parse()
	if *flight != "" {
		if err := startFlightRecorder(*flight); err != nil {
			fmt.Fprintln(os.Stderr, "dns64d:", err)
			os.Exit(1)
		}
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 4096
		defer func() {
			if err := writeAllocs(*memProfile); err != nil {
				fmt.Fprintln(os.Stderr, "dns64d:", err)
			}
		}()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dns64d:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "dns64d:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(listen, upstream, pref64, *cacheBytes, *sockets); err != nil {
		fmt.Fprintln(os.Stderr, "dns64d:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// startFlightRecorder keeps a trace of the last ten seconds and writes it
// to path on SIGUSR2: after a benchmark run with a latency spike, it shows
// what the scheduler and the collector did meanwhile.
func startFlightRecorder(path string) error {
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: 10 * time.Second, MaxBytes: 256 << 20})
	if err := fr.Start(); err != nil {
		return err
	}
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	go func() {
		for range usr2 {
			f, err := os.Create(path)
			if err == nil {
				_, err = fr.WriteTo(f)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "dns64d: flight recorder:", err)
			}
		}
	}()
	return nil
}

func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func run(l, u netip.AddrPort, p netip.Prefix, cacheBytes, sockets int) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := dns64.New(dns64.Config{Logger: log, CacheBytes: cacheBytes, UDPSockets: sockets})
	if err != nil {
		return err
	}
	plan := dns64.Plan{
		Pref64: p, Upstreams: []netip.AddrPort{u}, DefaultDNS64: true,
		Listen: []dns64.Listener{{Addr: l, Source: dns64.SourceRDNSS}},
	}
	if err := plan.Validate(); err != nil {
		return err
	}
	s.Update(plan)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			st := s.Stats()
			st.Hosts = nil
			_ = json.NewEncoder(os.Stdout).Encode(st)
		}
	}()
	return s.Run(ctx)
}
